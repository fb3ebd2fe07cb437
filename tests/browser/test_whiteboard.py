"""The whiteboard UI in a real Chromium: strokes and cursors travel between pages, undo is
per user, a reload shows the board, a view-only page cannot change it, tools and export
work, touch draws and pinches, and the layout holds on a phone and a desktop."""

from __future__ import annotations

import asyncio
import json
import math
import struct
import urllib.request
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from apps.whiteboard import make_app
from tests.browser.conftest import new_page, until
from tests.conftest import ARTIFACTS

BUNDLE = Path(__file__).resolve().parents[2] / "static" / "build" / "whiteboard.js"

# Every page but the first user's skips the name dialog: the name is already "kept".
REMEMBER_NAME = (
    "localStorage.setItem('whiteboard.user', JSON.stringify({name: %s, color: '#1971c2'}))"
)

# The board's shape ids, sorted (JavaScript).
SHAPE_IDS = "[...whiteboard.shapes.keys()].sort()"


@pytest.fixture
async def base(serve) -> str:
    if not BUNDLE.exists():
        pytest.fail(f"{BUNDLE} is missing: run `make bundle` (npm ci && npm run build)")
    server = await serve(apps=(make_app(),))
    return server.http


async def open_board(browser: Browser, pages: list[Page], url: str, name: str, **context) -> Page:
    page = await new_page(browser, pages, **context)
    await page.context.add_init_script(REMEMBER_NAME % json.dumps(name))
    await page.goto(url)
    await expect(page.locator("#status")).to_have_text("connected", timeout=10_000)
    return page


async def new_board(page: Page, base: str) -> str:
    """Make a board with the list page's button; its URL."""
    await page.goto(f"{base}/whiteboard/")
    await page.click("#new-board")
    await page.wait_for_url("**/whiteboard/b/*")
    return page.url


async def make_board(base: str) -> str:
    """Make a board as the list page does (POST /whiteboard/api/boards); its URL."""

    def post() -> str:
        request = urllib.request.Request(f"{base}/whiteboard/api/boards", method="POST")
        with urllib.request.urlopen(request) as response:
            return str(json.load(response)["url"])

    return base + await asyncio.to_thread(post)


async def drag(page: Page, points: list[tuple[float, float]]) -> None:
    """Press, move through `points` (canvas pixels) and release, with the real mouse."""
    box = await page.locator("#canvas").bounding_box()
    assert box is not None
    x0, y0 = box["x"], box["y"]
    await page.mouse.move(x0 + points[0][0], y0 + points[0][1])
    await page.mouse.down()
    for x, y in points[1:]:
        await page.mouse.move(x0 + x, y0 + y, steps=5)
    await page.mouse.up()


async def shape_ids(page: Page) -> list[str]:
    return await page.evaluate(SHAPE_IDS)


async def wait_for_ids(page: Page, ids: list[str]) -> None:
    """Wait until the page's board holds exactly these shapes."""
    want = json.dumps(sorted(ids), separators=(",", ":"))
    try:
        await until(page, f"JSON.stringify({SHAPE_IDS}) === {json.dumps(want)}")
    except AssertionError:
        assert sorted(await shape_ids(page)) == sorted(ids)  # says what is there instead
        raise


async def drawn(page: Page) -> str:
    """Draw one stroke with the pen; the new shape's id."""
    before = set(await shape_ids(page))
    await page.click("[data-tool=pen]")
    offset = 60 * len(before)
    await drag(page, [(300, 200 + offset), (400, 200 + offset), (500, 200 + offset)])
    (added,) = set(await shape_ids(page)) - before
    return added


