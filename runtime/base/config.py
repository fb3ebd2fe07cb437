"""Settings: typed, frozen dataclasses filled from defaults, the environment and overrides.

One mechanism serves the node and every app. A settings class is a frozen dataclass that
subclasses :class:`BaseSettings` and names its environment prefix::

    @dataclass(frozen=True)
    class ChatConfig(BaseSettings):
        env_prefix: ClassVar[str] = "CHAT_"
        history: int = 1000          # CHAT_HISTORY

Each field is read from ``<prefix><FIELD NAME IN CAPITALS>``. Field types may be ``bool``
(``1/true/yes/on`` or ``0/false/no/off``), ``int``, ``float``, ``str`` or ``tuple[str, ...]``
(comma-separated). Overrides (command-line flags, tests) win over the environment, which wins
over the defaults. ``__post_init__`` validates; every problem is a
:class:`~runtime.errors.ConfigurationError` that names the variable.

The node's own settings are :class:`Settings` (no prefix: ``LEASE_TTL``, ``REDIS_URL``...).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar, Self

from .errors import ConfigurationError

NODE_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")

#: The default key under which IDs are derived. Named IDs depend on it, so a cluster must use
#: one value for ever; it is not a secret (unique IDs get their strength from randomness).
DEFAULT_ID_KEY = "durable-redis/ids/v1"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class BaseSettings:
    """Base of every settings dataclass (the node's and each app's)."""

    #: Prefix of this class's environment variables ("CHAT_" -> CHAT_HISTORY).
    env_prefix: ClassVar[str] = ""

    @classmethod
    def env_name(cls, name: str) -> str:
        """The environment variable of field ``name``."""
        return f"{cls.env_prefix}{name.upper()}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Defaults, then ``env`` (``os.environ`` by default), then ``overrides`` (None values
        in ``overrides`` are skipped, so unset command-line flags change nothing)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            raw = env.get(cls.env_name(f.name))
            if raw is None or raw == "" or not f.metadata.get("env", True):
                continue
            values[f.name] = _parse(cls.env_name(f.name), _kind(f.type), raw)
        values.update(cls.extra_from_env(env))
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except TypeError as exc:  # an override naming no field
            raise ConfigurationError(f"{cls.__name__}: {exc}") from None

    @classmethod
    def extra_from_env(cls, env: Mapping[str, str]) -> dict[str, Any]:
        """Fields read some other way than one variable each (see Settings.redis_urls)."""
        return {}

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)  # type: ignore[type-var]


def _kind(annotation: Any) -> str:
    """A field's type as a name: "bool", "int", "float", "tuple" or "str". Annotations are
    strings under ``from __future__ import annotations``; they are read, not evaluated."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    if text.startswith("tuple"):
        return "tuple"
    return text if text in ("bool", "int", "float") else "str"


def _parse(variable: str, kind: str, raw: str) -> Any:
    """``raw`` (an environment value) as the field's type."""
    try:
        if kind == "bool":
            word = raw.strip().lower()
            if word in _TRUE | _FALSE:
                return word in _TRUE
            raise ValueError
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "tuple":
            return tuple(p.strip() for p in raw.split(",") if p.strip())
    except ValueError:
        raise ConfigurationError(f"{variable}={raw!r} is not a valid {kind}") from None
    return raw


