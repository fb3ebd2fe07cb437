"""What objects and routes get as ``env``: the node's namespaces and settings, their app's
settings, and signing keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .config import BaseSettings, Settings
    from .namespace import Namespace

S = TypeVar("S", bound="BaseSettings")


class EnvHost(Protocol):
    """What an Env needs from its node."""

    settings: Settings
    node_id: str

    def namespace(self, name: str) -> Namespace: ...
    async def signing_key(self, purpose: str) -> bytes: ...


class AppInfo(Protocol):
    """The app an Env belongs to (an app.MountedApp)."""

    name: str

    def settings_as(self, kind: type[S]) -> S: ...


class Env:
    """What an object gets as ``self.env`` (and a route from ``env_of``): the node's
    namespaces and settings, and the settings of the app that registered the object."""

    def __init__(self, host: EnvHost, app: AppInfo | None = None) -> None:
        self._node = host
        self.app = app

    @property
    def settings(self) -> Settings:
        """The node's settings (limits such as ``max_value_bytes`` live there)."""
        return self._node.settings

    @property
    def node_id(self) -> str:
        """The node this code runs on."""
        return self._node.node_id

    def namespace(self, name: str) -> Namespace:
        """The namespace registered under ``name`` (by any app of the node)."""
        return self._node.namespace(name)

    async def signing_key(self, purpose: str) -> bytes:
        """32 bytes to sign ``purpose``'s tokens with (cookies, seat tokens, share links):
        the same on every node, derived from SECRET_KEY or kept in Redis (keys.py)."""
        return await self._node.signing_key(purpose)

    def app_settings(self, kind: type[S]) -> S:
        """The settings of this object's (or route's) app, checked to be a ``kind``."""
        if self.app is None:
            raise ConfigurationError(
                f"no App with {kind.__name__} settings registered this namespace; "
                "mount the object with App(settings=...)"
            )
        return self.app.settings_as(kind)
