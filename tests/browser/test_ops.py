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
    await page.wait_for_selector("#nodes tbody tr:nth-child(3)")  # (selectors, not
    # wait_for_function: the page's CSP forbids the eval that would need)
    assert await page.locator("#nodes tbody th").all_inner_texts() == ["n1", "n2", "n3"]

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
    await page.wait_for_selector("#nodes tbody tr:nth-child(3)", state="detached", timeout=15000)
    await again.close()
