"""The lobby UI in a real Chromium: two players create, join by code, ready up and play to
a win; a reload mid-game resumes; the directory page follows lobbies filling live."""

from __future__ import annotations

from playwright.async_api import Page, expect

from apps.lobby import LobbyConfig, make_app
from tests.browser.conftest import new_page
from tests.support.lobbyclient import Player, create_lobby

CONFIG = LobbyConfig(directory_tick=0.02, empty_ttl=1.0)
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


async def fits(page: Page) -> bool:
    """No horizontal scrolling (what a phone must not need)."""
    return not await page.evaluate(
        "document.documentElement.scrollWidth > document.documentElement.clientWidth"
    )


async def drop(page: Page, column: int) -> None:
    """Our turn: drop a piece into ``column``."""
    await expect(page.locator("#turn")).to_have_text("Your turn", timeout=10_000)
    await page.locator(f".column[data-column='{column}']").click()


async def test_two_players_create_join_by_code_play_reload_and_win(serve, browser, pages):
    server = await serve(apps=(make_app(CONFIG),))
    ann = await new_page(browser, pages, viewport={"width": 1200, "height": 900})
    bob = await new_page(browser, pages, **PHONE)
    await ann.goto(f"{server.http}/lobby/")
    await ann.fill("#my-name", "Ann")
    await ann.fill("#lobby-name", "Browsers")
    await ann.click("#create")
    await expect(ann.locator("#lobby-name-shown")).to_have_text("Browsers")
    await expect(ann.locator(".player .name")).to_have_text(["Ann (you)"])
    await expect(ann.locator(".player .crown svg")).to_have_count(1)  # the host's crown
    code = (await ann.locator("#lobby-code").text_content() or "").strip()
    assert len(code) == 6

    await bob.goto(f"{server.http}/lobby/")
    await bob.fill("#my-name", "Bob")
    await bob.fill("#code", code.lower())
    await bob.click("#join-code")
    for page in (ann, bob):
        await expect(page.locator(".player")).to_have_count(2)
    await expect(bob.locator(".player.me .name")).to_have_text("Bob (you)")
    assert await fits(bob)
    await expect(ann.locator(".player .kick")).to_have_count(1)  # the host's controls
    await expect(bob.locator(".player .kick")).to_have_count(0)
    await bob.fill("#chat-text", "good luck <b>!</b>")
    await bob.press("#chat-text", "Enter")
    await expect(ann.locator("#chat-log li .text")).to_have_text(["good luck <b>!</b>"])

    await expect(ann.locator("#start")).to_be_disabled()
    await bob.click("#ready")
    await ann.click("#ready")
    await expect(ann.locator(".player .mark")).to_have_text(
        ["\u2713 ready · plays next", "\u2713 ready · plays next"]
    )
    await ann.click("#start")
    for page in (ann, bob):
        await expect(page.locator("#game-view")).to_be_visible()
    assert "#/game/" in ann.url and "#/game/" in bob.url
    await expect(bob.locator("#turn")).to_have_text("Ann's turn")
    assert await fits(bob)

    await drop(ann, 3)
    await drop(bob, 0)
    await drop(ann, 4)
    await expect(bob.locator(".cell.red")).to_have_count(2)
    await bob.reload()  # mid-game: the seat token brings Bob back to his seat
    await expect(bob.locator("#game-view")).to_be_visible()
    await expect(bob.locator(".cell.red")).to_have_count(2)
    await expect(bob.locator(".cell.yellow")).to_have_count(1)
    await drop(bob, 0)
    await drop(ann, 5)
    await drop(bob, 0)
    await drop(ann, 6)  # 3-4-5-6 on the bottom row
    await expect(ann.locator("#result")).to_have_text("You win!")
    await expect(bob.locator("#result")).to_have_text("Ann wins.")
    await expect(ann.locator(".cell.win")).to_have_count(4)

    await bob.click("#to-lobby")  # the result is in the lobby; the players can go again
    await expect(bob.locator("#results li")).to_have_text(["Ann beat Bob"])
    await expect(bob.locator(".player .wins")).to_have_text(["1 win", ""])
    await expect(bob.locator("#ready")).to_have_text("Ready")


