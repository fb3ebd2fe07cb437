"""Apps: everything an application brings (:class:`App`), and what it becomes on a node.

An app is one folder (``apps/<name>/``) and one ``App(...)``::

    app = App(
        name="chat",                         # mounted at /chat, URL names "chat:..."
        title="Chat",
        objects={"chat_room": ChatRoom},     # namespaces, unique across the node
        routes=[Route("/", page, name="page"), ...],
        settings=ChatConfig,                 # a BaseSettings class (read from CHAT_*) or instance
        templates=Path(__file__).parent / "templates",   # pages extend "base.html"
        static="chat",                       # static/chat/ served at /chat/static/
    )

An app in a module of its own ships its browser code beside it instead:
``static=Path(__file__).parent / "static"`` (a ``Path``, or an absolute path) is served at
``/<name>/static/`` the same way.

On a node each App becomes a :class:`MountedApp`: its settings resolved, its objects
registered, its routes mounted under ``/<name>`` with the name ``<name>``, so pages build URLs
with ``url_for("chat:page")`` and ``url_for("chat:static", path="chat.js")``. Route handlers
reach their app with :func:`app_of` and its objects with :func:`env_of`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, pass_context
from jinja2 import select_autoescape as _autoescape
from starlette._utils import get_route_path
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from ..base.config import BaseSettings
from ..base.errors import ConfigurationError
from ..objects.namespace import Binding, Env
from ..objects.object import DurableObject
from . import authority
from .pathindex import IndexedRouter

if TYPE_CHECKING:
    from ..host.node import Node

S = TypeVar("S", bound=BaseSettings)

#: An app's middleware around the whole node (the waiting room gates other apps' paths):
#: called with the node's ASGI app and this app as mounted; returns the wrapped ASGI app.
NodeMiddleware = Callable[[ASGIApp, "MountedApp"], ASGIApp]
#: An app's lifespan: entered after the node starts, left before it stops.
Lifespan = Callable[["MountedApp"], AbstractAsyncContextManager[None]]

_NAME_RE = re.compile(r"[a-z][a-z0-9-]{0,31}")
#: Paths of the node itself, which no app may be mounted over.
RESERVED = frozenset({"static", "healthz", "metrics", "ops", "favicon.ico", "_cluster"})
#: The scope key under which a mounted app's routes find it.
SCOPE_KEY = "runtime.app"

RUNTIME_TEMPLATES = Path(__file__).resolve().parent / "templates"


def static_root() -> Path:
    """The top-level ``static/`` folder: the source checkout's, or the copy a wheel ships
    (as the data-only package ``durable_redis_static``)."""
    checkout = Path(__file__).resolve().parents[2] / "static"
    if checkout.is_dir():
        return checkout
    try:
        import durable_redis_static  # type: ignore[import-not-found]

        return Path(next(iter(durable_redis_static.__path__)))
    except (ImportError, StopIteration):
        return checkout  # StaticFiles answers 404s; check_dir=False keeps the node up


@dataclass(frozen=True)
class App:
    """An application: objects, routes, settings, templates, static files, hooks."""

    #: Mount path (``/<name>``), URL-name namespace and default static folder.
    name: str
    title: str
    description: str = ""
    #: Namespace (a Binding, or its name) -> object class. Names are unique across the node
    #: (a clash is an error).
    objects: Mapping[Binding | str, type[DurableObject]] = field(default_factory=dict)
    #: Bindings of other apps' objects this app calls: the node refuses to start unless an
    #: app it mounts registers each.
    uses: Sequence[Binding] = ()
    routes: Sequence[BaseRoute] = ()
    #: A BaseSettings subclass (read from the environment when mounted) or an instance.
    settings: BaseSettings | type[BaseSettings] | None = None
    #: A folder of Jinja2 templates; pages ``{% extends "base.html" %}``.
    templates: str | Path | None = None
    #: Served at ``/<name>/static/``: a folder of the app's own (a ``Path``, or an absolute
    #: path: ``Path(__file__).parent / "static"``), or the name of a folder under the
    #: top-level ``static/`` (the suite's apps; a wheel ships that tree).
    static: str | Path | None = None
    #: Starlette middleware around this app's routes only.
    middleware: Sequence[Middleware] = ()
    #: Middleware around the whole node (see NodeMiddleware).
    node_middleware: Sequence[NodeMiddleware] = ()
    lifespan: Lifespan | None = None
    #: Shown on the landing page.
    listed: bool = True
    #: The app's live numbers on the landing page: a namespace (its objects held on the
    #: cluster) or "sockets" (its open client sockets) -> what to call them ("rooms open").
    live: Mapping[Binding | str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME_RE.fullmatch(self.name) or self.name in RESERVED:
            raise ConfigurationError(
                f"app name {self.name!r}: 1-32 characters of a-z, 0-9 and '-', starting with a "
                f"letter, and none of {sorted(RESERVED)}"
            )
        folder = self.static_folder()
        if folder is not None and folder.is_absolute() and not folder.is_dir():
            # (an app's own folder missing is a mistake; the top-level tree's may simply
            # not be installed, and answers 404s)
            raise ConfigurationError(f"app {self.name!r}: static folder {folder} does not exist")

    @property
    def namespaces(self) -> dict[str, type[DurableObject]]:
        """Namespace name -> object class (a Binding and its name are one namespace)."""
        return {str(name): cls for name, cls in self.objects.items()}

    def static_folder(self) -> Path | None:
        """The folder served at ``/<name>/static/`` (None: the app has none)."""
        if self.static is None:
            return None
        folder = Path(self.static)
        if isinstance(self.static, Path) or folder.is_absolute():
            return folder.resolve()
        return static_root() / folder

    def with_settings(self, settings: BaseSettings | type[BaseSettings] | None) -> App:
        """A copy of this app with other settings (tests and embedders use it); its objects
        and routes are copies too, so changing them leaves this app as it is."""
        return replace(
            self, settings=settings, objects=dict(self.objects), routes=list(self.routes)
        )


class MountedApp:
    """An App on a node: resolved settings, its objects' Env, its pages' renderer."""

    def __init__(self, app: App, node: Node, templates: Jinja2Templates) -> None:
        self.app = app
        self.name = app.name
        self.title = app.title
        self.node = node
        settings = app.settings
        if isinstance(settings, type):
            settings = settings.from_env()
        self.settings: BaseSettings | None = settings
        self.env = Env(node, self)
        #: Every app mounted on the node, this one included (set when the node's app is made).
        self.apps: tuple[MountedApp, ...] = (self,)
        self._templates = templates

    def __repr__(self) -> str:
        return f"<MountedApp {self.name}>"

    def settings_as(self, kind: type[S]) -> S:
        """This app's settings, checked to be a ``kind`` (typed for the caller)."""
        settings = self.settings
        if not isinstance(settings, kind):
            raise ConfigurationError(
                f"app {self.name!r} has settings {type(settings).__name__}, not {kind.__name__}"
            )
        return settings

    def operator(self, conn: HTTPConnection) -> bool:
        """Whether ``conn`` carries the node operator's authority, as /ops asks for it: the
        node's OPS_TOKEN (``Authorization: Bearer``, or the cookie /ops logs in with),
        another node's link credentials, or, on a laptop with none configured (no
        OPS_TOKEN, no CLUSTER_SECRET, loopback only), being on this machine."""
        return authority.allowed(self.node, conn)

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any] | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """A page from this app's templates (``template`` is a name in its folder)."""
        return self._templates.TemplateResponse(
            request,
            f"{self.name}/{template}",
            {"app": self, **(context or {})},
            status_code=status_code,
            headers=headers,
        )

    def mount(self) -> Mount:
        """The app's routes under /<name>, with its static files at /<name>/static."""
        routes = list(self.app.routes)
        directory = self.app.static_folder()
        if directory is not None:
            routes.append(
                Mount("/static", StaticFiles(directory=directory, check_dir=False), name="static")
            )
        return _AppMount(self, IndexedRouter(routes), list(self.app.middleware))


