"""A lobby's reports to the directory: its summary, after each change the list shows.

The LobbyRoom calls :meth:`Reporter.soon` after every change; the reporter sends the
summary in the background (the lobby's event does not wait for the directory), at most one
report at a time, and always the latest: a lobby changing faster than the directory
answers costs one report per answer, not one per change. Each report goes out only once the
change is committed (``storage.sync()``), so the directory never lists a state a crash
could take back, and it carries the lobby's revision, so a late report changes nothing
there. If the directory cannot be reached, the reporter retries with backoff (0.25 s,
doubling to 10 s) for as long as the lobby is in memory; a lobby rebuilt from storage
reports once more in case its last report died with a node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from runtime import DurableObjectError, Env, ObjectContext, Stub

from .names import DIRECTORY, DIRECTORY_NAME
from .rules import LobbyRules

log = logging.getLogger("apps.lobby")


def directory(env: Env) -> Stub:
    return env.namespace(DIRECTORY).get_by_name(DIRECTORY_NAME)


class Reporter:
    """Keeps the directory's entry for one lobby current."""

    def __init__(
        self, ctx: ObjectContext, env: Env, lobby: Callable[[], LobbyRules | None]
    ) -> None:
        self.ctx = ctx
        self.env = env
        self.lobby = lobby  # the lobby as it is now (None before it is created)
        self.reported = 0  # the revision the directory has acknowledged
        self.sending = False

    def soon(self) -> None:
        """Report in the background, unless the directory is current or a report is on its
        way (it sends the latest revision when it gets there)."""
        lobby = self.lobby()
        if lobby is None or not lobby.public or self.sending or lobby.rev <= self.reported:
            return
        self.sending = True
        self.ctx.wait_until(self._send_until_current())

    async def _send_until_current(self) -> None:
        delay = 0.25
        try:
            while (lobby := self.lobby()) is not None and lobby.rev > self.reported:
                await self.ctx.storage.sync()  # report only what is stored for good
                try:
                    await self.now()
                except DurableObjectError as exc:
                    log.warning("directory unreachable (%s); retrying in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
        finally:
            self.sending = False

    async def now(self) -> None:
        """Report the current summary (or the removal, once closed) and wait for it."""
        lobby = self.lobby()
        if lobby is None or not lobby.public:
            return
        rev = lobby.rev
        hex_id = self.ctx.id.hex
        if lobby.closed:
            await directory(self.env).remove(hex_id, rev)
        else:
            await directory(self.env).update(hex_id, lobby.summary(), rev)
        self.reported = max(self.reported, rev)