async def test_the_directory_page_follows_lobbies_filling_and_going(serve, browser, pages):
    server = await serve(apps=(make_app(CONFIG),))
    page = await new_page(browser, pages)
    await page.goto(f"{server.http}/lobby/")
    await expect(page.locator("#no-lobbies")).to_be_visible()
    lobby, _ = await create_lobby(server.http, name="Fills up", max_players=2)
    await create_lobby(server.http, name="Unlisted", public=False)
    item = page.locator(f".lobby-item[data-lobby='{lobby}']")
    await expect(item.locator(".fill")).to_have_text("0/2")
    ann = await Player.join(server.ws, lobby, "Ann")
    await expect(item.locator(".fill")).to_have_text("1/2")
    bob = await Player.join(server.ws, lobby, "Bob")
    await expect(item.locator(".fill")).to_have_text("2/2")
    await expect(item.locator(".badge")).to_have_text("full")
    await expect(item.locator("button")).to_have_text("Watch")
    await expect(page.locator(".lobby-item")).to_have_count(1)  # never the private one
    for p in (ann, bob):
        await p.lobby.send(type="leave")
    await expect(item.locator(".fill")).to_have_text("0/2")
    await expect(item).to_have_count(0, timeout=10_000)  # the empty lobby is removed
    await expect(page.locator("#no-lobbies")).to_be_visible()


async def test_a_join_link_watching_a_game_and_a_kick(serve, browser, pages):
    server = await serve(apps=(make_app(CONFIG),))
    lobby, code = await create_lobby(server.http, name="Strict")
    host = await Player.join(server.ws, lobby, "Hal")
    guest = await new_page(browser, pages, **PHONE)
    await guest.goto(f"{server.http}/lobby/#/join/{code}")  # no name yet: asked for one
    await expect(guest.locator("#enter")).to_be_visible()
    await expect(guest.locator(".player .name")).to_have_text(["Hal"])  # watching meanwhile
    await guest.fill("#enter-name", "Gus")
    await guest.click("#enter-join")
    await expect(guest.locator(".player.me .name")).to_have_text("Gus (you)")
    # A game between Hal and Ivy: Gus, not seated, watches it and keeps his place.
    ivy = await Player.join(server.ws, lobby, "Ivy")
    for p in (host, ivy):
        await p.lobby.send(type="ready", ready=True)
    await host.lobby.state(lambda s: sum(p["ready"] for p in s["players"]) == 2)
    await host.lobby.send(type="start")
    await guest.click("#watch-game")
    await expect(guest.locator("#turn")).to_have_text("Hal to move")
    await expect(guest.locator("#game-hint")).to_have_text("Watching.")
    await expect(guest.locator("#rematch")).to_be_hidden()
    await guest.reload()  # still watching, still in the lobby
    await expect(guest.locator("#turn")).to_have_text("Hal to move")
    # (the reload dropped Gus's lobby socket for a moment; the game page took it up again)
    state = await host.lobby.state(
        lambda s: len(s["players"]) == 3 and all(p["connected"] for p in s["players"])
    )
    await guest.click("#to-lobby")
    await expect(guest.locator("#watch-game")).to_be_visible()
    await host.lobby.send(type="kick", player=state["players"][1]["player"])
    await expect(guest.locator("#banner")).to_have_text(
        "You were removed from the lobby by the host."
    )
    await expect(guest.locator("#directory-view")).to_be_visible()


DESKTOP = {"viewport": {"width": 1280, "height": 800}}


async def lobby_of_two(server, ann: Page, bob: Page, name: str = "Duel") -> str:
    """Ann creates a lobby (the UI), Bob joins with its code; both ready. Its code."""
    await ann.goto(f"{server.http}/lobby/")
    await ann.fill("#my-name", "Ann")
    await ann.fill("#lobby-name", name)
    await ann.click("#create")
    await expect(ann.locator("#lobby-code")).not_to_be_empty()
    code = (await ann.locator("#lobby-code").text_content() or "").strip()
    await bob.goto(f"{server.http}/lobby/")
    await bob.fill("#my-name", "Bob")
    await bob.fill("#code", code)
    await bob.click("#join-code")
    await expect(ann.locator(".player")).to_have_count(2)
    await bob.click("#ready")
    await ann.click("#ready")
    await expect(ann.locator("#start")).to_be_enabled()
    return code


async def start(ann: Page, bob: Page) -> None:
    await ann.click("#start")
    for page in (ann, bob):
        await expect(page.locator("#game-view")).to_be_visible()