class _AppMount(Mount):
    """An app's mount at ``/<name>``: Starlette's Mount, matched by its literal prefix (no
    regular expression), which puts the mounted app into the scope itself (where app_of()
    and env_of() find it) instead of through a middleware layer of its own."""

    def __init__(self, mounted: MountedApp, router: IndexedRouter, middleware: list[Middleware]):
        super().__init__(f"/{mounted.name}", app=router, name=mounted.name, middleware=middleware)
        self.mounted = mounted
        self.prefix = f"/{mounted.name}"

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] not in ("http", "websocket"):
            return Match.NONE, {}
        route_path = get_route_path(scope)
        if not route_path.startswith(self.prefix + "/"):
            return Match.NONE, {}
        root_path = scope.get("root_path", "")
        return Match.FULL, {
            "path_params": dict(scope.get("path_params", {})),
            "app_root_path": scope.get("app_root_path", root_path),
            "root_path": root_path + self.prefix,
            "endpoint": self.app,
        }

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[SCOPE_KEY] = self.mounted
        await self.app(scope, receive, send)


def app_of(conn: HTTPConnection) -> MountedApp:
    """The app whose route is handling ``conn``."""
    mounted = conn.scope.get(SCOPE_KEY)
    if mounted is None:
        raise ConfigurationError("app_of() is for routes of a mounted App")
    assert isinstance(mounted, MountedApp)
    return mounted


