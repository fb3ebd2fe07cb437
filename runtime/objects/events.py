"""Events as data: what a stub or the alarm poller asks of an object.

An event runs on the node that hosts the object (``run``), or is sent to that node as plain
data (``wire``, rebuilt there by :func:`from_wire`) and its result comes back as plain data.
Results are already in wire form, so local and remote calls return the same thing.

    kind     wire body                          result
    rpc      [method, msgpack args]             msgpack result
    fetch    [scope, body]                      [status, headers, body]
    alarm    []                                 None
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..base import codec
from ..base.errors import (
    DurableObjectError,
    InvalidValue,
    NotCallable,
    ObjectMoved,
    ObjectUnavailable,
    RpcError,
)
from .gate import readonly_event
from .ids import ObjectId

if TYPE_CHECKING:
    from ..base.config import Settings
    from ..storage.api import Storage


@dataclass(frozen=True, slots=True)
class AlarmInfo:
    """Passed to ``alarm(info)`` when the method accepts it."""

    retry_count: int

    @property
    def is_retry(self) -> bool:
        return self.retry_count > 0


class Target(Protocol):
    """What an event needs to know of its object's class (a namespace.Namespace)."""

    name: str
    cls: type
    alarm_takes_info: bool
    replicated: bool

    def is_rpc(self, method: str) -> bool: ...
    def is_readonly(self, method: str) -> bool: ...


class Instance(Protocol):
    """What an event needs of the instance it runs on (a DurableObject)."""

    @property
    def id(self) -> ObjectId: ...
    @property
    def storage(self) -> Storage: ...
    async def fetch(self, request: Request) -> Response: ...
    async def alarm(self, info: AlarmInfo) -> None: ...


log = logging.getLogger("runtime.events")

#: Parts of an HTTP scope an object's fetch() sees (plain data, so it can cross nodes).
SCOPE_KEYS = (
    "type",
    "asgi",
    "http_version",
    "method",
    "scheme",
    "path",
    "raw_path",
    "root_path",
    "query_string",
    "headers",
    "client",
    "server",
    "path_params",
)


class AlarmState(Protocol):
    """The alarm's bookkeeping in an object's stored state (storage.state.ObjectState)."""

    async def alarm_record(self) -> tuple[bytes, int, int] | None: ...
    def clear_fired_alarm(self, fired: bytes) -> None: ...
    def retry_alarm(self, due_ms: int, retries: int) -> None: ...


class EventHost(Protocol):
    """What an event may need of the record it runs on, beyond the instance."""

    def alarm_state(self) -> AlarmState: ...


class Event:
    kind = ""
    #: Whether the caller waits for the event's writes to commit (socket events do not).
    wait_output = True

    def __init__(self, namespace: Target) -> None:
        self.namespace = namespace

    def handler(self, host: EventHost) -> Callable[[Instance], Awaitable[Any]]:
        """What the record runs on the instance (most events need nothing of the record)."""
        return self.run

    async def run(self, instance: Instance) -> Any:
        raise NotImplementedError

    def wire(self) -> list[Any]:
        raise NotImplementedError


class RpcEvent(Event):
    """A call of an ``@rpc`` method. A read-only one (``@rpc(readonly=True)``) of a
    replicated class carries the least version of the object its caller may read
    (``min_version``: read-your-writes and monotonic reads, docs/replicas.md)."""

    kind = "rpc"

    def __init__(
        self, namespace: Target, method: str, payload: bytes, min_version: int = 0
    ) -> None:
        super().__init__(namespace)
        self.method = method
        self.payload = payload
        self.readonly = namespace.is_readonly(method)
        self.min_version = min_version

    async def run(self, instance: Instance) -> bytes:
        name = f"{self.namespace.cls.__qualname__}.{self.method}"
        args, kwargs = codec.decode(self.payload)
        if self.readonly:
            readonly_event()
        try:
            result = await getattr(instance, self.method)(*args, **kwargs)
        except ObjectMoved as exc:  # "nothing ran" must never be said of this event
            raise ObjectUnavailable(str(exc)) from None
        except DurableObjectError:
            raise
        except Exception as exc:
            log.debug("%s raised", name, exc_info=True)
            raise RpcError(type(exc).__name__, str(exc)) from None
        try:
            return codec.encode(result)
        except InvalidValue as exc:
            raise InvalidValue(f"{name} returned a value that is not plain data: {exc}") from None

    def wire(self) -> list[Any]:
        if self.min_version:
            return [self.method, self.payload, self.min_version]
        return [self.method, self.payload]