async def ink_at(page: Page, bx: float, by: float) -> bool:
    """Is the canvas pixel showing board point (bx, by) dark (a stroke, not the grid)?"""
    await page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    rgba = await page.evaluate(
        """([bx, by]) => {
          const { view } = window.whiteboard;
          const canvas = document.getElementById("canvas");
          const dpr = canvas.width / view.width;
          const p = view.toScreen(bx, by);
          const ctx = canvas.getContext("2d");
          return [...ctx.getImageData(Math.round(p.x * dpr), Math.round(p.y * dpr), 1, 1).data];
        }""",
        [bx, by],
    )
    r, g, b, a = rgba
    return a > 200 and max(r, g, b) < 90


async def test_a_stroke_and_a_cursor_reach_the_other_page(base, browser, pages) -> None:
    ada = await new_page(browser, pages)
    url = await new_board(ada, base)
    # First visit: the name is asked once, prefilled with a guest name.
    await expect(ada.locator("#name-dialog")).to_be_visible()
    assert (await ada.input_value("#name")).startswith("Guest ")
    await ada.fill("#name", "Ada")
    await ada.press("#name", "Enter")
    await expect(ada.locator("#name-dialog")).to_be_hidden()
    await expect(ada.locator("#status")).to_have_text("connected", timeout=10_000)
    bob = await open_board(browser, pages, url, "Bob")

    await drag(ada, [(300, 300), (360, 300), (420, 300), (480, 300)])  # default tool: pen
    (stroke,) = await shape_ids(ada)
    await wait_for_ids(bob, [stroke])
    shape = await bob.evaluate(f"whiteboard.shapes.get({json.dumps(stroke)}).toJSON()")
    assert shape["type"] == "pen" and shape["color"] == "#1e1e1e" and shape["z"] == 1
    pts = shape["pts"]
    assert len(pts) >= 8 and all(float(v).is_integer() for v in pts)  # rounded at 100%
    assert {pts[i] for i in range(1, len(pts), 2)} == {pts[1]}  # a horizontal line
    mid_x = (pts[0] + pts[-2]) / 2
    assert await ink_at(bob, mid_x, pts[1])  # Bob sees it drawn...
    assert not await ink_at(bob, mid_x, pts[1] + 40)  # ...and only where it is

    # Ada's pointer on the board is Bob's cursor with her name, where she points.
    box = await ada.locator("#canvas").bounding_box()
    await ada.mouse.move(box["x"] + 200, box["y"] + 150)
    cursor = bob.locator(".cursor", has_text="Ada")
    await expect(cursor).to_be_visible()
    await expect(cursor.locator(".cursor-name")).to_have_text("Ada")
    target = await ada.evaluate("whiteboard.view.toBoard(200, 150)")
    # at the board point Ada points at, through Bob's own view (it glides there)
    await until(
        bob,
        """(t) => {
          const p = whiteboard.view.toScreen(t.x, t.y);
          const stage = document.getElementById("canvas").getBoundingClientRect();
          const box = [...document.querySelectorAll(".cursor")][0].getBoundingClientRect();
          return Math.abs(box.x - stage.x - p.x) + Math.abs(box.y - stage.y - p.y) < 2;
        }""",
        arg=target,
    )
    # Both are listed; Bob's own avatar comes first.
    avatars = bob.locator("#people .avatar")
    await expect(avatars).to_have_count(2)
    assert await avatars.evaluate_all("els => els.map(e => e.dataset.name)") == ["Bob", "Ada"]
    await ada.mouse.move(box["x"] + 300, box["y"] - 20)  # onto the header: off the board
    await expect(cursor).to_have_count(0)


async def test_undo_takes_back_only_ones_own_stroke(base, browser, pages) -> None:
    url = await make_board(base)
    ada = await open_board(browser, pages, url, "Ada")
    bob = await open_board(browser, pages, url, "Bob")
    mine = await drawn(ada)
    await wait_for_ids(bob, [mine])
    theirs = await drawn(bob)
    await wait_for_ids(ada, [mine, theirs])

    await expect(ada.locator("#undo")).to_be_enabled()
    await ada.keyboard.press("Control+z")
    for page in (ada, bob):
        await wait_for_ids(page, [theirs])
    await expect(ada.locator("#undo")).to_be_disabled()  # nothing else of Ada's to undo
    await ada.click("#redo")
    for page in (ada, bob):
        await wait_for_ids(page, [mine, theirs])
    # Bob's undo is his own: Ada's stroke stays.
    await bob.click("#undo")
    for page in (ada, bob):
        await wait_for_ids(page, [mine])


