"""``faddl reconcile``: what the projections say against what Stripe says now.

Checked: every subscription that has not ended, the stale ones first (their period ended
longest ago with no renewal seen, the likeliest to have missed webhooks), then every open
invoice. Each object is fetched and read with the same field readers the projections use
(:mod:`api.stripe_objects.fields`); a field that differs is drift: the subscription's status,
price, quantity, period end, cancel at period end and discount, the invoice's status and amount
due. Each drifted object is healed by logging the fetched object as a snapshot (dated after
what its row reflects: Stripe now is newer than anything logged), then its row is read again;
the drift is stored (``sync_drift``: when found, the fields with ours and Stripe's values,
when healed) and counted (``faddl_reconcile_drift_total{object,field}``). An object Stripe no
longer has is drift of the field ``exists`` and cannot be healed this way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.dialects import utc
from api.db.models import payment_history, sync_drift, user_subscriptions
from api.gateway.reading import Fetched, ObjectMissing
from api.observability.metrics import RECONCILE_DRIFT
from api.settings import Settings
from api.stripe_objects.fields import invoice_row, subscription_row
from api.sync import state
from api.sync.account import AccountSync
from api.sync.reports import ResourceReport
from api.sync.resources import RESOURCES

__all__ = ["Drift", "ReconcileReport", "Reconciler"]

_ENDED = ("canceled", "incomplete_expired")


@dataclass(frozen=True)
class _Checked:
    """How one object is compared: its projection, its resource and the fields that matter."""

    object_type: str
    table: Any
    key: str
    resource: str
    fields: tuple[str, ...]
    row: Callable[[dict[str, Any], str], dict[str, Any]]
    event_type: str


_SUBSCRIPTIONS = _Checked(
    "subscription",
    user_subscriptions,
    "stripe_subscription_id",
    "subscriptions",
    ("status", "price_id", "quantity", "current_period_end", "cancel_at_period_end", "discount"),
    subscription_row,
    "customer.subscription.updated",
)
_INVOICES = _Checked(
    "invoice",
    payment_history,
    "stripe_invoice_id",
    "invoices",
    ("status", "amount_due"),
    invoice_row,
    "invoice.updated",
)


@dataclass
class Drift:
    object_type: str
    object_id: str
    fields: dict[str, tuple[Any, Any]]
    """Field -> (ours, Stripe's)."""
    healed: bool = False


@dataclass
class ReconcileReport:
    checked: int = 0
    stale: int = 0
    drift: list[Drift] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "stale": self.stale,
            "seconds": round(self.seconds, 3),
            "drift": [
                {
                    "object_type": d.object_type,
                    "object_id": d.object_id,
                    "fields": {name: [_plain(o), _plain(t)] for name, (o, t) in d.fields.items()},
                    "healed": d.healed,
                }
                for d in self.drift
            ],
        }


def _plain(value: Any) -> Any:
    """A compared value as JSON and as people read it (timestamps in ISO 8601, UTC)."""
    if isinstance(value, datetime):
        return utc(value).isoformat()
    return value


def _same(ours: Any, theirs: Any) -> bool:
    if isinstance(ours, datetime) and isinstance(theirs, datetime):
        return utc(ours) == utc(theirs)
    return bool(ours == theirs)


