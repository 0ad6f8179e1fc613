"""One evaluation pass: observe every rule, then record what changed in the ``alerts`` table and
deliver it.

- A key whose rule fires and has no open alert opens one (``firing``) and is delivered, unless the
  same rule and key was delivered within the rule's cooldown (then it is recorded as suppressed).
- A key that keeps firing updates its open alert (value, message, last seen) and is not delivered
  again: one alert per rule and key while it lasts (a partial unique index holds this even with
  several workers evaluating at once).
- An open alert whose key no longer fires is resolved; the resolution is delivered if the firing was.
- Acknowledging an alert (admin API) records who and when; it stays open until it resolves.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from analytics.alerts.delivery import Notifier
from analytics.alerts.rules import Rule
from analytics.alerts.signals import Context, Observation, observe
from api.db.dialects import utc
from api.db.engine import Database
from api.db.models import alerts

__all__ = ["Change", "evaluate", "record"]


@dataclass(frozen=True)
class Change:
    alert_id: int
    rule: str
    key: str
    severity: str
    kind: str
    """``fired``, ``suppressed`` (fired within the cooldown) or ``resolved``."""
    message: str
    delivery: str | None = None


def fires(rule: Rule, observation: Observation) -> bool:
    return observation.volume >= rule.min_volume and observation.value > rule.threshold


async def record(db: Database, rules: dict[str, Rule], observations: list[Observation], now: datetime) -> list[Change]:
    """Apply the observations to the alerts table; the changes to deliver (not yet delivered)."""
    firing: dict[tuple[str, str], Observation] = {
        (o.rule, o.key): o for o in observations if rules[o.rule].enabled and fires(rules[o.rule], o)
    }
    changes: list[Change] = []
    async with db.write() as conn:
        open_rows = {
            (row.rule, row.key): row
            for row in (await conn.execute(select(alerts).where(alerts.c.status == "firing"))).all()
        }
        for (name, key), row in open_rows.items():
            if (name, key) in firing:
                observation = firing[(name, key)]
                await conn.execute(
                    update(alerts)
                    .where(alerts.c.id == row.id)
                    .values(last_seen_at=now, value=observation.value, message=observation.message)
                )
            elif name in rules:
                await conn.execute(
                    update(alerts).where(alerts.c.id == row.id).values(status="resolved", resolved_at=now)
                )
                if row.notified_at is not None:
                    changes.append(Change(row.id, name, key, row.severity, "resolved", row.message))
        for (name, key), observation in firing.items():
            if (name, key) in open_rows:
                continue
            rule = rules[name]
            last_notified = (
                await conn.execute(
                    select(func.max(alerts.c.notified_at)).where(and_(alerts.c.rule == name, alerts.c.key == key))
                )
            ).scalar_one()
            cooling = last_notified is not None and utc(last_notified) > now - timedelta(minutes=rule.cooldown_minutes)
            values: dict[str, Any] = {
                "rule": name,
                "key": key,
                "severity": rule.severity,
                "status": "firing",
                "value": observation.value,
                "threshold": rule.threshold,
                "message": observation.message,
                "recommendation": rule.recommendation,
                "first_seen_at": now,
                "last_seen_at": now,
                "delivery": f"suppressed: delivered less than {rule.cooldown_minutes} minutes ago" if cooling else None,
            }
            try:
                async with conn.begin_nested():
                    alert_id = (await conn.execute(insert(alerts).values(**values).returning(alerts.c.id))).scalar_one()
            except IntegrityError:
                continue  # another worker opened it in the meantime
            changes.append(
                Change(alert_id, name, key, rule.severity, "suppressed" if cooling else "fired", observation.message)
            )
    return changes


async def deliver(
    db: Database, rules: dict[str, Rule], notifier: Notifier, changes: list[Change], now: datetime
) -> list[Change]:
    """Send each fired or resolved change and note the outcome on its alert."""
    delivered: list[Change] = []
    for change in changes:
        if change.kind == "suppressed":
            delivered.append(change)
            continue
        rule = rules[change.rule]
        state = "RESOLVED" if change.kind == "resolved" else change.severity.upper()
        title = f"[{state}] {rule.description} ({change.key})"
        body = change.message if change.kind == "resolved" else f"{change.message}\n\nWhat to do: {rule.recommendation}"
        outcome = await notifier.send(change.severity, title, body, resolved=change.kind == "resolved")
        async with db.write() as conn:
            values: dict[str, Any] = {"delivery": outcome.summary}
            if change.kind == "fired" and outcome.sent:  # the cooldown counts from a delivery that happened
                values["notified_at"] = now
            await conn.execute(update(alerts).where(alerts.c.id == change.alert_id).values(**values))
        delivered.append(replace(change, delivery=outcome.summary))
    return delivered


async def evaluate(ctx: Context, rules: dict[str, Rule], notifier: Notifier) -> list[Change]:
    """Observe, record and deliver: the changes of this pass."""
    observations = await observe(ctx, rules)
    changes = await record(ctx.db, rules, observations, ctx.now)
    return await deliver(ctx.db, rules, notifier, changes, ctx.now)