async def test_a_reload_shows_the_board(base, browser, pages) -> None:
    url = await make_board(base)
    page = await open_board(browser, pages, url, "Cy")
    first = await drawn(page)
    await page.click("[data-tool=rect]")
    await drag(page, [(600, 300), (700, 380)])
    await page.fill("#title", "Sprint plan")
    await page.press("#title", "Enter")
    ids = await shape_ids(page)
    assert first in ids and len(ids) == 2
    await expect(page).to_have_title("Sprint plan · Whiteboard")

    await page.reload()
    await expect(page.locator("#status")).to_have_text("connected", timeout=10_000)
    await wait_for_ids(page, ids)
    await expect(page.locator("#title")).to_have_value("Sprint plan")
    await expect(page).to_have_title("Sprint plan · Whiteboard")
    pts = await page.evaluate(f"whiteboard.shapes.get({json.dumps(first)}).get('pts').toArray()")
    assert await ink_at(page, (pts[0] + pts[-2]) / 2, pts[1])

    # The list page remembers it, by title; removing it only removes it from the list.
    await page.goto(f"{base}/whiteboard/")
    card = page.locator(".board-card")
    await expect(card).to_have_count(1)
    await expect(card.locator("a")).to_have_text("Sprint plan")
    assert await card.locator("a").get_attribute("href") == url.removeprefix(base)
    await card.locator(".remove").click()
    await expect(card).to_have_count(0)
    await expect(page.locator("#empty")).to_be_visible()


# Build a board update in a fresh document with the page's own Yjs, and send it raw as a
# y-websocket "sync update" message: 0 (sync), 2 (update), varUint length, the update.
FORGE = """() => {
  const { Y, provider, shapes } = window.whiteboard;
  const forged = new Y.Doc();
  const shape = new Y.Map();
  forged.getMap("shapes").set("forged-frame", shape);
  for (const [k, v] of Object.entries({ type: "rect", color: "#e03131", width: 4, z: 99,
                                         x: 0, y: 0, w: 300, h: 300 })) shape.set(k, v);
  const update = Y.encodeStateAsUpdate(forged);
  const length = [];
  for (let n = update.length; ; n >>>= 7) {
    if (n < 128) { length.push(n); break; }
    length.push(128 | (n & 127));
  }
  provider.ws.send(new Uint8Array([0, 2, ...length, ...update]));
  // and an edit of the page's own document, which the provider sends like any other
  const local = new Y.Map();
  shapes.set("forged-local", local);
  local.set("type", "text");
  local.set("text", "not yours");
  return provider.ws.readyState;
}"""


