"""JSON with a bounded depth: a body nested thousands deep (``[[[[...]]]]``) is refused with a
clear reason before anything walks it, rather than exhausting the decoder's or our own recursion
(msgspec raises ``RecursionError`` at about 1,000 levels, which is not a ``DecodeError``)."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["NotUtf8", "TooDeep", "decode_bounded", "depth_exceeds"]


class NotUtf8(msgspec.DecodeError):
    """The bytes are not UTF-8, which JSON must be (RFC 8259)."""


class TooDeep(ValueError):
    """The JSON nests deeper than the limit; the message says so, for a person."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"The JSON is nested deeper than {limit} levels (JSON_MAX_DEPTH).")
        self.limit = limit


def depth_exceeds(value: Any, limit: int) -> bool:
    """Whether a decoded JSON value nests objects and arrays deeper than ``limit`` (iterative)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if level > limit:
            return True
        pending.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return False


def decode_bounded(data: bytes | str, limit: int) -> Any:
    """``msgspec.json.decode`` that raises :class:`TooDeep` past ``limit`` levels (and
    ``msgspec.DecodeError`` for what is not JSON, invalid UTF-8 included: msgspec raises
    ``UnicodeDecodeError`` for that, which is no ``DecodeError``)."""
    try:
        value = msgspec.json.decode(data)
    except RecursionError:
        raise TooDeep(limit) from None
    except UnicodeDecodeError as exc:
        raise NotUtf8(f"JSON must be UTF-8: {exc.reason} at byte {exc.start}") from None
    if depth_exceeds(value, limit):
        raise TooDeep(limit)
    return value
