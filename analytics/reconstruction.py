"""History before installation: the dated states of a subscription the log first saw in a sync,
derived from the synced object's own dates and its invoices (docs/kpis.md, "Adopted accounts").

A pure function of the facts, computed when the KPIs read them and never written to the log or a
projection: a later sync, a new rule or a fix gives new figures on the next read. Each derived state
is a subscription object like the synced one, with the status, items, period and discounts it had
then, read through the same rules as an observed snapshot (:func:`analytics.facts.fact_row`), and
kept only before the subscription's first observed event: observed events always win.

What each gap gets (the rules of docs/kpis.md):

- created: ``incomplete`` until the first invoice is paid, then ``active``; ``trialing`` until the
  trial's end when the subscription started with one;
- each renewal invoice: the items its lines bill, from its creation; ``past_due`` from then when its
  first attempt failed (more than one attempt, or still unpaid after one), ``active`` again when it
  was paid, ``unpaid`` once it was marked uncollectible (unless the subscription ended then);
- an invoice of a change (``subscription_update``, a proration) and a proration line on a later
  invoice or on a pending invoice item (``/v1/invoiceitems``, not invoiced yet): the new items from the
  line's period start (a change invoiced in the second of a renewal comes after it);
- ended: the synced object's own status at ``ended_at``;
- discounts: the synced ones, from their ``start`` to their ``end``;
- no invoice synced (``--only subscriptions``): ``active`` with the current items from the start
  (after the trial) to the end.

Payments are derived the same way (:func:`reconstructed_payment_facts`): the payment events of
synced charges, disputes and invoices, dated when they happened.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from analytics.facts import FACT_SCHEMA, fact_row, month_of
from api.events.model import SYNC_SOURCE, ParsedEvent

if TYPE_CHECKING:
    import duckdb

__all__ = ["SOURCE", "SYNC_SOURCE", "reconstructed_facts", "reconstructed_payment_facts"]

SOURCE = "reconstructed"
"""The ``source`` of a derived state's facts (an observed one has a Stripe source)."""
_ENDED = ("canceled", "incomplete_expired")
Obj = dict[str, Any]


@dataclass
class _State:
    at: int
    status: str
    items: list[Obj]
    period_end: int | None


def reconstructed_facts(con: duckdb.DuckDBPyConnection, view: str) -> pa.Table:
    """The derived states of every subscription the facts in ``view`` first saw in a sync, as fact
    rows (``source`` = :data:`SOURCE`, positions set), dated before its first observed event."""
    subscriptions = con.sql(
        f"""
        SELECT object_id, min(created) AS first_observed,
               arg_max(object_json, created) FILTER (WHERE source = '{SYNC_SOURCE}') AS synced
        FROM {view}
        WHERE object_type = 'subscription' AND type LIKE 'customer.subscription.%'
        GROUP BY object_id
        HAVING count(*) FILTER (WHERE source = '{SYNC_SOURCE}') > 0
        """
    ).fetchall()
    if not subscriptions:
        return FACT_SCHEMA.empty_table()
    invoices: dict[str, list[Obj]] = defaultdict(list)
    for subscription, reason, attempts, detail in con.sql(
        f"""
        SELECT subscription_id, arg_max(billing_reason, created), arg_max(attempt_count, created),
               arg_max(detail_json, created)
        FROM {view}
        WHERE object_type = 'invoice' AND subscription_id IS NOT NULL AND detail_json IS NOT NULL
        GROUP BY subscription_id, object_id
        """
    ).fetchall():
        invoices[subscription].append({**json.loads(detail), "billing_reason": reason, "attempt_count": attempts})
    # Prorations still waiting for an invoice (pending at their newest snapshot): read for the
    # changes their lines date, like an invoice's proration lines.
    pending: dict[str, list[Obj]] = defaultdict(list)
    for subscription, detail in con.sql(
        f"""
        SELECT subscription_id, arg_max(detail_json, created)
        FROM {view}
        WHERE object_type = 'invoiceitem' AND subscription_id IS NOT NULL AND detail_json IS NOT NULL
        GROUP BY subscription_id, object_id
        """
    ).fetchall():
        line = json.loads(detail)
        if line.get("pending"):
            pending[subscription].append(line)
    prices = {
        price_id: json.loads(detail)
        for price_id, detail in con.sql(
            f"SELECT object_id, arg_max(detail_json, created) FROM {view} "
            "WHERE object_type = 'price' AND detail_json IS NOT NULL GROUP BY object_id"
        ).fetchall()
    }
    rows: list[Obj] = []
    for subscription, first_observed, synced in subscriptions:
        obj = json.loads(synced)
        history = sorted(invoices.get(subscription, []), key=lambda inv: inv.get("created") or 0)
        waiting = {"lines": pending.get(subscription, [])}
        states = [state for state in _states(obj, history, waiting, prices) if state.at < first_observed]
        for position, state in enumerate(states):
            row = fact_row(_event(obj, state, position))
            if row is not None:
                row.pop("_snapshot", None)
                row["pos"] = position
                rows.append(row)
    return pa.Table.from_pylist(rows, schema=FACT_SCHEMA)