async def test_the_opponent_left_flow_ends_the_game_fairly(serve, browser, pages):
    config = LobbyConfig(directory_tick=0.02, empty_ttl=1.0, claim_after=1.5, grace=60.0)
    server = await serve(apps=(make_app(config),))
    for ann_size, bob_size in ((DESKTOP, PHONE), (PHONE, DESKTOP)):
        ann = await new_page(browser, pages, **ann_size)
        bob = await new_page(browser, pages, **bob_size)
        await lobby_of_two(server, ann, bob)
        await start(ann, bob)
        await drop(ann, 3)
        await drop(bob, 3)
        await expect(ann.locator("#abort")).to_be_hidden()  # both have moved: no plain abort
        await bob.context.close()  # Bob is gone (closed the tab, lost the network...)
        note = ann.locator("#game-note")
        await expect(note).to_contain_text("Bob left the game", timeout=10_000)
        await expect(ann.locator("#seat-2 .who")).to_have_text("Bob · away")
        # Not at once: he may be reconnecting. Then the win can be claimed (or the round
        # aborted), instead of sitting out the turn timer and the whole grace period.
        await expect(ann.locator("#claim-win")).to_be_disabled()
        await expect(ann.locator("#abort")).to_be_disabled()
        await expect(ann.locator("#claim-win")).to_be_enabled(timeout=5_000)
        await expect(note).to_contain_text("Claim the win, or abort the round")
        if ann_size is DESKTOP:
            await ann.click("#claim-win")
            await expect(ann.locator("#result")).to_have_text(
                "You win! (Bob left; the win was claimed)"
            )
            result = "Ann beat Bob (opponent left; win claimed)"
        else:
            await ann.click("#abort")
            await expect(ann.locator("#result")).to_have_text("Round aborted: no winner, no score.")
            result = "Ann vs Bob: aborted"
        await expect(note).to_be_hidden()
        await expect(ann.locator("#claim-win")).to_be_hidden()
        await ann.click("#to-lobby")
        await expect(ann.locator("#results li").first).to_have_text(result)
        await expect(ann.locator("#lobby-fill")).to_contain_text("waiting for players")
        assert await fits(ann)


async def test_the_lobby_seat_token_seats_its_player_at_the_game(serve, browser, pages):
    server = await serve(apps=(make_app(CONFIG),))
    ann = await new_page(browser, pages, **DESKTOP)
    bob = await new_page(browser, pages, **PHONE)
    await lobby_of_two(server, ann, bob)
    await start(ann, bob)
    await drop(ann, 2)
    # Bob's browser lost the game's own token (another tab, cleared storage...): it keeps
    # only what "welcome" gave it, the lobby token. It still seats him.
    await bob.evaluate("localStorage.removeItem('lobby.games')")
    await bob.reload()
    await expect(bob.locator("#seat-2 .who")).to_have_text("Bob (you)")
    await drop(bob, 2)
    await expect(ann.locator(".cell.yellow")).to_have_count(1)
    # And Ann, with no stored tokens at all, only watches from a fresh browser.
    spectator = await new_page(browser, pages, **PHONE)
    await spectator.goto(ann.url)
    await expect(spectator.locator("#turn")).to_have_text("Ann to move")
    await expect(spectator.locator("#resign")).to_be_hidden()


async def test_resign_draw_a_stale_refusal_and_chat_beside_the_board(serve, browser, pages):
    server = await serve(apps=(make_app(CONFIG),))
    ann = await new_page(browser, pages, **DESKTOP)
    bob = await new_page(browser, pages, **PHONE)
    await lobby_of_two(server, ann, bob)
    await start(ann, bob)
    # A refusal is said under the board, and goes once the game moves on.
    await expect(bob.locator("#turn")).to_have_text("Ann's turn")
    await bob.locator(".column[data-column='0']").click()
    await expect(bob.locator("#game-hint")).to_have_text("Wait for your turn.")
    await drop(ann, 1)
    await expect(bob.locator("#game-hint")).to_have_text("")
    await expect(bob.locator("#banner")).to_be_hidden()
    # The lobby's chat is beside the board.
    await bob.fill("#chat-text", "nice opening")
    await bob.press("#chat-text", "Enter")
    await expect(ann.locator("#game-view #chat-log li .text")).to_have_text(["nice opening"])
    # A draw offered by Bob, declined by Ann; then offered by Ann and accepted.
    await bob.click("#offer-draw")
    await expect(bob.locator("#decline-draw")).to_have_text("Withdraw the draw offer")
    await ann.click("#decline-draw")
    await expect(bob.locator("#offer-draw")).to_be_visible()
    await ann.click("#offer-draw")
    await bob.click("#accept-draw")
    for page in (ann, bob):
        await expect(page.locator("#result")).to_have_text("A draw, agreed by both players.")
    # A rematch; Bob opens, then resigns (asked first).
    for page in (ann, bob):
        await page.click("#rematch")
    await drop(bob, 3)
    await bob.click("#resign")
    await expect(bob.locator("#resign-confirm")).to_be_visible()
    await bob.click("#resign-no")
    await expect(bob.locator("#resign-confirm")).to_be_hidden()
    await bob.click("#resign")
    await bob.click("#resign-yes")
    await expect(ann.locator("#result")).to_have_text("You win! (Bob resigned)")
    await expect(bob.locator("#result")).to_have_text("Ann wins. (Bob resigned)")
    await expect(bob.locator("#game-hint")).not_to_contain_text("Wait")
    await ann.click("#to-lobby")
    await expect(ann.locator("#results li")).to_have_text(
        ["Ann beat Bob (resigned)", "Ann and Bob: a draw (agreed)"]
    )
    assert await fits(bob)