async def test_a_view_only_page_cannot_change_the_board(base, browser, pages) -> None:
    url = await make_board(base)
    editor = await open_board(browser, pages, url, "Eve")
    stroke = await drawn(editor)
    await editor.click("#share")
    view_url = await editor.input_value("#view-link")
    assert await editor.input_value("#edit-link") == url
    await editor.keyboard.press("Escape")
    room = url.rsplit("/", 1)[1]
    assert "/whiteboard/b/v-" in view_url and room not in view_url

    viewer = await open_board(browser, pages, view_url, "Vic")
    await wait_for_ids(viewer, [stroke])
    await expect(viewer.locator(".badge")).to_have_text("View only")
    assert await viewer.locator("[data-tool], #undo, #redo, [data-color]").count() == 0
    assert await viewer.locator("#title").get_attribute("readonly") is not None
    await expect(viewer.locator("#zoom-in")).to_be_visible()  # looking around still works
    await viewer.click("#share")
    await expect(viewer.locator("#edit-link-row")).to_be_hidden()  # no way to the edit link
    await expect(viewer.locator("#view-link")).to_have_value(view_url)
    await viewer.keyboard.press("Escape")
    # The mouse pans, it does not draw.
    before = await viewer.evaluate("whiteboard.view.x")
    await drag(viewer, [(300, 300), (400, 320)])
    assert await viewer.evaluate("whiteboard.view.x") == before + 100
    assert await shape_ids(viewer) == [stroke]

    assert await viewer.evaluate(FORGE) == 1  # sent on an open socket
    await until(viewer, "whiteboard.shapes.has('forged-local')")  # locally only
    # The editor's next edit reaches the viewer: by then the server has had the forgeries.
    later = await drawn(editor)
    await until(viewer, f"whiteboard.shapes.has({json.dumps(later)})")
    await asyncio.sleep(0.3)
    assert sorted(await shape_ids(editor)) == sorted([stroke, later])
    assert await editor.evaluate("whiteboard.shapes.size") == 2

    await viewer.reload()
    await expect(viewer.locator("#status")).to_have_text("connected", timeout=10_000)
    await wait_for_ids(viewer, [stroke, later])

    # a fresh editor sees the same board
    other = await open_board(browser, pages, url, "Fay")
    await wait_for_ids(other, [stroke, later])


async def test_tools_select_move_delete_and_export(base, browser, pages) -> None:
    url = await make_board(base)
    page = await open_board(browser, pages, url, "Gus", accept_downloads=True)
    await page.click("[data-color='#1971c2']")
    await page.click("[data-width='8']")
    await page.click("[data-tool=rect]")
    await drag(page, [(200, 200), (300, 260)])
    await page.keyboard.press("o")  # ellipse, from the keyboard
    await drag(page, [(400, 200), (500, 300)])
    await page.click("[data-tool=line]")
    await drag(page, [(200, 400), (350, 450)])
    await page.click("[data-tool=text]")
    box = await page.locator("#canvas").bounding_box()
    await page.mouse.click(box["x"] + 450, box["y"] + 420)
    await expect(page.locator("#text-editor")).to_be_focused()
    await page.keyboard.type("Hello <board> & co")
    await page.keyboard.press("Enter")
    await expect(page.locator("#text-editor")).to_be_hidden()
    shapes = await page.evaluate("[...whiteboard.shapes.values()].map((m) => m.toJSON())")
    by_type = {s["type"]: s for s in shapes}
    assert sorted(by_type) == ["ellipse", "line", "rect", "text"]
    assert by_type["rect"]["w"] == 100 and by_type["rect"]["h"] == 60
    assert by_type["rect"]["color"] == "#1971c2" and by_type["rect"]["width"] == 8
    assert by_type["text"]["text"] == "Hello <board> & co" and by_type["text"]["size"] == 36
    assert sorted(s["z"] for s in shapes) == [1, 2, 3, 4]

    # Select the rectangle by its edge, drag it 50 px right: an offset, its corner unchanged.
    await page.keyboard.press("v")
    await drag(page, [(200, 230), (230, 230), (250, 230)])
    rect = await page.evaluate(
        "[...whiteboard.shapes.values()].find((m) => m.get('type') === 'rect').toJSON()"
    )
    assert (rect["dx"], rect["dy"], rect["x"]) == (50, 0, by_type["rect"]["x"])
    await expect(page.locator("#delete")).to_be_visible()
    await page.keyboard.press("Delete")
    await until(page, "whiteboard.shapes.size === 3")
    await expect(page.locator("#delete")).to_be_hidden()

    async with page.expect_download() as info:
        await page.click("#export-menu summary")
        await page.click("#export-svg")
    svg = Path(await (await info.value).path()).read_text()
    assert svg.startswith("<svg xmlns=") and svg.count("<path") == 2  # ellipse and line
    assert "Hello &lt;board&gt; &amp; co" in svg and 'stroke="#1971c2"' in svg
    async with page.expect_download() as info:
        await page.click("#export-menu summary")
        await page.click("#export-png")
    download = await info.value
    assert download.suggested_filename == "whiteboard.png"
    png = Path(await download.path()).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    # the content's bounds plus a 24-unit margin, at 2x: not the screen
    b = await page.evaluate("whiteboard.renderer.contentBounds()")
    expected = [math.ceil((b["x1"] - b["x0"] + 48) * 2), math.ceil((b["y1"] - b["y0"] + 48) * 2)]
    assert list(struct.unpack(">II", png[16:24])) == expected


