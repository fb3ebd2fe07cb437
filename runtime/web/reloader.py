"""``durable-redis dev``: a node for development, restarted when the project's code changes.

Like ``uvicorn --reload``, the command itself serves nothing: it owns the embedded Valkey
and runs the node as a child process (``serve --redis-url unix://.../valkey.sock``). When a
Python file under the watched folders changes (the current directory, by default), it
stops the node as SIGTERM does in production (running events finish, sockets close with
1012, leases are released at once) and starts a new one on the new code. Valkey runs on
across restarts, so objects come back with their data on the first event after one, and
browsers reconnect. A node that fails to start (a syntax error) is reported, and the next
change starts it again.

Templates and static files need no restart: the node reads them from disk on each request
(Jinja2 checks each template's modification time), so an edit shows on the next page load.

Watching is watchfiles' (what uvicorn uses): changes are gathered for a moment, so saving
several files restarts once. The data folder, ``.git``, ``.venv``, ``node_modules`` and
caches are not watched.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import watchfiles

from ..storage.embedded import ValkeyProcess, die_with_parent

#: How long a node may take to drain before it is killed (its uvicorn's own graceful
#: shutdown is 10 s; events still running after that would only hold the reload up).
STOP_TIMEOUT = 15.0


class Reloader:
    """The node as a child process, restarted on changes; Valkey kept running."""

    def __init__(
        self,
        serve_args: Sequence[str],
        watch: Sequence[Path],
        data_dir: Path,
        redis_url: str = "",
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.serve_args = list(serve_args)
        self.watch = [p.resolve() for p in watch]
        self.data_dir = data_dir.resolve()
        self.redis_url = redis_url
        self.say = say or functools.partial(print, flush=True)
        self.valkey: ValkeyProcess | None = None
        self.node: subprocess.Popen[bytes] | None = None
        self.stop_event = threading.Event()
        self.restarts = 0

    def run(self) -> int:
        """Serve until Ctrl-C or SIGTERM; 0 once everything has stopped in order."""
        url = self.redis_url
        if not url:
            self.valkey = ValkeyProcess(self.data_dir, unix_socket=True).start()
            url = self.valkey.url
            self.say(f"dev: Valkey running ({url}, data in {self.data_dir}); it stays up")
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self._start(url)
            folders = ", ".join(str(p) for p in self.watch)
            self.say(f"dev: watching {folders} for changes to Python files")
            changes = watchfiles.watch(
                *self.watch,
                watch_filter=watchfiles.PythonFilter(ignore_paths=[self.data_dir]),
                stop_event=self.stop_event,
                raise_interrupt=False,
            )
            for changed in changes:
                names = sorted({_shown(Path(path)) for _, path in changed})
                self.say(f"dev: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''} changed")
                self._stop_node()
                self.restarts += 1
                self._start(url)
        finally:
            self._stop_node()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self.valkey is not None:
                self.valkey.stop()
                self.say("dev: Valkey stopped")
        return 0

    def _stop(self, signum: int, frame: Any) -> None:
        self.stop_event.set()

    def _start(self, redis_url: str) -> None:
        """A new node on the current code (it reports its own failure to start)."""
        self.node = subprocess.Popen(
            [sys.executable, "-m", "runtime", "serve", "--redis-url", redis_url, *self.serve_args],
            env={**os.environ, "REDIS_URL": redis_url},
            # Its own session: Ctrl-C reaches only this command, which stops the node in
            # order; and a killed dev command leaves no node behind.
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        threading.Thread(target=self._watch_node, args=(self.node,), daemon=True).start()

    def _watch_node(self, node: subprocess.Popen[bytes]) -> None:
        """Say so when the node exits by itself (it failed to start, or crashed)."""
        code = node.wait()
        if self.node is node and not self.stop_event.is_set():
            self.say(f"dev: the node exited (code {code}); it starts again at the next change")

    def _stop_node(self) -> None:
        """Drain the node (as SIGTERM does), killing it if it takes too long."""
        node, self.node = self.node, None
        if node is None:
            return
        if node.poll() is None:
            node.send_signal(signal.SIGTERM)
            try:
                node.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.say("dev: the node did not stop in time; killing it")
                node.kill()
                node.wait()


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


__all__ = ["Reloader"]