async def test_places_default_to_two_and_the_lobby_says_who_plays(serve, browser, pages):
    server = await serve(apps=(make_app(CONFIG),))
    host = await new_page(browser, pages, **DESKTOP)
    await host.goto(f"{server.http}/lobby/")
    await expect(host.locator("#max-players")).to_have_value("2")
    await host.select_option("#max-players", "4")
    await host.fill("#my-name", "Hal")
    await host.fill("#lobby-name", "Three ready")
    await host.click("#create")
    await expect(host.locator("#lobby-code")).not_to_be_empty()
    lobby = host.url.rsplit("/", 1)[1]
    ivy = await Player.join(server.ws, lobby, "Ivy")
    jo = await Player.join(server.ws, lobby, "Jo")
    for p in (jo, ivy):  # Jo ready first, but Ivy was here first
        await p.lobby.send(type="ready", ready=True)
        await p.lobby.state(lambda s: any(m["ready"] for m in s["players"]))
    await host.click("#ready")
    await expect(host.locator("#start-hint")).to_have_text(
        "Starting seats Hal (the host: red, moves first) and Ivy (yellow: ready the longest);"
        " Jo watches."
    )
    await expect(host.locator(".player .mark")).to_have_text(
        ["\u2713 ready · plays next", "\u2713 ready · plays next", "\u2713 ready"]
    )
    await expect(host.locator("#lobby-fill")).to_have_text(
        "3 of 4 places taken · waiting for players to get ready"
    )
    # Playing: the directory offers to watch it, not to join it.
    watcher = await new_page(browser, pages, **PHONE)
    await watcher.goto(f"{server.http}/lobby/")
    item = watcher.locator(f".lobby-item[data-lobby='{lobby}']")
    await expect(item.locator("button")).to_have_text("Join")
    await host.click("#start")
    await expect(item.locator("button")).to_have_text("Watch")
    await expect(host.locator("#game-view")).to_be_visible()
    await host.click("#to-lobby")
    await expect(host.locator("#lobby-fill")).to_have_text(
        "3 of 4 places taken · game on: Hal vs Ivy"
    )
    await item.locator("button").click()
    await expect(watcher.locator("#watch-game")).to_be_visible()


async def test_leaving_the_lobby_mid_game_is_asked_and_gives_the_round_up(serve, browser, pages):
    server = await serve(apps=(make_app(CONFIG),))
    ann = await new_page(browser, pages, **DESKTOP)
    bob = await new_page(browser, pages, **PHONE)
    await lobby_of_two(server, ann, bob)
    await start(ann, bob)
    await drop(ann, 0)
    await bob.click("#to-lobby")
    await expect(bob.locator("#lobby-fill")).to_contain_text("game on: Ann vs Bob")
    await bob.click("#leave")
    await expect(bob.locator("#leave-confirm")).to_be_visible()  # asked first
    await bob.click("#leave-no")
    await expect(bob.locator("#leave-confirm")).to_be_hidden()
    await bob.click("#leave")
    await bob.click("#leave-yes")
    await expect(bob.locator("#directory-view")).to_be_visible()
    # Ann is not left waiting for the timer: the round is hers, and the lobby is open again.
    await expect(ann.locator("#result")).to_have_text("You win! (Bob left)")
    await ann.click("#to-lobby")
    await expect(ann.locator("#lobby-fill")).to_have_text(
        "1 of 2 places taken · waiting for players to get ready"
    )
    await expect(ann.locator("#results li")).to_have_text(["Ann beat Bob (opponent left)"])