async def touch(cdp, kind: str, points: list[tuple[float, float]]) -> None:
    await cdp.send(
        "Input.dispatchTouchEvent",
        {"type": kind, "touchPoints": [{"x": x, "y": y} for x, y in points]},
    )


async def test_touch_draws_and_two_fingers_zoom(base, browser, pages) -> None:
    phone = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
    url = await make_board(base)
    page = await open_board(browser, pages, url, "Hal", **phone)
    cdp = await page.context.new_cdp_session(page)
    box = await page.locator("#canvas").bounding_box()
    x, y = box["x"], box["y"]
    await touch(cdp, "touchStart", [(x + 100, y + 300)])
    for i in range(1, 8):
        await touch(cdp, "touchMove", [(x + 100 + 20 * i, y + 300 + 5 * i)])
    await touch(cdp, "touchEnd", [])
    await until(page, "whiteboard.shapes.size === 1")
    assert await page.evaluate("[...whiteboard.shapes.values()][0].get('pts').length") >= 10

    # Two fingers spread apart: the view zooms in, and nothing is drawn.
    scale = await page.evaluate("whiteboard.view.scale")
    await touch(cdp, "touchStart", [(x + 150, y + 400)])
    await touch(cdp, "touchStart", [(x + 150, y + 400), (x + 250, y + 400)])
    for i in range(1, 6):
        await touch(cdp, "touchMove", [(x + 150 - 10 * i, y + 400), (x + 250 + 10 * i, y + 400)])
    await touch(cdp, "touchEnd", [])
    assert await page.evaluate("whiteboard.view.scale") == pytest.approx(scale * 2, rel=0.05)
    assert await page.evaluate("whiteboard.shapes.size") == 1
    assert await page.evaluate("whiteboard.undo.undoStack.length") == 1  # no empty step


async def test_layout_holds_on_a_phone_and_a_desktop(base, browser, pages) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    url = await make_board(base)
    for label, size in (("desktop", (1280, 800)), ("phone", (390, 844))):
        context = {"viewport": {"width": size[0], "height": size[1]}}
        page = await open_board(browser, pages, url, "A very long name for a person", **context)
        await page.fill("#title", "A board with a title long enough to need truncating somewhere")
        await page.press("#title", "Enter")
        await drawn(page)
        await page.click("#share")
        await page.screenshot(path=str(ARTIFACTS / f"whiteboard-share-{label}.png"))
        await page.keyboard.press("Escape")
        await page.screenshot(path=str(ARTIFACTS / f"whiteboard-{label}.png"))
        doc = "document.documentElement"
        assert not await page.evaluate(f"{doc}.scrollWidth > {doc}.clientWidth"), label
        # The title has room for "Untitled board" at least, never "Untit…".
        room_for = await page.locator("#title").evaluate(
            """el => {
              const ctx = document.createElement("canvas").getContext("2d");
              ctx.font = getComputedStyle(el).font;
              const cs = getComputedStyle(el);
              const pad = parseFloat(cs.paddingLeft) + parseFloat(cs.paddingRight);
              const inner = el.clientWidth - pad;
              return inner - ctx.measureText("Untitled board").width;
            }"""
        )
        assert room_for >= 0, (label, room_for)
        canvas = await page.locator("#canvas").bounding_box()
        header = await page.locator(".wb-header").bounding_box()
        assert canvas["width"] == size[0]
        assert canvas["y"] == pytest.approx(header["y"] + header["height"], abs=0.5)
        assert canvas["y"] + canvas["height"] == pytest.approx(size[1], abs=0.5)  # fills the page
        # Every control is on screen and none covers another.
        controls = page.locator(
            ".toolbar button, .actions button:visible, .zoombar button:visible, "
            ".wb-header button:visible, .wb-header summary"
        )
        boxes = [b for b in [await c.bounding_box() for c in await controls.all()] if b]
        assert len(boxes) >= 25
        for b in boxes:
            assert b["x"] >= 0 and b["x"] + b["width"] <= size[0], (label, b)
            assert b["y"] >= 0 and b["y"] + b["height"] <= size[1], (label, b)
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                overlap_x = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
                overlap_y = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
                assert overlap_x <= 0.5 or overlap_y <= 0.5, (label, a, b)


PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}


async def test_escape_keeps_the_text(base, browser, pages) -> None:
    url = await make_board(base)
    for n, size in enumerate((DESKTOP, PHONE)):
        page = await open_board(browser, pages, url, f"Ivy {n}", **size)
        await page.click("[data-tool=text]")
        box = await page.locator("#canvas").bounding_box()
        await page.mouse.click(box["x"] + 120, box["y"] + 200 + 80 * n)
        await expect(page.locator("#text-editor")).to_be_focused()
        await page.keyboard.type(f"typed then Escape {n}")
        await page.keyboard.press("Escape")
        await expect(page.locator("#text-editor")).to_be_hidden()
        texts = await page.evaluate(
            "[...whiteboard.shapes.values()].filter((m) => m.get('type') === 'text')"
            ".map((m) => m.get('text'))"
        )
        assert f"typed then Escape {n}" in texts  # kept, as Excalidraw and tldraw keep it
        # ...and one undo takes it back, as for any other shape.
        await page.keyboard.press("Control+z")
        await until(
            page,
            "![...whiteboard.shapes.values()]"
            f".some((m) => m.get('text') === 'typed then Escape {n}')",
        )


async def test_two_people_get_different_colours(base, browser, pages) -> None:
    url = await make_board(base)
    # Both browsers kept the same given colour (as two first visits can draw).
    ada = await open_board(browser, pages, url, "Ada", **DESKTOP)
    bob = await open_board(browser, pages, url, "Bob", **PHONE)
    colour = "el => getComputedStyle(el).backgroundColor"
    for page in (ada, bob):
        await expect(page.locator("#people .avatar")).to_have_count(2)
    await until(
        bob,
        "new Set([...document.querySelectorAll('#people .avatar')]"
        ".map((e) => getComputedStyle(e).backgroundColor)).size === 2",
    )
    mine = {
        "ada": await ada.locator("#people .avatar.me").evaluate(colour),
        "bob": await bob.locator("#people .avatar.me").evaluate(colour),
    }
    assert mine["ada"] != mine["bob"]
    # Each sees the other's cursor in the other's own colour.
    box = await ada.locator("#canvas").bounding_box()
    await ada.mouse.move(box["x"] + 300, box["y"] + 300)
    label = bob.locator(".cursor .cursor-name", has_text="Ada")  # (maybe off Bob's screen)
    await expect(label).to_have_count(1)
    assert await label.evaluate(colour) == mine["ada"]
    # A third person who picked Bob's colour in the dialog keeps it; Bob, given his, moves.
    cy = await new_page(browser, pages, **DESKTOP)
    picked = await bob.evaluate("JSON.parse(localStorage['whiteboard.user']).color")
    await cy.context.add_init_script(
        "localStorage.setItem('whiteboard.user', JSON.stringify("
        f"{{name: 'Cy', color: {json.dumps(picked)}, auto: false}}))"
    )
    await cy.goto(url)
    await expect(cy.locator("#status")).to_have_text("connected", timeout=10_000)
    await expect(cy.locator("#people .avatar")).to_have_count(3)
    await until(
        cy,
        "new Set([...document.querySelectorAll('#people .avatar')]"
        ".map((e) => getComputedStyle(e).backgroundColor)).size === 3",
    )
    assert await cy.evaluate("JSON.parse(localStorage['whiteboard.user']).color") == picked
    assert await bob.evaluate("JSON.parse(localStorage['whiteboard.user']).color") != picked