def _states(obj: Obj, invoices: list[Obj], waiting: Obj, prices: dict[str, Obj]) -> list[_State]:
    """The subscription's states in time order (several may share a second, in this order), from
    its invoices (oldest first) and ``waiting``, its pending invoice items as one invoice's lines."""
    started = int(obj.get("start_date") or obj.get("created") or 0)
    current = _current_items(obj)
    created_invoices = [inv for inv in invoices if inv.get("billing_reason") == "subscription_create"]
    first = created_invoices[0] if created_invoices else (invoices[0] if invoices else None)
    items = _billed_items(first, prices, current) if first else current
    trial_end = int(obj.get("trial_end") or 0)
    states: list[_State] = []
    trialing = bool(obj.get("trial_start") and trial_end and int(obj["trial_start"]) <= started + 60)
    if trialing:
        states.append(_State(started, "trialing", items, trial_end))
    if not invoices:  # none synced: the current items from the start (or the trial's end) on
        paid_from = trial_end if trialing else started
        states.append(_State(paid_from, "active", current, _current_period_end(obj)))
    elif not trialing:
        states.append(_State(started, "incomplete", items, None))
        if first is not None and first.get("paid_at"):
            states.append(_State(max(started, int(first["paid_at"])), "active", items, _period_end(first, started)))
    # Each later invoice at its creation, and each change its proration lines (or a pending
    # invoice item's) date, all in time order: a change billed a year later still lands where it
    # was made. In one second: the renewal, then an invoiced change, then a prorated one.
    happenings: list[tuple[int, int, Obj | None, list[Obj]]] = []
    for other in invoices:
        if other is not first and other.get("created"):
            rank = int(other.get("billing_reason") == "subscription_update")
            happenings.append((int(other["created"]), rank, other, []))
    for billed_by in [*invoices, waiting]:
        happenings.extend((moment, 2, None, changed) for moment, changed in _prorations(billed_by, prices, current))
    happenings.sort(key=lambda happening: (happening[0], happening[1]))
    for created, _, invoice, prorated in happenings:
        if invoice is None:
            if created >= states[-1].at:
                states.append(_State(created, states[-1].status, prorated, states[-1].period_end))
            continue
        if invoice.get("billing_reason") == "subscription_update":
            changed = _billed_items(invoice, prices, current, prorated=True)
            states.append(_State(created, states[-1].status, changed or states[-1].items, states[-1].period_end))
            continue
        billed = _billed_items(invoice, prices, current)
        if not billed:
            continue
        period_end = _period_end(invoice, created)
        paid, attempts = invoice.get("paid_at"), int(invoice.get("attempt_count") or 0)
        if paid is not None and attempts <= 1:
            states.append(_State(created, "active", billed, period_end))
            continue
        if paid is None and attempts == 0:
            continue  # not attempted yet: the renewal's outcome is not known
        states.append(_State(created, "past_due", billed, period_end))
        if paid is not None:
            states.append(_State(max(created, int(paid)), "active", billed, period_end))
        elif invoice.get("uncollectible_at") or invoice.get("voided_at"):
            closed = int(invoice.get("uncollectible_at") or invoice.get("voided_at") or 0)
            ended = obj.get("ended_at")
            if not (ended and int(ended) <= closed + 60):
                states.append(_State(max(created, closed), "unpaid", billed, period_end))
    if obj.get("ended_at") and obj.get("status") in _ENDED:
        states.append(_State(int(obj["ended_at"]), str(obj["status"]), states[-1].items, states[-1].period_end))
    # A state whose period end is unknown or past runs to the next renewal seen.
    renewals = sorted(state.at for state in states if state.status in ("active", "past_due"))
    for state in states:
        if state.period_end is None or state.period_end <= state.at:
            later = [moment for moment in renewals if moment > state.at]
            state.period_end = later[0] if later else _current_period_end(obj)
    return sorted(states, key=lambda state: state.at)


