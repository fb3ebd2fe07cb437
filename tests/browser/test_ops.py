"""The /ops page on a three-node cluster: it lists the nodes, finds the node that holds a
chat room, and shows the room move when that node is stopped."""

from __future__ import annotations

import json
import signal

from websockets.asyncio.client import connect

from tests.browser.conftest import new_page

TOKEN = "ops-token-for-the-browser-test"


async def join(node, room: str, name: str):
    ws = await connect(f"{node.ws}/chat/api/room/{room}/websocket")
    await ws.send(json.dumps({"name": name}))
    while not json.loads(await ws.recv()).get("ready"):
        pass
    return ws


async def test_ops_finds_a_rooms_node_and_follows_it_when_the_node_stops(
    nodes, browser, pages
) -> None:
    cluster = nodes(3, env={"OPS_TOKEN": TOKEN, "CHAT_RATE_LIMIT": "0"}, suite=True)
    first, second, third = cluster
    page = await new_page(browser, pages)
    await page.goto(f"{first.http}/ops?token={TOKEN}")
    await page.wait_for_selector("#nodes .node:nth-child(3)")  # (selectors, not
    # wait_for_function: the page's CSP forbids the eval that would need)
    assert await page.locator("#nodes .node h3").all_inner_texts() == ["n1", "n2", "n3"]
    # Each card says its health (which depends on how loaded the machine is: not asserted).
    healths = await page.locator("#nodes .node").evaluate_all("cs => cs.map(c => c.dataset.health)")
    assert set(healths) <= {"ok", "warn", "bad"} and len(healths) == 3
    assert await page.locator("#sum-nodes").inner_text() == "3 up"

    chatter = await join(second, "moving-room", "ada")  # the room lives where it is first used
    await page.select_option("#namespace", "chat_room")
    await page.fill("#key", "moving-room")
    await page.click("#locate button")
    await page.wait_for_selector("#location[data-node='n2']")
    assert "n2" in await page.locator("#location").inner_text()

    second.send_signal(signal.SIGTERM)  # drained: the room's lease is given back at once
    second.process.wait(20)  # type: ignore[union-attr]
    await chatter.close()
    again = await join(third, "moving-room", "ada")  # the page reconnects; here: through n3
    await page.wait_for_selector("#location[data-node='n3']", timeout=15000)
    await page.wait_for_selector("#nodes .node:nth-child(3)", state="detached", timeout=15000)
    await page.wait_for_selector("#sum-nodes:has-text('2 up')", timeout=15000)
    await again.close()
    # An object nobody ever used is said to be not active, not "held by no node".
    await page.fill("#key", "a-room-nobody-opened")
    await page.click("#locate button")
    await page.wait_for_selector("#location[data-node='']:has-text('not active on any node')")
    assert "never been used" in await page.locator("#location").inner_text()
