"""Plain data <-> bytes, with msgpack; never pickle.

Plain data is: None, bool, int (64-bit), float, str, bytes, list/tuple, dict. Anything else
(sets, dataclasses, datetimes, custom classes) is refused with :class:`InvalidValue`, so what
comes back out of storage or across an RPC is exactly what went in (tuples come back as lists).
"""

from __future__ import annotations

from typing import Any

import msgpack

from .errors import InvalidValue

# One packer per process: msgpack's Packer reuses its buffer, which makes small values cheap.
_packer = msgpack.Packer(use_bin_type=True, autoreset=True, datetime=False)


def encode(value: Any) -> bytes:
    """Serialise plain data; raise :class:`InvalidValue` naming what is not plain data."""
    try:
        data: bytes = _packer.pack(value)
    except (TypeError, ValueError, OverflowError) as exc:
        _packer.reset()
        raise InvalidValue(
            f"value is not plain data (None, bool, int, float, str, bytes, list, dict): {exc}"
        ) from None
    return data


def decode(data: bytes) -> Any:
    """Deserialise bytes produced by :func:`encode`."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError) as exc:
        raise InvalidValue(f"bytes are not a valid msgpack value: {exc}") from None