class Reconciler:
    """Compares and heals, through the sync's own way of logging a fetched object."""

    def __init__(self, sync: AccountSync, settings: Settings) -> None:
        self.sync = sync
        self.db = sync.db
        self.reader = sync.reader
        self.grace = timedelta(days=settings.analytics_stale_grace_days)

    async def run(self, progress: Callable[[int], object] | None = None) -> ReconcileReport:
        started = time.perf_counter()
        report = ReconcileReport()
        run_id = await self.db.run(lambda c: state.start_run(c, "reconcile"), write=True)
        outcome = "failed"
        try:
            for checked, rows in await self.db.run(self._targets(report)):
                await self._check(checked, rows, report, progress)
            outcome = "succeeded"
        finally:
            report.seconds = time.perf_counter() - started
            summary = report.as_dict()
            await self.db.run(lambda c: state.finish_run(c, run_id, outcome, summary), write=True)
        return report

    def _targets(self, report: ReconcileReport) -> Callable[[AsyncConnection], Any]:
        async def load(conn: AsyncConnection) -> list[tuple[_Checked, list[dict[str, Any]]]]:
            subs_table = user_subscriptions.c
            subs = [
                dict(row)
                for row in (
                    await conn.execute(select(user_subscriptions).where(subs_table.status.not_in(_ENDED)))
                ).mappings()
            ]
            # Stale first: the period that ended longest ago (no period at all last).
            far = datetime.max.replace(tzinfo=UTC)
            subs.sort(key=lambda r: utc(r["current_period_end"]) or far)
            limit = datetime.fromtimestamp(self.sync.clock(), UTC) - self.grace
            report.stale = sum(1 for r in subs if r["current_period_end"] and utc(r["current_period_end"]) < limit)
            invoices = [
                dict(row)
                for row in (
                    await conn.execute(select(payment_history).where(payment_history.c.status == "open"))
                ).mappings()
            ]
            return [(_SUBSCRIPTIONS, subs), (_INVOICES, invoices)]

        return load

    async def _check(
        self,
        checked: _Checked,
        rows: Sequence[dict[str, Any]],
        report: ReconcileReport,
        progress: Callable[[int], object] | None,
    ) -> None:
        resource = next(r for r in RESOURCES if r.name == checked.resource)
        # Object id -> its drift, the object as fetched, and the created its row reflects.
        drifted: dict[str, tuple[Drift, Fetched, int]] = {}
        for ours in rows:
            object_id = str(ours[checked.key])
            report.checked += 1
            if progress is not None:
                progress(1)
            try:
                obj = await self.reader.retrieve(f"{resource.path}/{object_id}")
            except ObjectMissing:
                report.drift.append(Drift(checked.object_type, object_id, {"exists": (True, False)}))
                continue
            theirs = checked.row(obj.data, checked.event_type)
            differences = {
                name: (ours.get(name), theirs.get(name))
                for name in checked.fields
                if not _same(ours.get(name), theirs.get(name))
            }
            if differences:
                drift = Drift(checked.object_type, object_id, differences)
                drifted[object_id] = (drift, obj, int(ours["last_event_created"] or 0))
        if drifted:
            objects = [obj for _, obj, _ in drifted.values()]
            after = {object_id: watermark for object_id, (_, _, watermark) in drifted.items()}
            await self.sync.store(resource, objects, ResourceReport(resource.name), heal_after=after)
            now_rows = await self.db.run(self._rows(checked, list(drifted)))
            for object_id, (drift, _, _) in drifted.items():
                ours_now = now_rows.get(object_id, {})
                # Healed when the row now holds what Stripe said, field by field.
                drift.healed = all(
                    _same(ours_now.get(name), theirs_value) for name, (_, theirs_value) in drift.fields.items()
                )
                report.drift.append(drift)
        found = [d for d in report.drift if d.object_type == checked.object_type]
        await self.db.run(self._record(found), write=True)
        for drift in found:
            for name in drift.fields:
                RECONCILE_DRIFT.labels(drift.object_type, name).inc()

    @staticmethod
    def _rows(checked: _Checked, ids: list[str]) -> Callable[[AsyncConnection], Any]:
        async def read(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
            key = checked.table.c[checked.key]
            result = await conn.execute(select(checked.table).where(key.in_(ids)))
            return {str(row[checked.key]): dict(row) for row in result.mappings()}

        return read

    @staticmethod
    def _record(drifts: list[Drift]) -> Callable[[AsyncConnection], Any]:
        async def record(conn: AsyncConnection) -> None:
            now = datetime.now(UTC)
            for drift in drifts:
                fields = {name: [_plain(o), _plain(t)] for name, (o, t) in drift.fields.items()}
                await conn.execute(
                    sync_drift.insert().values(
                        object_type=drift.object_type,
                        object_id=drift.object_id,
                        fields=json.dumps(fields, sort_keys=True, default=str),
                        found_at=now,
                        healed_at=now if drift.healed else None,
                    )
                )

        return record
