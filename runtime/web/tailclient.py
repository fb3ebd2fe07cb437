"""``durable-redis tail``: follow an object, a namespace or the whole cluster from a shell.

It asks one node (``--url``) for ``/ops/api/tail`` with the operator's token (``--token``,
or ``OPS_TOKEN``), and prints each line as it comes: events (kind, object, outcome,
duration), errors and log lines, from every node. ``--json`` prints the lines as the node
sends them (one JSON object per line, tail.py documents them), for ``jq`` and scripts.
Objects are shown by their ID's first 12 characters, as in the logs.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

import httpx

from .tail import HEARTBEAT

#: How an event's outcome is written (the rest as they come).
_OUTCOMES = {"ok": "ok", "error": "ERROR", "overloaded": "OVERLOADED", "reset": "RESET"}


def _stamp(when: Any) -> str:
    if not isinstance(when, int | float):
        return " " * 12
    return time.strftime("%H:%M:%S", time.localtime(when)) + f".{int(when * 1000) % 1000:03d}"


def render(line: dict[str, Any]) -> str | None:
    """One line for a terminal (None: nothing to show)."""
    kind = line.get("type")
    head = f"{_stamp(line.get('time'))} {line.get('node', '?')!s:<10}"
    where = ":".join(str(line[k]) for k in ("namespace", "object") if line.get(k))
    error = line.get("error")
    if kind == "event":
        outcome = str(line.get("outcome"))
        outcome = _OUTCOMES.get(outcome, outcome) + (f"  {error}" if error else "")
        ms = float(line.get("ms", 0.0))
        return f"{head} {line.get('kind', '?')!s:<8} {where:<32} {outcome}  {ms:.1f} ms"
    if kind == "log":
        about = f"{where} " if where else ""
        tail = f"  ({error})" if error else ""
        text = f"{line.get('logger', '')}: {about}{line.get('message', '')}{tail}"
        return f"{head} {line.get('level', '')!s:<8} {text}"
    if kind == "dropped":
        return (
            f"-- {line.get('node')}: {line.get('count')} lines dropped (this reader was too slow)"
        )
    if kind == "status":
        return f"-- {line.get('node')}: {line.get('state')}" + (f" ({where})" if where else "")
    return None  # (heartbeats, and kinds a newer node may add)


def follow(
    url: str,
    params: dict[str, str],
    token: str = "",
    as_json: bool = False,
    out: TextIO = sys.stdout,
) -> int:
    """Print what the node streams until it stops (1) or Ctrl-C (0)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = httpx.Timeout(10.0, read=3 * HEARTBEAT)
    try:
        with httpx.stream(
            "GET",
            url.rstrip("/") + "/ops/api/tail",
            params=params,
            headers=headers,
            timeout=timeout,
        ) as answer:
            if answer.status_code != 200:
                answer.read()
                try:
                    why = str(answer.json().get("error", answer.text))
                except ValueError:
                    why = answer.text.strip()[:200]
                if answer.status_code == 401:
                    why += ": pass --token, or set OPS_TOKEN"
                print(f"error: {url} answered {answer.status_code}: {why}", file=sys.stderr)
                return 2
            for text in answer.iter_lines():
                if not text:
                    continue
                line = json.loads(text)
                if as_json:
                    if line.get("type") != "heartbeat":
                        print(text, file=out, flush=True)
                    continue
                shown = render(line)
                if shown is not None:
                    print(shown, file=out, flush=True)
    except KeyboardInterrupt:
        return 0
    except httpx.HTTPError as exc:
        print(f"error: cannot follow {url}: {exc}", file=sys.stderr)
        return 1
    print(f"-- {url} stopped; tail again (any node answers)", file=sys.stderr)
    return 1


__all__ = ["follow", "render"]
