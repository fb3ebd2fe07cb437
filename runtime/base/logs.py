"""The node's log lines: text for a terminal, or one JSON object per line (LOG_FORMAT=json).

Every line carries the node's id; lines about one object also carry ``object_class``,
``namespace`` and ``object_id`` (its first 12 hex characters: enough to find it, not enough
to use it, since a whole unique ID may be a capability). Paths are shown the same way
(:class:`PathShapes`: the routes' own words whole, their parameters shortened, query strings
left out), in refusals, errors and uvicorn's access log alike. No line carries a secret or a
message body (the websockets library's DEBUG dump of headers and frames is dropped).
python-json-logger writes the JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pythonjsonlogger.json import JsonFormatter
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _NodeField(logging.Filter):
    """Adds the node's id to every record."""

    def __init__(self, node_id: str) -> None:
        super().__init__()
        self.node_id = node_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.node = self.node_id
        record.__dict__.pop("color_message", None)  # uvicorn's, for terminals
        return True


class _NoWireDump(logging.Filter):
    """Drops the websockets library's DEBUG dump of what crosses a socket ("< Cookie: ...",
    "> frame ..."): handshake headers carry cookies and link credentials, frames carry
    message bodies. uvicorn hands the library its own logger, so the lines come from
    ``uvicorn.error`` as well as ``websockets.*``."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        return not (
            record.levelno <= logging.DEBUG
            and isinstance(msg, str)
            and msg.startswith(("< ", "> "))
        )


def configure(level: str, form: str, node_id: str) -> None:
    """Set up the root logger (and uvicorn's, which do not propagate) for a node process."""
    handler = logging.StreamHandler()
    if form == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(node)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT))
    handler.addFilter(_NodeField(node_id))
    handler.addFilter(_NoWireDump())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False


# ---------------------------------------------------------------- paths in log lines

#: A path parameter is shown by its first characters only when it is this long (so at least
#: 20 characters stay hidden); a shorter one is hidden whole.
SHOWN_FROM = 32
SHOWN = 12
HIDDEN = "…"


def short_segment(segment: str) -> str:
    """A path parameter as a log line shows it: an ID's first 12 characters, as for
    object IDs; a short one (a user's board or room name may be its capability) not at all."""
    if len(segment) >= SHOWN_FROM:
        return segment[:SHOWN] + HIDDEN
    return HIDDEN if segment else ""


@dataclass(frozen=True, slots=True)
class _Shape:
    """One route's path, split: literal words, ``None`` for a parameter; ``rest`` says
    what follows the last segment (``None``: nothing; True: files, shown whole; False: a
    ``{...:path}`` parameter, hidden)."""

    segments: tuple[str | None, ...]
    rest: bool | None


class PathShapes:
    """Which parts of a request's path are the node's own words and which are parameters,
    read from its routes, so a log line can show a path without the capability it may
    carry (a private room's ID, a board's edit name, a view token, a waiting room's ID):
    ``/whiteboard/ws/5f3a9c0d1e2b…``. Words stay; parameters are shortened
    (:func:`short_segment`); a path no route matches keeps only the words some route has."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.shapes: list[_Shape] = []
        self.words: set[str] = set()
        self._add(routes, ())

    def _add(self, routes: Sequence[BaseRoute], prefix: tuple[str | None, ...]) -> None:
        for route in routes:
            if not isinstance(route, Route | WebSocketRoute | Mount):
                continue
            segments, rest = _split(route.path)
            segments = prefix + segments
            if isinstance(route, Mount):
                inner = route.routes
                if inner:
                    self._add(inner, segments)
                else:  # (static files: their names are no secret)
                    self.shapes.append(_Shape(segments, True))
            else:
                self.shapes.append(_Shape(segments, rest))
            self.words.update(s for s in segments if s is not None)

    def shorten(self, path: str) -> str:
        """``path`` as log lines show it."""
        parts = path.lstrip("/").split("/")
        for shape in self.shapes:
            shown = _fit(shape, parts)
            if shown is not None:
                return "/" + "/".join(shown)
        return "/" + "/".join(p if p in self.words else short_segment(p) for p in parts)


def _split(template: str) -> tuple[tuple[str | None, ...], bool | None]:
    if not template:
        return (), None
    segments: list[str | None] = []
    rest: bool | None = None
    for piece in template.lstrip("/").split("/"):
        if piece.startswith("{") and piece.endswith("}"):
            if piece.endswith(":path}"):
                rest = False
                break
            segments.append(None)
        elif "{" in piece:  # a word with a parameter inside (unused by the apps): hidden
            segments.append(None)
        else:
            segments.append(piece)
    return tuple(segments), rest


def _fit(shape: _Shape, parts: list[str]) -> list[str] | None:
    """``parts`` shown through ``shape`` if the route matches them, else None."""
    segments = shape.segments
    if len(parts) < len(segments) or (shape.rest is None and len(parts) != len(segments)):
        return None
    shown: list[str] = []
    for word, part in zip(segments, parts, strict=False):
        if word is None:
            shown.append(short_segment(part))
        elif word == part:
            shown.append(part)
        else:
            return None
    extra = parts[len(segments) :]
    shown += extra if shape.rest else [short_segment(p) for p in extra]
    return shown


class _ShortAccessPaths(logging.Filter):
    """uvicorn's access log line (``--access-log``) with its path shortened, its query
    string (which may hold a token) left out."""

    def __init__(self, paths: PathShapes) -> None:
        super().__init__()
        self.paths = paths

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, mark, _ = args[2].partition("?")
            record.args = (*args[:2], self.paths.shorten(path) + ("?…" if mark else ""), *args[3:])
        return True


def shorten_access_log(paths: PathShapes) -> None:
    """Show paths in uvicorn's access log as every other line does (a node process)."""
    logging.getLogger("uvicorn.access").addFilter(_ShortAccessPaths(paths))