def _event(obj: Obj, state: _State, position: int) -> ParsedEvent:
    """The subscription as it stood in ``state``, as an event of its own."""
    ended = state.status in _ENDED
    derived = dict(obj)
    derived["status"] = state.status
    derived["items"] = {
        "object": "list",
        "data": [{**item, "current_period_end": state.period_end} for item in state.items],
    }
    if "current_period_end" in obj:
        derived["current_period_end"] = state.period_end
    derived["discounts"] = [d for d in obj.get("discounts") or [] if not isinstance(d, dict) or _in_force(d, state.at)]
    if isinstance(obj.get("discount"), dict) and not _in_force(obj["discount"], state.at):
        derived["discount"] = None
    canceled = obj.get("canceled_at")
    requested = bool(canceled and int(canceled) <= state.at)
    derived["canceled_at"] = canceled if requested or ended else None
    derived["cancel_at_period_end"] = bool(obj.get("cancel_at_period_end") and requested)
    if not ended:
        derived["ended_at"] = None
        derived["cancellation_details"] = None
    event_type = "customer.subscription.deleted" if ended else "customer.subscription.updated"
    return ParsedEvent(
        event_id=f"rec_{obj['id']}_{state.at}_{position}",
        type=event_type,
        created=state.at,
        api_version=None,
        livemode=bool(obj.get("livemode")),
        obj=derived,
        previous_attributes={},
        raw="",
        source=SOURCE,
    )


def _in_force(discount: Obj, at: int) -> bool:
    start, end = discount.get("start"), discount.get("end")
    return (start is None or int(start) <= at) and (end is None or at < int(end))


def _current_items(obj: Obj) -> list[Obj]:
    items = (obj.get("items") or {}).get("data") or []
    if items:
        return [dict(item) for item in items if isinstance(item, dict)]
    return [{"plan": obj.get("plan"), "quantity": obj.get("quantity")}]  # before items (2016)


def _current_period_end(obj: Obj) -> int | None:
    items = _current_items(obj)
    value = items[0].get("current_period_end") if items else None
    value = value or obj.get("current_period_end")
    return int(value) if value else None


def _price(line: Obj, prices: dict[str, Obj], current: list[Obj]) -> Obj | None:
    """The price a line bills: the synced price, the one the line embeds, or the current item's."""
    price_id = line.get("price_id")
    if price_id in prices:
        return prices[price_id]
    embedded = line.get("price")
    if embedded and ("unit_amount" in embedded or "amount" in embedded):
        return dict(embedded)
    for item in current:
        price = item.get("price") or item.get("plan")
        if isinstance(price, dict) and price.get("id") == price_id:
            return dict(price)
    return dict(embedded) if embedded else None


def _item(line: Obj, prices: dict[str, Obj], current: list[Obj]) -> Obj | None:
    price = _price(line, prices, current)
    if price is None:
        return None
    known = next((item for item in current if item.get("id") == line.get("subscription_item")), {})
    return {
        **known,
        "id": line.get("subscription_item") or known.get("id"),
        "price": price,
        "quantity": line["quantity"],
    }


def _billed_items(invoice: Obj, prices: dict[str, Obj], current: list[Obj], *, prorated: bool = False) -> list[Obj]:
    """The items an invoice bills: its period's lines, or, for a change (``prorated``), the lines
    of the time remaining on the new items (the positive prorations)."""
    lines = [
        line
        for line in invoice.get("lines") or []
        if (line.get("amount", 0) >= 0 if prorated else not line.get("proration"))
    ]
    items = [item for item in (_item(line, prices, current) for line in lines) if item is not None]
    return _ordered(items, current)


def _prorations(invoice: Obj, prices: dict[str, Obj], current: list[Obj]) -> list[tuple[int, list[Obj]]]:
    """Changes made between invoices that a later invoice bills as prorations (Stripe's default
    ``create_prorations``): the items of the time remaining, from the line's period start."""
    if invoice.get("billing_reason") == "subscription_update":
        return []
    # Per moment and subscription item, the last line that is not a credit: Stripe lists the
    # credit for the unused time first and the time remaining after it (both 0 at a period's end).
    found: dict[int, dict[str | None, Obj]] = defaultdict(dict)
    for line in invoice.get("lines") or []:
        start = line.get("period_start")
        if line.get("proration") and line.get("amount", 0) >= 0 and start:
            item = _item(line, prices, current)
            if item is not None:
                found[int(start)][item.get("id")] = item
    return [(moment, _ordered(list(items.values()), current)) for moment, items in sorted(found.items())]


def _ordered(items: list[Obj], current: list[Obj]) -> list[Obj]:
    """Items in the order the subscription lists them (its first item names the plan)."""
    order = {item.get("id"): index for index, item in enumerate(current)}
    return sorted(items, key=lambda item: order.get(item.get("id"), len(order)))


def _period_end(invoice: Obj, at: int) -> int | None:
    ends = [int(line["period_end"]) for line in invoice.get("lines") or [] if line.get("period_end")]
    end = max(ends) if ends else None
    return end if end and end > at else None


