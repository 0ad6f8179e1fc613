"""The depth of JSON measured on its text agrees with a walk of the decoded value, whatever
brackets, quotes and escapes its strings hold."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.json_depth import TooDeep, decode_bounded, depth_exceeds


def walked_depth(value: Any) -> int:
    """The reference: how deep objects and arrays nest in a decoded value (0 for a scalar)."""
    if isinstance(value, dict):
        return 1 + max((walked_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((walked_depth(v) for v in value), default=0)
    return 0


tricky_text = st.text(alphabet=st.sampled_from('[]{}"\\/ab\n\u00e9\u2028'), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | tricky_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(tricky_text, children, max_size=4),
    max_leaves=40,
)


@settings(max_examples=300)
@given(value=json_values, limit=st.integers(0, 12), ascii_only=st.booleans())
def test_text_depth_agrees_with_a_walk_of_the_value(value: Any, limit: int, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert depth_exceeds(text, limit) == (walked_depth(value) > limit)


def test_past_the_limit_is_refused_and_at_it_decoded() -> None:
    at_limit = "[" * 64 + "]" * 64
    assert decode_bounded(at_limit.encode(), 64) == msgspec.json.decode(at_limit)
    with pytest.raises(TooDeep, match="deeper than 64 levels"):
        decode_bounded("[" * 65 + "]" * 65, 64)
    with pytest.raises(TooDeep):
        decode_bounded(b'{"a": "[[[[", "b": ' + b"[" * 65 + b"]" * 65 + b"}", 64)