@dataclass(frozen=True)
class Settings(BaseSettings):
    """The node's settings (docs/configuration.md lists each with its reason)."""

    # Where this node listens and how it is called.
    host: str = "127.0.0.1"
    port: int = 8000
    node_id: str = ""
    # Redis. Empty redis_url means: start an embedded Valkey with its data under data_dir.
    redis_url: str = ""
    data_dir: str = "data"
    key_prefix: str = "do"
    # "auto" asks the server (INFO cluster); "yes"/"no" say whether it is a Redis Cluster.
    redis_cluster: str = "auto"
    # Round trips of script calls in flight at once, per Redis (each on its own connection).
    redis_pipelines: int = 4
    # Many nodes: the shared secret of node-to-node links (unset: this node neither forwards
    # nor accepts forwarded events), and the URL other nodes reach this one at.
    cluster_secret: str = field(default="", repr=False)
    advertise_url: str = ""
    heartbeat_interval: float = 1.0
    # TLS: with a certificate and key, the node serves https:// and wss:// (links too: its
    # ADVERTISE_URL defaults to wss://); link_ca_file is the CA other nodes' certificates
    # are checked against (unset: the system's).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    link_ca_file: str = ""
    # A node link proves the secret again (challenge and answer) this often, so no link
    # lives long without re-authenticating.
    link_reauth_interval: float = 60.0
    # Jurisdictions: the ones this node serves (it needs REDIS_URL_<NAME> for each), and all
    # the cluster knows (so IDs of the others can be validated and forwarded).
    jurisdictions: tuple[str, ...] = ()
    known_jurisdictions: tuple[str, ...] = ()
    #: (jurisdiction, Redis URL) pairs, from REDIS_URL_<NAME> variables.
    redis_urls: tuple[tuple[str, str], ...] = field(default=(), repr=False, metadata={"env": False})
    # Leases: a node renews each lease every lease_ttl / 2 and stops serving cached reads
    # lease_margin seconds before its own local deadline.
    lease_ttl: float = 2.0
    lease_margin: float = 0.25
    # How long an activation waits for a lease held by a node that is gone.
    activation_timeout: float = 5.0
    # Memory: objects with no events and no sockets leave after idle_timeout; objects whose
    # only activity is open sockets hibernate after hibernate_after.
    idle_timeout: float = 30.0
    hibernate_after: float = 10.0
    sweep_interval: float = 1.0
    # Per-object protection and storage limits.
    max_queue: int = 10_000
    max_key_bytes: int = 2048
    max_value_bytes: int = 128 * 1024
    max_batch_keys: int = 128
    max_attachment_bytes: int = 16 * 1024
    max_cache_bytes: int = 8 * 1024 * 1024
    max_body_bytes: int = 1024 * 1024
    # A request's line and headers at most this big (431), arriving within this long (408).
    max_header_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    # (a 1 MiB payload plus room for an app protocol's header around it)
    max_frame_bytes: int = 1024 * 1024 + 1024
    max_send_buffer_bytes: int = 4 * 1024 * 1024
    # Alarms: retried with exponential backoff from alarm_retry_base, alarm_max_retries times.
    alarm_retry_base: float = 2.0
    alarm_max_retries: int = 6
    alarm_shards: int = 16
    alarm_poll_interval: float = 0.5
    alarm_claim_timeout: float = 30.0
    # Read replicas (docs/replicas.md): REPLICAS=0 serves every read on the primary. A replica
    # serves a read-only call while it is at most replica_max_lag_ms and
    # replica_max_lag_commits behind what it knows (past that, the call goes to the primary);
    # a call that needs a newer version than the replica has waits up to replica_wait for it.
    # Objects over replica_max_keys or replica_max_bytes get no replica.
    replicas: bool = True
    replica_max_lag_ms: float = 1000.0
    replica_max_lag_commits: int = 1000
    replica_wait: float = 0.1
    replica_max_keys: int = 10_000
    replica_max_bytes: int = 16 * 1024 * 1024
    # IDs and security.
    id_key: str = DEFAULT_ID_KEY
    #: Signing keys of apps' tokens derive from it (keys.py); unset, they live in Redis.
    secret_key: str = field(default="", repr=False)
    allowed_origins: tuple[str, ...] = ()
    #: METRICS=0 stops keeping the labelled counters and histograms (/metrics answers 404).
    metrics: bool = True
    #: Who may read /metrics and /ops (Authorization: Bearer <token>); other nodes always
    #: may. Unset, they are open only on a laptop (no CLUSTER_SECRET, loopback only).
    ops_token: str = field(default="", repr=False)
    #: Host names the node answers to besides localhost and its own advertised host.
    allowed_hosts: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    # Extra apps to mount, as "module:attribute" import strings.
    apps: tuple[str, ...] = field(default_factory=tuple)
    log_level: str = "info"
    #: "text", or "json": one JSON object per line (python-json-logger).
    log_format: str = "text"

    def __post_init__(self) -> None:
        if self.node_id and not NODE_ID_RE.fullmatch(self.node_id):
            raise ConfigurationError(
                f"node id {self.node_id!r}: use 1-64 characters of letters, digits, '_', '.', '-'"
            )
        if self.lease_ttl <= 4 * self.lease_margin:
            raise ConfigurationError("LEASE_TTL must be more than four times LEASE_MARGIN")
        for name in (
            "idle_timeout",
            "hibernate_after",
            "sweep_interval",
            "alarm_retry_base",
            "link_reauth_interval",
            "replica_max_lag_ms",
        ):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{self.env_name(name)} must be positive")
        if self.max_queue < 1 or self.alarm_shards < 1 or not 1 <= self.redis_pipelines <= 32:
            raise ConfigurationError(
                "MAX_QUEUE and ALARM_SHARDS must be >= 1, REDIS_PIPELINES between 1 and 32"
            )
        if self.log_format not in ("text", "json"):
            raise ConfigurationError("LOG_FORMAT is text or json")
        if self.redis_cluster not in ("auto", "yes", "no"):
            raise ConfigurationError("REDIS_CLUSTER is auto, yes or no")
        urls = dict(self.redis_urls)
        for name in self.jurisdictions:
            if name not in urls:
                raise ConfigurationError(
                    f"this node serves jurisdiction {name!r} but REDIS_URL_{name.upper()} "
                    "is not set: its objects' keys go only to that Redis"
                )
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ConfigurationError("set both TLS_CERT_FILE and TLS_KEY_FILE, or neither")
        if not 1 <= self.max_batch_keys <= 1000:
            # Lua 5.1 can unpack only a few thousand values into one command.
            raise ConfigurationError("MAX_BATCH_KEYS must be between 1 and 1000")

    @classmethod
    def extra_from_env(cls, env: Mapping[str, str]) -> dict[str, Any]:
        prefix = "REDIS_URL_"
        urls = tuple(
            (key[len(prefix) :].lower(), value)
            for key, value in sorted(env.items())
            if key.startswith(prefix) and value
        )
        return {"redis_urls": urls} if urls else {}

    @property
    def embedded(self) -> bool:
        return not self.redis_url

    @property
    def all_jurisdictions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.jurisdictions, *self.known_jurisdictions)))

    def url_for(self, jurisdiction: str) -> str:
        return dict(self.redis_urls)[jurisdiction]

    def public_url(self) -> str:
        """Where other nodes reach this one (ADVERTISE_URL, else host and port)."""
        if self.advertise_url:
            return self.advertise_url.rstrip("/")
        host = self.host if self.host not in ("0.0.0.0", "::", "") else os.uname().nodename
        scheme = "wss" if self.tls_cert_file else "ws"
        return f"{scheme}://{host}:{self.port}"

    def with_node_id(self) -> Settings:
        """Fill in a node id when none was given (host name + random suffix)."""
        if self.node_id:
            return self
        host = re.sub(r"[^A-Za-z0-9_.-]", "-", os.uname().nodename)[:40] or "node"
        return replace(self, node_id=f"{host}-{secrets.token_hex(3)}")
