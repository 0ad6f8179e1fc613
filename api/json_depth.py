"""JSON with a bounded depth: a body nested thousands deep (``[[[[...]]]]``) is refused with a
clear reason before anything walks it, rather than exhausting the decoder's or our own recursion
(msgspec raises ``RecursionError`` at about 1,000 levels, which is not a ``DecodeError``)."""

from __future__ import annotations

import re
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


# JSON strings (escapes included), then everything that is not a bracket, then the innermost
# pairs: on text already decoded as valid JSON, brackets outside strings are its structure.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST = re.compile(r"\[\]|\{\}")


def depth_exceeds(text: str, limit: int) -> bool:
    """Whether valid JSON ``text`` nests objects and arrays deeper than ``limit``.

    Measured on the text rather than by walking the decoded value: each pass of a regular
    expression removes the innermost pairs, so the number of passes is the depth, and every pass
    runs in C. Walking the decoded tree in Python cost a quarter of a millisecond per Stripe
    event, more than decoding it. Most events hold fewer brackets than the limit, and then cannot
    nest deeper than it: counting them is the first, cheapest answer."""
    if text.count("[") + text.count("{") <= limit:
        return False
    structure = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(limit):
        if not structure:
            return False
        structure = _INNERMOST.sub("", structure)
    return bool(structure)


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
    if depth_exceeds(data if isinstance(data, str) else data.decode(), limit):
        raise TooDeep(limit)
    return value