_OBSERVED = f"source NOT IN ('{SYNC_SOURCE}', '{SOURCE}')"
_PAYMENT_TYPES = ", ".join(
    f"'{name}'"
    for name in (
        "charge.succeeded",
        "charge.failed",
        "charge.dispute.created",
        "invoice.payment_failed",
        "invoice.paid",
        "invoice.marked_uncollectible",
        "invoice.voided",
    )
)


def reconstructed_payment_facts(con: duckdb.DuckDBPyConnection, view: str) -> pa.Table:
    """The payment events of synced charges, disputes and renewal invoices no observed event
    reports, dated when they happened (a snapshot is dated when it was fetched), as fact rows
    (``source`` = :data:`SOURCE`): what the payment KPIs count.

    - a charge: ``charge.succeeded`` or ``charge.failed`` at its ``created``;
    - a dispute: ``charge.dispute.created`` at its ``created``;
    - an invoice with attempts: its first attempt at its creation (``invoice.payment_failed`` when
      it took more than one attempt or was never paid), ``invoice.paid`` at ``paid_at``, and
      ``invoice.marked_uncollectible`` / ``invoice.voided`` when it was given up. The moments of the
      retries between are not kept by Stripe and are not derived."""
    rows: list[Obj] = []

    def synced(object_type: str, columns: str) -> list[tuple[Any, ...]]:
        return con.sql(
            f"""
            SELECT object_id, {columns}, arg_max(detail_json, created)
            FROM {view}
            WHERE object_type = '{object_type}' AND source = '{SYNC_SOURCE}' AND detail_json IS NOT NULL
            GROUP BY object_id
            """
        ).fetchall()

    # An event a delivery (or the Events API) reported is not derived again.
    # (A failed attempt counts as reported only with its number: the first may precede the sync.)
    observed: set[tuple[Any, ...]] = set()
    for object_id, event_type, attempt in con.sql(
        f"SELECT DISTINCT object_id, type, attempt_count FROM {view} WHERE {_OBSERVED} AND type IN ({_PAYMENT_TYPES})"
    ).fetchall():
        observed.add(
            (object_id, event_type, attempt) if event_type == "invoice.payment_failed" else (object_id, event_type)
        )

    def add(object_type: str, object_id: str, event_type: str, created: Any, **values: Any) -> None:
        key = (object_id, event_type, 1) if event_type == "invoice.payment_failed" else (object_id, event_type)
        if created is None or key in observed:
            return
        rows.append(
            {
                "event_id": f"rec_{object_id}_{event_type}",
                "created": int(created),
                "month": month_of(int(created)),
                "type": event_type,
                "source": SOURCE,
                "object_type": object_type,
                "object_id": object_id,
                **values,
            }
        )

    for object_id, customer, currency, amount, detail in synced(
        "charge", "any_value(customer_id), any_value(currency), arg_max(amount, created)"
    ):
        dated = json.loads(detail)
        status = {"succeeded": "charge.succeeded", "failed": "charge.failed"}.get(dated.get("status"))
        if status:
            values = {"customer_id": customer, "currency": currency, "amount": amount, "charge_id": object_id}
            add("charge", object_id, status, dated.get("created"), **values)
    for object_id, customer, currency, amount, charge, detail in synced(
        "dispute", "any_value(customer_id), any_value(currency), arg_max(amount, created), any_value(charge_id)"
    ):
        values = {"customer_id": customer, "currency": currency, "amount": amount, "charge_id": charge}
        add("dispute", object_id, "charge.dispute.created", json.loads(detail).get("created"), **values)
    for object_id, customer, currency, amount, reason, subscription, period_start, attempts, detail in synced(
        "invoice",
        "any_value(customer_id), any_value(currency), arg_max(amount, created), arg_max(billing_reason, created), "
        "arg_max(subscription_id, created), arg_max(period_start, created), arg_max(attempt_count, created)",
    ):
        dated, attempts = json.loads(detail), int(attempts or 0)
        if attempts == 0:
            continue
        values = {
            "customer_id": customer,
            "currency": currency,
            "amount": amount,
            "billing_reason": reason,
            "subscription_id": subscription,
            "period_start": period_start,
        }
        paid = dated.get("paid_at")
        first_failed = attempts > 1 or paid is None
        if first_failed:
            add("invoice", object_id, "invoice.payment_failed", dated.get("created"), attempt_count=1, **values)
        add("invoice", object_id, "invoice.paid", paid, attempt_count=attempts, **values)
        add(
            "invoice",
            object_id,
            "invoice.marked_uncollectible",
            dated.get("uncollectible_at"),
            attempt_count=attempts,
            **values,
        )
        add("invoice", object_id, "invoice.voided", dated.get("voided_at"), attempt_count=attempts, **values)
    return pa.Table.from_pylist(rows, schema=FACT_SCHEMA)
