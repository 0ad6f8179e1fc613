"""At-risk customers: a transparent, rule-based score per paying customer, from signals in the
log, each with the reason a person can act on. At-risk MRR (the MRR of customers at or above
``THRESHOLD``) is a KPI the alerts can watch.

| signal | points |
|---|---|
| the subscription is set to cancel at period end | 40 |
| in dunning (``past_due`` or ``unpaid``) | 35 |
| a dispute on one of its charges in the last 90 days | 25 |
| a downgrade or seat drop (a contraction) in the last 30 days | 20 |
| usage of a feature fell below half of the period before (at least 10 before) | 15 |
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction

from analytics.mrr import movements, state_before, subscription_timelines
from api.events.model import ParsedEvent
from api.projections.stripe_objects import expandable_id

__all__ = ["THRESHOLD", "WEIGHTS", "AtRisk", "at_risk"]

THRESHOLD = 30
WEIGHTS = {"cancel_at_period_end": 40, "dunning": 35, "dispute": 25, "contraction": 20, "usage_drop": 15}
DAY = 86_400


@dataclass(frozen=True)
class AtRisk:
    customer_id: str
    currency: str
    mrr: int
    score: int
    reasons: list[str] = field(default_factory=list)


def _date(moment: int) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%d")


def at_risk(events: Iterable[ParsedEvent], as_of: int, threshold: int = THRESHOLD) -> list[AtRisk]:
    """Paying customers scoring at least ``threshold`` as of ``as_of``, riskiest first."""
    events = [e for e in events if e.created <= as_of]
    timelines = subscription_timelines(events)
    changes = movements(timelines, until=as_of + 1)
    mrr: dict[tuple[str, str], Fraction] = {}
    contracted: dict[str, int] = {}
    for change in changes:
        mrr[(change.customer_id, change.currency)] = change.after
        if change.kind == "contraction" and change.at >= as_of - 30 * DAY:
            contracted[change.customer_id] = change.at
    reasons: dict[str, dict[str, str]] = defaultdict(dict)
    users: dict[str, str] = {}
    for timeline in timelines.values():
        latest = state_before(timeline, as_of + 1)
        if latest is None:
            continue
        state = latest[0]
        if state.user_id:
            users[state.user_id] = state.customer_id
        if state.status in ("canceled", "incomplete_expired"):
            continue
        if state.cancel_at_period_end:
            reasons[state.customer_id]["cancel_at_period_end"] = "set to cancel at the end of the period"
        if state.status in ("past_due", "unpaid"):
            reasons[state.customer_id]["dunning"] = f"payment failing ({state.status})"
    for customer, moment in contracted.items():
        reasons[customer]["contraction"] = f"downgraded on {_date(moment)}"
    charge_customer: dict[str, str] = {}
    usage: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for event in events:
        if event.object_type == "charge" and event.object_id and event.customer_id:
            charge_customer[event.object_id] = event.customer_id
        elif event.type == "usage.recorded":
            item = event.obj
            if str(item.get("period_end", "")) <= _iso(as_of):
                usage[(str(item.get("user_id")), str(item.get("feature")))][str(item.get("period_start"))] += int(
                    item.get("quantity") or 0
                )
    for event in events:
        if event.type == "charge.dispute.created" and event.created >= as_of - 90 * DAY:
            disputer = charge_customer.get(expandable_id(event.obj.get("charge")) or "")
            if disputer:
                reasons[disputer]["dispute"] = f"disputed a charge on {_date(event.created)}"
    for (user, feature), periods in usage.items():
        ordered = [periods[p] for p in sorted(periods)]
        owner = users.get(user)
        if owner and len(ordered) >= 2 and ordered[-2] >= 10 and ordered[-1] < ordered[-2] / 2:
            reasons[owner]["usage_drop"] = f"{feature} usage fell from {ordered[-2]} to {ordered[-1]}"
    found: list[AtRisk] = []
    for (customer, currency), value in mrr.items():
        if value <= 0 or customer not in reasons:
            continue
        score = min(100, sum(WEIGHTS[signal] for signal in reasons[customer]))
        if score >= threshold:
            found.append(AtRisk(customer, currency, round(value), score, sorted(reasons[customer].values())))
    return sorted(found, key=lambda r: (-r.score, -r.mrr, r.customer_id))


def _iso(moment: int) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).isoformat()
