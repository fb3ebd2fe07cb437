"""Every error the runtime raises, in one small hierarchy.

Each class says what went wrong and what the caller can do about it. ``retryable`` tells a
caller whether sending the same event again may succeed (the object was reset, Redis was
briefly down, the object was busy); everything else is a bug in the caller's input.
"""

from __future__ import annotations

from typing import Any


class DurableObjectError(Exception):
    """Base class of every runtime error."""

    retryable = False
    #: A short machine-readable name, stable across versions (used on the wire).
    code = "error"


class InvalidObjectId(DurableObjectError, ValueError):
    """An ID string is malformed or was not minted by this namespace (or jurisdiction)."""

    code = "invalid_id"


class UnknownNamespace(DurableObjectError, LookupError):
    """No object class is registered under this namespace name."""

    code = "unknown_namespace"


class NotCallable(DurableObjectError, AttributeError):
    """A stub call named a method that is missing or not marked ``@rpc``."""

    code = "not_callable"


class InvalidValue(DurableObjectError, TypeError):
    """A value (stored, sent as an RPC argument, or as an attachment) is not plain data."""

    code = "invalid_value"


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
    """Redis could not be reached or failed; the outcome of the last write is unknown."""

    retryable = True
    code = "storage_unavailable"


class ObjectOverloaded(DurableObjectError):
    """Too many events are queued for one object; back off and try again."""

    retryable = True
    code = "overloaded"


class ObjectUnavailable(DurableObjectError):
    """The object could not be activated (its lease is held elsewhere, or the node stops)."""

    retryable = True
    code = "unavailable"


class ObjectMoved(DurableObjectError):
    """The node asked to handle the event does not have the object (it moved or the node
    stops); nothing ran. Sending the event again reaches its current owner."""

    retryable = True
    code = "moved"


class OutcomeUnknown(DurableObjectError):
    """The node handling the event went away before answering: it may or may not have run.
    Retry only if the event is safe to apply twice (or carries its own idempotency key)."""

    retryable = True
    code = "unknown_outcome"


class ObjectReset(DurableObjectError):
    """The instance was discarded (a commit failed) before this event's output was released."""

    retryable = True
    code = "reset"


class RpcError(DurableObjectError):
    """The called method raised an exception; ``type_name`` names its class."""

    code = "rpc_error"

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.remote_message = message


class Relocate(Exception):
    """Internal, never seen by app code: nothing ran here; route the event again."""


class RecordGone(Relocate):
    """The object's record on this node was discarded before the event started."""


class HeldElsewhere(Relocate):
    """Another live node holds the object's lease: forward the event there.

    ``info`` is that node's registry entry (a ``registry.NodeInfo``)."""

    def __init__(self, info: Any) -> None:
        super().__init__(getattr(info, "node_id", "?"))
        self.info = info


class ConfigurationError(DurableObjectError):
    """The node's settings are inconsistent or a required service is missing."""

    code = "configuration"


#: Wire code -> class, so an error crossing a node link or a process keeps its type.
BY_CODE: dict[str, type[DurableObjectError]] = {
    cls.code: cls
    for cls in (
        DurableObjectError,
        InvalidObjectId,
        UnknownNamespace,
        NotCallable,
        InvalidValue,
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