def env_of(conn: HTTPConnection) -> Env:
    """The objects' environment, from inside a route handler or middleware."""
    mounted = conn.scope.get(SCOPE_KEY)
    if isinstance(mounted, MountedApp):
        return mounted.env
    env: Env = conn.app.state.node.env
    return env


def url_path(conn: HTTPConnection, name: str, /, **params: Any) -> str:
    """The path (no scheme or host, so it holds behind any proxy) of a named route, its
    parameters percent-encoded."""
    router = conn.scope["router"]
    quoted = {k: quote(str(v), safe="/") for k, v in params.items()}
    path = str(router.url_path_for(name, **quoted))
    # (inside a mount, root_path includes the mount; app_root_path is the app's own)
    root: str = conn.scope.get("app_root_path", conn.scope.get("root_path", ""))
    return root.rstrip("/") + path


def templates_for(apps: Sequence[App]) -> Jinja2Templates:
    """One Jinja2 environment for the node: the runtime's layouts (``base.html``), then each
    app's folder under its name (``chat/chat.html``)."""
    by_app = {a.name: FileSystemLoader(str(a.templates)) for a in apps if a.templates}
    env = Environment(
        loader=ChoiceLoader([FileSystemLoader(str(RUNTIME_TEMPLATES)), PrefixLoader(by_app)]),
        autoescape=_autoescape(),
    )

    @pass_context
    def url_for(context: Mapping[str, Any], name: str, /, **params: Any) -> str:
        return url_path(context["request"], name, **params)

    env.globals["url_for"] = url_for
    return Jinja2Templates(env=env)


def check_unique(apps: Sequence[App]) -> None:
    """Two apps may not share a mount or a namespace name."""
    mounts: dict[str, App] = {}
    owners: dict[str, str] = {}
    for app in apps:
        if app.name in mounts:
            raise ConfigurationError(f"two apps are named {app.name!r}")
        mounts[app.name] = app
        for namespace in app.namespaces:
            if namespace in owners:
                raise ConfigurationError(
                    f"namespace {namespace!r} of app {app.name!r} is already registered by app "
                    f"{owners[namespace]!r}; rename one of them"
                )
            owners[namespace] = app.name
    for app in apps:
        for binding in app.uses:
            if binding.name not in owners:
                raise ConfigurationError(
                    f"app {app.name!r} uses namespace {binding.name!r}, which no app mounted on "
                    "this node registers; mount the app that declares it"
                )