class FetchEvent(Event):
    """An HTTP request handed to the object's ``fetch``."""

    kind = "fetch"

    def __init__(self, namespace: Target, scope: dict[str, Any], body: bytes) -> None:
        super().__init__(namespace)
        self.scope = scope
        self.body = body

    @classmethod
    def of(cls, namespace: Target, scope: Mapping[str, Any], body: bytes) -> FetchEvent:
        """From a live ASGI scope: keep the plain parts."""
        plain = {k: scope[k] for k in SCOPE_KEYS if k in scope}
        plain["headers"] = [list(pair) for pair in plain.get("headers", [])]
        for key in ("client", "server"):
            if plain.get(key) is not None:
                plain[key] = list(plain[key])
        plain["path_params"] = {k: str(v) for k, v in plain.get("path_params", {}).items()}
        return cls(namespace, plain, body)

    async def run(self, instance: Instance) -> list[Any]:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}

        scope = dict(self.scope)
        scope["headers"] = [tuple(pair) for pair in scope.get("headers", [])]
        for key in ("client", "server"):
            if scope.get(key) is not None:
                scope[key] = tuple(scope[key])
        try:
            response = await instance.fetch(Request(scope, receive))
        except ObjectMoved as exc:
            raise ObjectUnavailable(str(exc)) from None
        except (DurableObjectError, HTTPException):
            raise
        except Exception as exc:
            log.exception("%s.fetch raised", self.namespace.cls.__qualname__)
            raise RpcError(type(exc).__name__, str(exc)) from None
        if not isinstance(response, Response) or not isinstance(
            getattr(response, "body", None), bytes
        ):
            raise InvalidValue(
                f"{self.namespace.cls.__qualname__}.fetch must return a Starlette Response "
                "with a body (streaming responses are not supported)"
            )
        return [response.status_code, [list(h) for h in response.raw_headers], response.body]

    def wire(self) -> list[Any]:
        return [self.scope, self.body]

    @staticmethod
    def response(result: list[Any]) -> Response:
        status, headers, body = result
        response = Response(body, status_code=status)
        response.raw_headers = [(bytes(k), bytes(v)) for k, v in headers]
        return response


class AlarmEvent(Event):
    """The object's alarm is (probably) due: run ``alarm()`` if it is."""

    kind = "alarm"

    def __init__(
        self, namespace: Target, settings: Settings, report: Callable[[str], None] | None = None
    ) -> None:
        super().__init__(namespace)
        #: Its retry policy (alarm_max_retries, alarm_retry_base).
        self.settings = settings
        #: Told "fired", "retried" or "dropped" (the node's metrics).
        self.report = report or _ignore

    def handler(self, host: EventHost) -> Callable[[Instance], Awaitable[Any]]:
        async def fire(instance: Instance) -> None:
            await self.run(instance, host.alarm_state())

        return fire

    async def run(self, instance: Instance, state: AlarmState | None = None) -> None:
        """Run ``alarm()`` if it is due, clearing or retrying it in ``state``."""
        if state is None:
            raise TypeError("an alarm runs with its object's state (AlarmEvent.handler)")
        record = await state.alarm_record()
        if record is None:
            return
        raw, due, retries = record
        now = int(time.time() * 1000)
        if due > now:
            return  # not due yet (the index entry was early): settling re-points it
        # Cleared only if no other event sets a new alarm while this one runs.
        state.clear_fired_alarm(raw)
        settings = self.settings
        member = f"{self.namespace.name}:{instance.id.hex[:12]}"
        fields = {
            "object_class": self.namespace.cls.__qualname__,
            "namespace": self.namespace.name,
            "object_id": instance.id.hex[:12],
        }
        try:
            if self.namespace.alarm_takes_info:
                await instance.alarm(AlarmInfo(retries))
            else:
                await instance.alarm()  # type: ignore[call-arg]
            self.report("fired")
        except Exception:
            if retries < settings.alarm_max_retries:
                delay = settings.alarm_retry_base * 2**retries
                log.warning(
                    "alarm of %s raised (try %d); retrying in %.1fs",
                    member,
                    retries + 1,
                    delay,
                    exc_info=True,
                    extra=fields,
                )
                state.retry_alarm(now + int(delay * 1000), retries + 1)
                self.report("retried")
            else:
                self.report("dropped")
                log.error(
                    "alarm of %s raised %d times; giving up",
                    member,
                    retries + 1,
                    exc_info=True,
                    extra=fields,
                )

    def wire(self) -> list[Any]:
        return []


def _ignore(what: str) -> None:
    pass


def from_wire(
    namespace: Target,
    kind: str,
    body: list[Any],
    settings: Settings,
    report: Callable[[str], None] | None = None,
) -> Event:
    """Rebuild an event another node sent (its shape checked: it is input)."""
    if (
        kind == "rpc"
        and len(body) in (2, 3)
        and isinstance(body[0], str)
        and isinstance(body[1], bytes)
        and (len(body) == 2 or (isinstance(body[2], int) and body[2] >= 0))
    ):
        if not namespace.is_rpc(body[0]):
            raise NotCallable(f"{namespace.cls.__qualname__}.{body[0]} is not an @rpc method")
        return RpcEvent(namespace, body[0], body[1], body[2] if len(body) == 3 else 0)
    if (
        kind == "fetch"
        and len(body) == 2
        and isinstance(body[0], dict)
        and isinstance(body[1], bytes)
    ):
        return FetchEvent(namespace, body[0], body[1])
    if kind == "alarm":
        return AlarmEvent(namespace, settings, report)
    raise InvalidValue(f"malformed {kind!r} event from another node")
