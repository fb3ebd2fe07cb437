"""Durable Objects on Redis: one live instance per object ID, fenced durable storage.

The public API (docs/api.md lists every name)::

    from runtime import DurableObject, rpc

    class Counter(DurableObject):
        @rpc
        async def increment(self, by: int = 1) -> int:
            value = (await self.storage.get("value", 0)) + by
            await self.storage.put("value", value)
            return value

Apps import only what this module exports.
"""

from __future__ import annotations

from .base.config import BaseSettings, Settings
from .base.errors import (
    ConfigurationError,
    DurableObjectError,
    Fenced,
    InvalidObjectId,
    InvalidValue,
    NotCallable,
    ObjectMoved,
    ObjectOverloaded,
    ObjectReset,
    ObjectUnavailable,
    OutcomeUnknown,
    ReadOnlyWrite,
    RpcError,
    StorageLimitExceeded,
    StorageUnavailable,
    UnknownNamespace,
    error_headers,
)
from .host.node import Node
from .objects.events import AlarmInfo
from .objects.ids import ObjectId
from .objects.namespace import Binding, Env, Namespace, Stub
from .objects.object import Changes, DurableObject, ObjectContext, rpc
from .sockets.websocket import CloseCode, ObjectWebSocket, SocketRequest
from .storage.api import Storage, Transaction
from .web.app import App, MountedApp, app_of, env_of, url_path
from .web.server import create_app

__all__ = [
    "AlarmInfo",
    "App",
    "BaseSettings",
    "Binding",
    "Changes",
    "CloseCode",
    "ConfigurationError",
    "DurableObject",
    "DurableObjectError",
    "Env",
    "Fenced",
    "InvalidObjectId",
    "InvalidValue",
    "MountedApp",
    "Namespace",
    "Node",
    "NotCallable",
    "ObjectContext",
    "ObjectId",
    "ObjectMoved",
    "ObjectOverloaded",
    "ObjectReset",
    "ObjectUnavailable",
    "ObjectWebSocket",
    "OutcomeUnknown",
    "ReadOnlyWrite",
    "RpcError",
    "Settings",
    "SocketRequest",
    "Storage",
    "StorageLimitExceeded",
    "StorageUnavailable",
    "Stub",
    "Transaction",
    "UnknownNamespace",
    "app_of",
    "create_app",
    "env_of",
    "error_headers",
    "rpc",
    "url_path",
]
