"""The event log as typed facts: one row per event, the columns the KPI engine reads.

Parsing a Stripe event (a few KB of JSON) is the expensive part of any KPI; it happens here, once
per event, when the event is exported (:mod:`analytics.export`). Everything after reads typed
columns through DuckDB and Polars.

MRR is stored as an integer number of ``1/SCALE`` of a minor unit. ``SCALE`` (12 x 60 x 10,000)
makes the monthly value of yearly, weekly and daily prices, of interval counts 1-6 and 12, and of
percentage discounts with two decimals exact integers; anything else is rounded to the nearest
1/7,200,000 of a cent, far below the cent every KPI is reported in.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime
from fractions import Fraction
from itertools import groupby
from typing import Any

import pyarrow as pa

from analytics.mrr import state_of
from api.events.model import STRIPE_SOURCES, ParsedEvent
from api.stripe_objects.fields import invoice_dates, invoice_item_line, invoice_lines, invoice_subscription_id, whole
from api.stripe_objects.ordering import Snapshot, in_second_order

__all__ = [
    "FACT_SCHEMA",
    "FACT_SOURCES",
    "SCALE",
    "fact_row",
    "facts_table",
    "month_of",
    "positions_in_second",
    "price_detail",
]

SCALE = 7_200_000
FACT_SOURCES = STRIPE_SOURCES
"""Stripe's own objects (deliveries, API answers, synced objects); the service's events kept are
``usage.recorded``."""

FACT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("created", pa.int64()),
        ("month", pa.string()),
        ("type", pa.string()),
        ("source", pa.string()),
        ("object_type", pa.string()),
        ("object_id", pa.string()),
        ("customer_id", pa.string()),
        ("currency", pa.string()),
        # subscriptions
        ("status", pa.string()),
        ("mrr", pa.int64()),
        ("undiscounted_mrr", pa.int64()),
        ("discount_ends", pa.int64()),
        ("cancel_at_period_end", pa.bool_()),
        ("user_id", pa.string()),
        ("delinquent", pa.bool_()),
        ("terminal", pa.bool_()),
        ("rank", pa.int64()),
        ("trial_end", pa.int64()),
        ("period_end", pa.int64()),
        ("plan", pa.string()),
        ("pos", pa.int64()),
        ("previous_json", pa.string()),
        ("object_json", pa.string()),
        # invoices, charges, refunds, disputes, checkout sessions, usage
        ("amount", pa.int64()),
        ("billing_reason", pa.string()),
        ("subscription_id", pa.string()),
        ("period_start", pa.int64()),
        ("attempt_count", pa.int64()),
        ("charge_id", pa.string()),
        ("refunds_json", pa.string()),
        ("feature", pa.string()),
        ("period", pa.string()),
        # what history reconstruction (analytics.reconstruction) and the plan names read
        ("detail_json", pa.string()),
    ]
)


def month_of(moment: int) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m")


def _scaled(value: Fraction) -> int:
    return round(value * SCALE)


def _rank(rank: tuple[int, ...]) -> int:
    """The subscription rank tuple (status order, cancel flag) as one sortable integer."""
    value = 0
    for part in rank:
        value = value * 1_000 + int(part)
    return value


PRICE_FIELDS = ("id", "object", "currency", "unit_amount", "recurring", "product", "lookup_key", "nickname")


def price_detail(obj: dict[str, Any]) -> dict[str, Any]:
    """The parts of a price MRR and the plan names read (a subscription item's ``price``)."""
    return {field: obj.get(field) for field in PRICE_FIELDS}


def _dated(obj: dict[str, Any]) -> str:
    """When a charge or dispute happened and its status: what history reconstruction dates a
    synced one by (its snapshot is dated when it was fetched)."""
    return json.dumps({"created": obj.get("created"), "status": obj.get("status")}, separators=(",", ":"))


def fact_row(event: ParsedEvent) -> dict[str, Any] | None:
    """The facts of one event, or None for events no KPI reads."""
    obj = event.obj
    if event.source == "service":
        if event.type != "usage.recorded":
            return None
        row: dict[str, Any] = {
            "user_id": str(obj.get("user_id")),
            "feature": str(obj.get("feature")),
            "amount": int(obj.get("quantity") or 0),
            "period": f"{obj.get('period_start', '')}|{obj.get('period_end', '')}",
        }
    elif event.type.startswith("customer.subscription.") and event.object_type == "subscription":
        snapshot, state = state_of(event)
        row = {
            "currency": state.currency,
            "status": state.status,
            "mrr": _scaled(state.full_mrr),
            "undiscounted_mrr": _scaled(state.undiscounted_mrr),
            "discount_ends": state.discount_ends,
            "cancel_at_period_end": state.cancel_at_period_end,
            "user_id": state.user_id,
            "delinquent": state.delinquent,
            "terminal": snapshot.terminal,
            "rank": _rank(snapshot.rank),
            "trial_end": int(obj["trial_end"]) if obj.get("trial_end") else None,
            "period_end": state.period_end,
            "plan": state.plan,
            "previous_json": json.dumps(event.previous_attributes) if event.previous_attributes else None,
            "object_json": json.dumps(obj),
            "_snapshot": snapshot,
        }
        row["customer_id"] = state.customer_id
    elif event.object_type == "invoice" and event.type.startswith("invoice."):
        row = {
            "currency": obj.get("currency"),
            "amount": whole(obj, "amount_due"),
            "billing_reason": obj.get("billing_reason"),
            "subscription_id": invoice_subscription_id(obj),
            "period_start": obj.get("period_start"),
            "attempt_count": whole(obj, "attempt_count"),
            "detail_json": json.dumps({**invoice_dates(obj), "lines": invoice_lines(obj)}, separators=(",", ":")),
        }
    elif event.object_type in ("charge", "refund"):
        refunds = (obj.get("refunds") or {}).get("data") or [] if event.object_type == "charge" else [obj]
        kept = [
            [str(r["id"]), int(r.get("created") or 0), str(r.get("currency") or ""), whole(r, "amount")]
            for r in refunds
            if isinstance(r, dict) and r.get("id")
        ]
        row = {
            "currency": obj.get("currency"),
            "amount": whole(obj, "amount"),
            "charge_id": event.charge_id,
            "refunds_json": json.dumps(kept) if kept else None,
            "detail_json": _dated(obj),
        }
    elif event.object_type == "dispute":
        row = {
            "currency": obj.get("currency"),
            "amount": whole(obj, "amount"),
            "charge_id": event.charge_id,
            "detail_json": _dated(obj),
        }
    elif event.object_type == "invoiceitem":
        line = invoice_item_line(obj)
        row = {
            "currency": obj.get("currency"),
            "amount": line["amount"],
            "subscription_id": line["subscription"],
            "detail_json": json.dumps(line, separators=(",", ":")),
        }
    elif event.object_type == "price":
        row = {"currency": obj.get("currency"), "detail_json": json.dumps(price_detail(obj), separators=(",", ":"))}
    elif event.object_type == "product":
        row = {"detail_json": json.dumps({"name": obj.get("name")}, separators=(",", ":"))}
    elif event.object_type == "checkout.session":
        row = {"period_start": int(obj.get("created") or event.created)}
    else:
        return None
    row.update(
        event_id=event.event_id,
        created=event.created,
        month=month_of(event.created),
        type=event.type,
        source=event.source,
        object_type=event.object_type,
        object_id=event.object_id,
    )
    row.setdefault("customer_id", event.customer_id)
    return row


def positions_in_second(
    rows: Iterable[dict[str, Any]], known: Iterable[tuple[Snapshot, int | None]] = ()
) -> dict[str, int]:
    """For subscription events that share a second with another event of the same subscription:
    their position in it, the chain from the state before that second
    (:func:`api.stripe_objects.ordering.in_second_order`), computed here, once, while the objects are
    parsed anyway.

    ``known``: exported snapshots of the batch's subscriptions, with their exported positions, from
    the last second before each subscription's earliest new event on (see
    :func:`analytics.export`): that second is the state the rest starts from, taken as exported;
    every later second is ordered again, since a late event may have joined it or changed the state
    it starts from. Returns the positions of new events and of known ones that now share a second."""
    by_sub: dict[str, dict[str, tuple[Snapshot, int | None, bool]]] = defaultdict(dict)
    for snapshot, position in known:
        by_sub[str(snapshot.obj.get("id"))][snapshot.event_id] = (snapshot, position, True)
    for row in rows:
        parsed: Snapshot | None = row.get("_snapshot")
        if parsed is not None:  # ranks compared as stored (one integer), like the known ones
            by_sub[row["object_id"]][row["event_id"]] = (replace(parsed, rank=(_rank(parsed.rank),)), None, False)
    positions: dict[str, int] = {}
    for entries in by_sub.values():
        before: Snapshot | None = None
        seconds = groupby(sorted(entries.values(), key=lambda entry: entry[0].created), lambda entry: entry[0].created)
        for index, (_, second) in enumerate(seconds):
            members = list(second)
            if index == 0 and all(is_known for _, _, is_known in members):
                # The state the batch starts from, in the order it was exported in.
                ordered = [snap for snap, _, _ in sorted(members, key=lambda entry: (entry[1] or 0, entry[0].tie_key))]
            else:
                ordered = in_second_order([snap for snap, _, _ in members], before)
                if len(ordered) > 1:
                    positions.update((snap.event_id, place) for place, snap in enumerate(ordered))
            before = ordered[-1]
    return positions


def facts_table(events: Iterable[ParsedEvent]) -> pa.Table:
    """The facts of ``events`` as one Arrow table (every event the KPIs read, in the order given)."""
    rows = [row for row in map(fact_row, events) if row is not None]
    positions = positions_in_second(rows)
    for row in rows:
        row["pos"] = positions.get(row["event_id"])
    return pa.Table.from_pylist(rows, schema=FACT_SCHEMA)  # only the schema's columns are kept
