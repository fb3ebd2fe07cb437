"""Object IDs: 64 lowercase hex characters (256 bits) that say who minted them.

Layout of the 32 bytes::

    bytes 0..23   body: random (unique IDs) or a keyed hash of the name (named IDs)
    byte  24      flags: high bit set for unique IDs; low 7 bits the jurisdiction code (0: none)
    bytes 25..31  check: keyed hash of bytes 0..24 under the namespace's key

The check value lets :meth:`IdFactory.from_string` tell an ID minted by this namespace (and
jurisdiction) from a random or foreign string, as Cloudflare's IDs do. Named IDs are a pure
function of (ID key, namespace, jurisdiction, name), so every node computes the same one.
Unique IDs carry 192 random bits, so they cannot be guessed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..base.errors import ConfigurationError, InvalidObjectId

ID_BYTES = 32
_BODY = 24
_CHECK = 7
_UNIQUE_FLAG = 0x80
_HEX_RE = re.compile(r"[0-9a-f]{64}")
JURISDICTION_RE = re.compile(r"[a-z][a-z0-9-]{0,15}")
MAX_NAME_BYTES = 2048


def jurisdiction_code(name: str) -> int:
    """The 7-bit code (1..127) a jurisdiction name is written as inside an ID."""
    return 1 + hashlib.sha256(b"jurisdiction\0" + name.encode()).digest()[0] % 127


@dataclass(frozen=True, slots=True)
class ObjectId:
    """The identity of one object: its namespace and 64 hex characters."""

    namespace: str
    hex: str
    jurisdiction: str | None = None
    #: The name a named ID was made from, when this process made it (not carried in the hex).
    name: str | None = field(default=None, compare=False)

    @property
    def is_unique(self) -> bool:
        return bool(bytes.fromhex(self.hex[48:50])[0] & _UNIQUE_FLAG)

    def __str__(self) -> str:
        return self.hex


class IdFactory:
    """Mints and validates the IDs of one namespace."""

    def __init__(self, namespace: str, id_key: bytes, jurisdictions: Iterable[str] = ()) -> None:
        self.namespace = namespace
        self._key = hmac.new(id_key, b"namespace\0" + namespace.encode(), "sha256").digest()
        self._by_code: dict[int, str] = {}
        self._valid: dict[str, ObjectId] = {}  # IDs already checked (the check is an HMAC)
        self._named: dict[tuple[str, str | None], ObjectId] = {}  # names already derived
        for j in jurisdictions:
            self.add_jurisdiction(j)

    def add_jurisdiction(self, name: str) -> None:
        if not JURISDICTION_RE.fullmatch(name):
            raise ConfigurationError(
                f"jurisdiction {name!r} must be 1-16 characters of a-z, 0-9 and '-', "
                "starting with a letter"
            )
        code = jurisdiction_code(name)
        other = self._by_code.get(code)
        if other is not None and other != name:
            raise ConfigurationError(
                f"jurisdictions {other!r} and {name!r} share an ID code; rename one of them"
            )
        self._by_code[code] = name

    def _code_of(self, jurisdiction: str | None) -> int:
        if jurisdiction is None:
            return 0
        code = jurisdiction_code(jurisdiction)
        if self._by_code.get(code) != jurisdiction:
            raise InvalidObjectId(
                f"jurisdiction {jurisdiction!r} is not configured on this cluster "
                f"(known: {sorted(self._by_code.values()) or 'none'})"
            )
        return code

    def _seal(self, body: bytes, flags: int) -> str:
        head = body + bytes([flags])
        check = hmac.new(self._key, b"check\0" + head, "sha256").digest()[:_CHECK]
        return (head + check).hex()

    def from_name(self, name: str, jurisdiction: str | None = None) -> ObjectId:
        """The ID for ``name``: the same on every node, for ever (given the same ID key)."""
        known = self._named.get((name, jurisdiction)) if isinstance(name, str) else None
        if known is not None:  # (two HMACs saved: a busy room's name is asked for often)
            return known
        object_id = self._derive(name, jurisdiction)
        if len(self._named) >= 4096:  # a small memo of recent names, not a growing table
            self._named.pop(next(iter(self._named)))
        self._named[(name, jurisdiction)] = object_id
        return object_id

    def _derive(self, name: str, jurisdiction: str | None) -> ObjectId:
        if not isinstance(name, str):
            raise InvalidObjectId(f"an object name must be a str, not {type(name).__name__}")
        raw = name.encode("utf-8", "surrogatepass")
        if len(raw) > MAX_NAME_BYTES:
            raise InvalidObjectId(f"an object name may be at most {MAX_NAME_BYTES} bytes")
        code = self._code_of(jurisdiction)
        scope = (jurisdiction or "").encode()
        body = hmac.new(self._key, b"name\0" + scope + b"\0" + raw, "sha256").digest()[:_BODY]
        return ObjectId(self.namespace, self._seal(body, code), jurisdiction, name)

    def new_unique(self, jurisdiction: str | None = None) -> ObjectId:
        """A fresh random ID that nobody can guess."""
        code = self._code_of(jurisdiction)
        body = secrets.token_bytes(_BODY)
        return ObjectId(self.namespace, self._seal(body, _UNIQUE_FLAG | code), jurisdiction)

    def from_string(self, text: str) -> ObjectId:
        """Validate an ID received from outside; refuse anything this namespace did not mint."""
        known = self._valid.get(text) if isinstance(text, str) else None
        if known is not None:
            return known
        object_id = self._check(text)
        if len(self._valid) >= 4096:  # a small memo of recent IDs, not a growing table
            self._valid.pop(next(iter(self._valid)))
        self._valid[text] = object_id
        return object_id

    def _check(self, text: str) -> ObjectId:
        if not isinstance(text, str) or not _HEX_RE.fullmatch(text):
            raise InvalidObjectId(
                f"an object ID is 64 lowercase hex characters; got {_preview(text)}"
            )
        raw = bytes.fromhex(text)
        head = raw[: _BODY + 1]
        want = hmac.new(self._key, b"check\0" + head, "sha256").digest()[:_CHECK]
        if not hmac.compare_digest(want, raw[_BODY + 1 :]):
            raise InvalidObjectId(f"{text[:12]}... was not minted by namespace {self.namespace!r}")
        code = raw[_BODY] & ~_UNIQUE_FLAG
        jurisdiction = None
        if code:
            jurisdiction = self._by_code.get(code)
            if jurisdiction is None:
                raise InvalidObjectId(
                    f"{text[:12]}... belongs to a jurisdiction this cluster does not serve"
                )
        return ObjectId(self.namespace, text, jurisdiction)


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
