"""The reader keeps each object as Stripe's JSON: the same object reads the same (one digest)
whether Stripe sent it pretty-printed in a list or compact on its own, anything that is not an
object is left out, and the SDK's debug log formats nothing unless someone reads it."""

from __future__ import annotations

import json
from typing import Any

import stripe
from stripe import _api_requestor

from api.gateway.reading import Fetched
from api.sync.snapshots import digest_of

SUBSCRIPTION: dict[str, Any] = {
    "id": "sub_1",
    "object": "subscription",
    "customer": "cus_1",
    "metadata": {"note": 'Café "quoted" \\ slash'},
    "items": {"object": "list", "data": [{"id": "si_1", "quantity": 2}]},
}


def test_an_object_digests_the_same_pretty_in_a_list_and_compact_alone() -> None:
    in_list = json.dumps({"data": [SUBSCRIPTION]}, indent=2)  # Stripe pretty-prints its answers
    inner = in_list[in_list.index("[") + 1 : in_list.rindex("]")].strip()
    listed = Fetched.read(inner.encode())
    alone = Fetched.read(json.dumps(SUBSCRIPTION, separators=(",", ":")).encode())
    assert listed is not None
    assert alone is not None
    assert (listed.id, listed.object) == ("sub_1", "subscription")
    assert digest_of(listed) == digest_of(alone)
    assert listed.data == SUBSCRIPTION
    changed = Fetched.read(json.dumps({**SUBSCRIPTION, "customer": "cus_2"}).encode())
    assert changed is not None
    assert digest_of(changed) != digest_of(alone)


def test_what_is_not_an_object_is_left_out() -> None:
    assert Fetched.read(b"42") is None
    assert Fetched.read(b"[1, 2]") is None
    assert Fetched.read(b'{"id": ') is None
    nameless = Fetched.read(b'{"object": "customer", "id": 7}')
    assert nameless is not None
    assert nameless.id is None
    assert nameless.object == "customer"


def test_the_sdk_formats_its_debug_lines_only_when_they_are_read(monkeypatch: Any, capsys: Any) -> None:
    formatted: list[dict[str, Any]] = []
    monkeypatch.setattr(stripe._util, "logfmt", lambda props: formatted.append(props) or "line")
    log_debug = _api_requestor.log_debug
    log_debug("API response body", body=b"x" * 100_000)
    assert formatted == []
    monkeypatch.setattr(stripe, "log", "debug")
    log_debug("API response body", body=b"x")
    assert formatted
    assert "line" in capsys.readouterr().err
