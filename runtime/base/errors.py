"""Every error the runtime raises, in one small hierarchy.

Each class says what went wrong and what the caller can do about it:

- ``retryable``: whether sending the same event again may succeed (the object was reset,
  Redis was briefly down, the object was busy); everything else is a bug in the caller's
  input. It means "the runtime may try again", and says nothing of whether the first try
  had an effect.
- ``may_have_run``: whether the failed event may have had an effect. False ("not run") means
  none of what the runtime carries out for an event can have happened: no write of it was
  stored, no message or response of it was released, it called no other object. Such an
  event is safe to send again, even if it is not idempotent. True ("unknown") means it may
  have: retry only what is safe to apply twice. Each class has a default (an ``ObjectMoved``
  is never run, an ``OutcomeUnknown`` always may have been); the runtime sets it per error
  where it knows better (a Redis connection refused before anything was sent). What a
  handler does outside the runtime (its own HTTP calls) is the app's to know.

``outcome`` is the same as a word: "not-run" or "unknown", as in the ``X-Outcome`` header of
HTTP error responses.
"""

from __future__ import annotations

from typing import Any

NOT_RUN = "not-run"
UNKNOWN = "unknown"


class DurableObjectError(Exception):
    """Base class of every runtime error."""

    retryable = False
    #: A short machine-readable name, stable across versions (used on the wire).
    code = "error"
    #: Whether the event may have had an effect (see the module's docstring): the class's
    #: default, which an instance may override.
    may_have_run = True

    def __init__(self, *args: Any, may_have_run: bool | None = None) -> None:
        super().__init__(*args)
        if may_have_run is not None:
            self.may_have_run = may_have_run

    @property
    def outcome(self) -> str:
        """ "not-run" or "unknown": what the ``X-Outcome`` header says of this error."""
        return UNKNOWN if self.may_have_run else NOT_RUN

    def with_outcome(self, may_have_run: bool) -> DurableObjectError:
        """This error, saying ``may_have_run`` (itself when it already does)."""
        if self.may_have_run == may_have_run:
            return self
        copy = copy_error(self)
        copy.may_have_run = may_have_run
        return copy


class InvalidObjectId(DurableObjectError, ValueError):
    """An ID string is malformed or was not minted by this namespace (or jurisdiction)."""

    code = "invalid_id"
    may_have_run = False


class UnknownNamespace(DurableObjectError, LookupError):
    """No object class is registered under this namespace name."""

    code = "unknown_namespace"
    may_have_run = False


class NotCallable(DurableObjectError, AttributeError):
    """A stub call named a method that is missing or not marked ``@rpc``."""

    code = "not_callable"
    may_have_run = False


class InvalidValue(DurableObjectError, TypeError):
    """A value (stored, sent as an RPC argument, or as an attachment) is not plain data."""

    code = "invalid_value"


class ReadOnlyWrite(DurableObjectError):
    """A read-only method (``@rpc(readonly=True)``), or a replica of an object, tried to
    write: nothing of it is stored. Move the write to a method that is not read-only."""

    code = "read_only"
    may_have_run = False


class StorageLimitExceeded(DurableObjectError, ValueError):
    """A key, value, batch or attachment is larger than the configured limit."""

    code = "limit_exceeded"


class Fenced(DurableObjectError):
    """This node no longer holds the object's lease: another node may own it now.

    Nothing this instance tried to write was stored. Send the event again: it will reach
    the object's current owner.
    """

    retryable = True
    code = "fenced"


class StorageUnavailable(DurableObjectError):
    """Redis could not be reached or failed. ``may_have_run`` is False when nothing was sent
    (the connection was refused, or the node had already given the object up)."""

    retryable = True
    code = "storage_unavailable"


class ObjectOverloaded(DurableObjectError):
    """Too many events are queued for one object; back off and try again."""

    retryable = True
    code = "overloaded"
    may_have_run = False


class ObjectUnavailable(DurableObjectError):
    """The object could not be activated (its lease is held elsewhere, or the node stops)."""

    retryable = True
    code = "unavailable"
    may_have_run = False


class ObjectMoved(DurableObjectError):
    """The node asked to handle the event does not have the object (it moved or the node
    stops); nothing ran. Sending the event again reaches its current owner."""

    retryable = True
    code = "moved"
    may_have_run = False


class OutcomeUnknown(DurableObjectError):
    """The node handling the event went away before answering: it may or may not have run.
    Retry only if the event is safe to apply twice (or carries its own idempotency key)."""

    retryable = True
    code = "unknown_outcome"


class ObjectReset(DurableObjectError):
    """The instance was discarded (a commit failed) before this event's output was released.
    ``may_have_run`` says whether the event's own writes may have been stored."""

    retryable = True
    code = "reset"


class RpcError(DurableObjectError):
    """The called method raised an exception; ``type_name`` names its class."""

    code = "rpc_error"

    def __init__(self, type_name: str, message: str, *, may_have_run: bool | None = None) -> None:
        super().__init__(
            f"{type_name}: {message}" if message else type_name, may_have_run=may_have_run
        )
        self.type_name = type_name
        self.remote_message = message


class Relocate(Exception):
    """Internal, never seen by app code: nothing ran here; route the event again."""


class RecordGone(Relocate):
    """The object's record on this node was discarded before the event started."""


class HeldElsewhere(Relocate):
    """Another live node holds the object's lease: forward the event there.

    ``info`` is that node's registry entry (a ``registry.NodeInfo``); ``left`` the seconds
    its lease had to run when read (it is believed no longer)."""

    def __init__(self, info: Any, left: float) -> None:
        super().__init__(getattr(info, "node_id", "?"))
        self.info = info
        self.left = left


class ConfigurationError(DurableObjectError):
    """The node's settings are inconsistent or a required service is missing."""

    code = "configuration"
    may_have_run = False


def error_headers(exc: DurableObjectError) -> dict[str, str]:
    """The headers of an HTTP error response for ``exc``: ``X-Error-Code``, ``X-Outcome``
    and, when sending again may help, ``Retry-After``. Apps that answer a runtime error
    with a body of their own send these with it (docs/api.md has the table)."""
    headers = {"X-Error-Code": exc.code, "X-Outcome": exc.outcome}
    if exc.retryable:
        headers["Retry-After"] = "1"
    return headers


def copy_error(exc: DurableObjectError) -> DurableObjectError:
    """A new error of the same class, message and outcome (errors shared by many waiters are
    copied before one waiter's outcome is changed)."""
    if isinstance(exc, RpcError):
        copy: DurableObjectError = RpcError(exc.type_name, exc.remote_message)
    else:
        copy = type(exc)(*exc.args)
    copy.may_have_run = exc.may_have_run
    return copy


#: Wire code -> class, so an error crossing a node link or a process keeps its type.
BY_CODE: dict[str, type[DurableObjectError]] = {
    cls.code: cls
    for cls in (
        DurableObjectError,
        InvalidObjectId,
        UnknownNamespace,
        NotCallable,
        InvalidValue,
        ReadOnlyWrite,
        StorageLimitExceeded,
        Fenced,
        StorageUnavailable,
        ObjectOverloaded,
        ObjectUnavailable,
        ObjectMoved,
        OutcomeUnknown,
        ObjectReset,
        ConfigurationError,
    )
}