async def test_a_mistyped_board_says_it_is_new_and_viewers_are_not_asked_who_they_are(
    base, browser, pages
) -> None:
    for size in (DESKTOP, PHONE):
        page = await open_board(browser, pages, f"{base}/whiteboard/b/sprint-plna", "Jo", **size)
        notice = page.locator("#new-notice")
        await expect(notice).to_be_visible()  # a board, editable, but said to be new
        await expect(notice).to_contain_text("This board is new and empty")
        await expect(page.locator("[data-tool=pen]")).to_be_visible()
        await page.click("#new-notice-close")
        await expect(notice).to_be_hidden()
    # Once something is drawn the board is no longer new, for anyone.
    page = pages[0]
    await page.reload()
    await expect(page.locator("#status")).to_have_text("connected", timeout=10_000)
    await expect(page.locator("#new-notice")).to_be_visible()
    await drawn(page)
    await expect(page.locator("#new-notice")).to_be_hidden()
    await page.click("#share")
    view_url = await page.input_value("#view-link")
    await page.keyboard.press("Escape")
    await page.reload()
    await expect(page.locator("#status")).to_have_text("connected", timeout=10_000)
    await expect(page.locator("#new-notice")).to_be_hidden()
    # A view-only visitor who never drew is not asked for a name; they just watch.
    viewer = await new_page(browser, pages, **PHONE)
    await viewer.goto(view_url)
    await expect(viewer.locator("#status")).to_have_text("connected", timeout=10_000)
    await expect(viewer.locator("#name-dialog")).to_be_hidden()
    await expect(viewer.locator("#new-notice")).to_be_hidden()
    await expect(viewer.locator(".badge")).to_be_visible()
    # A board this tab made with "New board" is new, but nobody mistyped it: no notice.
    maker = await new_page(browser, pages, **DESKTOP)
    await maker.context.add_init_script(REMEMBER_NAME % json.dumps("Kit"))
    await new_board(maker, base)
    await expect(maker.locator("#status")).to_have_text("connected", timeout=10_000)
    await expect(maker.locator("#empty-hint")).to_be_visible()
    await expect(maker.locator("#new-notice")).to_be_hidden()


async def test_the_board_list_shows_previews(base, browser, pages) -> None:
    page = await new_page(browser, pages, **DESKTOP)
    await page.context.add_init_script(REMEMBER_NAME % json.dumps("Lee"))
    drawn_url = await new_board(page, base)
    await expect(page.locator("#status")).to_have_text("connected", timeout=10_000)
    await drawn(page)
    await until(
        page,
        "String(JSON.parse(localStorage['whiteboard.boards'])[0].thumb).startsWith('data:image/')",
    )
    await new_board(page, base)  # a second board, left empty
    await expect(page.locator("#status")).to_have_text("connected", timeout=10_000)
    for size in (DESKTOP, PHONE):
        await page.set_viewport_size(size["viewport"])
        await page.goto(f"{base}/whiteboard/")
        cards = page.locator(".board-card")
        await expect(cards).to_have_count(2)
        drawn_card = page.locator(".board-card", has=page.locator(f"a[href$='{drawn_url[-32:]}']"))
        img = drawn_card.locator(".preview img")
        await expect(img).to_have_attribute("alt", "")
        assert await img.evaluate("i => i.complete && i.naturalWidth") == 240
        await expect(cards.locator(".preview.blank")).to_have_text("No preview yet")
