"""What each rule measures, per key: from the KPI document, short windows of the event log (as of
its newest event, so a replayed or demo log is judged at its own time) and the service's tables
(dead events, security incidents; as of the wall clock)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select

from analytics.alerts.rules import Rule
from analytics.engine import Facts
from analytics.payments import payment_window
from api.db.engine import Database
from api.db.models import security_incidents
from api.events import log
from api.policies.escalation import ESCALATION_EVENT
from api.threats import THREAT_KINDS

__all__ = ["Context", "Observation", "observe"]

DAY = 86_400


@dataclass(frozen=True)
class Observation:
    rule: str
    key: str
    value: float
    volume: int
    message: str


@dataclass(frozen=True)
class Context:
    db: Database
    facts: Facts
    document: dict[str, Any]
    """The KPI document (:func:`analytics.output.kpi_document`)."""
    now: datetime
    """The wall clock, for the service's own tables."""

    @property
    def log_now(self) -> int:
        """Just after the newest event: the log's own present."""
        return int(self.document.get("computed_until") or 0) + 1


Measure = Callable[[Context, Rule], Awaitable[list[Observation]]]


def _pct(value: float) -> str:
    return f"{value:.1%}"


def _share(rule: Rule, part: int, whole: int, what: str, days: float) -> Observation:
    rate = part / whole if whole else 0.0
    message = f"{what} in the last {days:g} days ({_pct(rate)}, threshold {_pct(rule.threshold)})."
    return Observation(rule.name, "all", rate, whole, message)


async def payment_failure_rate(ctx: Context, rule: Rule) -> list[Observation]:
    w = payment_window(ctx.facts, rule.window_minutes / 1440, ctx.log_now)
    what = f"{w.payment_failures} of {w.renewal_attempts} renewal payments failed on the first attempt"
    return [_share(rule, w.payment_failures, w.renewal_attempts, what, w.days)]


async def dispute_activity(ctx: Context, rule: Rule) -> list[Observation]:
    w = payment_window(ctx.facts, rule.window_minutes / 1440, ctx.log_now)
    what = f"{w.disputes_created} disputes over {w.successful_charges} successful charges"
    return [_share(rule, w.disputes_created, w.successful_charges, what, w.days)]


async def dead_webhook_events(ctx: Context, rule: Rule) -> list[Observation]:
    dead = (await ctx.db.run(log.backlog)).dead
    return [Observation(rule.name, "all", dead, dead, f"{dead} webhook events are dead (every retry failed).")]


async def payment_escalations(ctx: Context, rule: Rule) -> list[Observation]:
    since = ctx.log_now - rule.window_minutes * 60
    rows = await ctx.db.run(lambda conn: log.service_event_counts(conn, ESCALATION_EVENT, since))
    return [
        Observation(
            rule.name,
            str(object_id),
            count,
            count,
            f"Payment escalated for {object_id} (customer {customer or 'unknown'}): repeated failures or unpaid.",
        )
        for object_id, customer, count in rows
    ]


async def _incidents(ctx: Context, rule: Rule, kinds: tuple[str, ...]) -> int:
    since = ctx.now - timedelta(minutes=rule.window_minutes)
    query = (
        select(func.count())
        .select_from(security_incidents)
        .where(and_(security_incidents.c.kind.in_(kinds), security_incidents.c.created_at >= since))
    )
    async with ctx.db.read() as conn:
        return int((await conn.execute(query)).scalar_one())


async def security_incident_burst(ctx: Context, rule: Rule) -> list[Observation]:
    count = await _incidents(ctx, rule, THREAT_KINDS)
    message = f"{count} attacks detected in the last {rule.window_minutes} minutes."
    return [Observation(rule.name, "all", count, count, message)]


async def rate_limit_storm(ctx: Context, rule: Rule) -> list[Observation]:
    count = await _incidents(ctx, rule, ("rate_limit_abuse",))
    message = f"{count} clients were refused far beyond their rate limit in the last {rule.window_minutes} minutes."
    return [Observation(rule.name, "all", count, count, message)]


def _months(ctx: Context) -> list[dict[str, Any]]:
    months: list[dict[str, Any]] = ctx.document.get("months") or []
    return months


async def churn_spike(ctx: Context, rule: Rule) -> list[Observation]:
    months = _months(ctx)
    if len(months) < 2:
        return []
    current, before = months[-1], months[-7:-1]
    found = []
    for currency, rate in (current.get("logo_churn_rate") or {}).items():
        history = [m["logo_churn_rate"].get(currency) for m in before if m.get("logo_churn_rate")]
        known = [r for r in history if r is not None]
        if rate is None or not known:
            continue
        average = max(sum(known) / len(known), 0.005)  # a floor, so one churn after a quiet spell is no spike
        paying_at_start = months[-2]["paying_customers"].get(currency, 0)
        message = (
            f"{currency.upper()} logo churn this month is {_pct(rate)}, {rate / average:.1f}x the "
            f"{len(known)}-month average of {_pct(average)}."
        )
        found.append(Observation(rule.name, currency, rate / average, paying_at_start, message))
    return found


async def mrr_drop(ctx: Context, rule: Rule) -> list[Observation]:
    months = _months(ctx)
    if len(months) < 2:
        return []
    now, before = months[-1], months[-2]
    found = []
    for currency, previous in before["mrr"].items():
        if previous <= 0:
            continue
        current = now["mrr"].get(currency, 0)
        drop = (previous - current) / previous
        message = (
            f"{currency.upper()} MRR is {current / 100:,.2f}, {_pct(drop)} below the "
            f"{previous / 100:,.2f} at the end of {before['month']}."
        )
        found.append(Observation(rule.name, currency, drop, before["paying_customers"].get(currency, 0), message))
    return found


async def at_risk_mrr(ctx: Context, rule: Rule) -> list[Observation]:
    months = _months(ctx)
    if not months:
        return []
    current = months[-1]
    found = []
    for currency, mrr in current["mrr"].items():
        risky = ctx.document.get("at_risk_mrr", {}).get(currency, 0)
        share = risky / mrr if mrr else 0.0
        message = (
            f"At-risk customers hold {risky / 100:,.2f} {currency.upper()} of MRR ({_pct(share)} of {mrr / 100:,.2f})."
        )
        found.append(Observation(rule.name, currency, share, current["paying_customers"].get(currency, 0), message))
    return found


MEASURES: dict[str, Measure] = {
    "payment_failure_rate": payment_failure_rate,
    "dead_webhook_events": dead_webhook_events,
    "payment_escalations": payment_escalations,
    "churn_spike": churn_spike,
    "mrr_drop": mrr_drop,
    "dispute_activity": dispute_activity,
    "security_incident_burst": security_incident_burst,
    "rate_limit_storm": rate_limit_storm,
    "at_risk_mrr": at_risk_mrr,
}


async def observe(ctx: Context, rules: dict[str, Rule]) -> list[Observation]:
    """Every enabled rule's observations."""
    found: list[Observation] = []
    for name, rule in rules.items():
        if rule.enabled:
            found.extend(await MEASURES[name](ctx, rule))
    return found
