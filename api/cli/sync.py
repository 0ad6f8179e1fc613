"""``faddl sync`` and ``faddl reconcile``: Stripe as the source of truth (:mod:`api.sync`).

The sync's modules are imported inside the commands: they pull in the Prometheus metrics, which
must not exist before ``faddl serve`` has chosen their multiprocess directory."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click
from tqdm import tqdm

from api.cli.base import _settings, _with_processor, main
from api.ingest.processing import EventProcessor
from api.sync.resources import resource_names, select_resources

if TYPE_CHECKING:
    from api.sync.reconcile import ReconcileReport
    from api.sync.reports import SyncReport


def _resources(values: tuple[str, ...]) -> list[str]:
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    try:
        select_resources(names)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--only") from None
    return names


def _summary(report: SyncReport) -> str:
    verb = "would store" if report.dry_run else "stored"
    lines = [f"{'resource':<18} {'fetched':>9} {verb:>12} {'unchanged':>10} {'skipped':>8} {'failed':>7}"]
    for r in report.resources:
        note = f"  ({r.unavailable}: skipped)" if r.unavailable else ""
        if r.resumed_after:
            note += f"  (resumed after {r.resumed_after})"
        lines.append(f"{r.name:<18} {r.fetched:>9} {r.stored:>12} {r.unchanged:>10} {r.skipped:>8} {r.failed:>7}{note}")
    totals = [report.total(name) for name in ("fetched", "stored", "unchanged", "skipped", "failed")]
    lines.append(f"{'total':<18} {totals[0]:>9} {totals[1]:>12} {totals[2]:>10} {totals[3]:>8} {totals[4]:>7}")
    rate = totals[0] / report.seconds if report.seconds > 0 else 0.0
    lines.append(f"in {report.seconds:.1f} s ({rate:,.0f} objects/s)")
    for r in report.resources:
        for failure in r.failures:
            lines.append(f"failed: {r.name} {failure['object_id']}: {failure['reason']}")
    return "\n".join(lines)


@main.command()
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="Only objects created on or after DATE.")
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="RESOURCE",
    help=f"Only these (repeat, or separate with commas): {', '.join(resource_names())}, events.",
)
@click.option("--restart", is_flag=True, help="Walk every list from the start, forgetting where a stopped sync was.")
@click.option("--dry-run", is_flag=True, help="Report what would be stored; write nothing.")
def sync(since: datetime | None, only: tuple[str, ...], restart: bool, dry_run: bool) -> None:
    """Bring the Stripe account (STRIPE_API_KEY) into the event log: every product, price,
    customer, subscription, invoice, charge, refund, dispute and checkout session, as snapshots.
    Resumable; an unchanged object stores nothing. Exit 1 when Stripe cannot be read."""
    settings = _settings()
    names = _resources(only)
    if settings.demo_mode:
        raise click.ClickException(
            "faddl sync reads a Stripe account: set STRIPE_API_KEY (and STRIPE_API_BASE for a stand-in)."
        )
    since_ts = int(since.replace(tzinfo=UTC).timestamp()) if since else None
    from api.gateway.reading import StripeReader, StripeRefused, StripeUnreachable
    from api.sync.account import AccountSync

    async def work(processor: EventProcessor) -> SyncReport:
        reader = StripeReader(settings)
        bars: dict[str, tqdm[Any]] = {}

        def progress(resource: str, objects: int) -> None:
            if resource not in bars:
                for bar in bars.values():
                    bar.close()
                bars[resource] = tqdm(desc=resource, unit=" objects", disable=None, leave=True)
            bars[resource].update(objects)

        try:
            return await AccountSync(processor, reader).run(
                names, since=since_ts, restart=restart, dry_run=dry_run, progress=progress
            )
        except (StripeUnreachable, StripeRefused) as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            for bar in bars.values():
                bar.close()
            await reader.close()

    report = _with_processor(settings, work)
    click.echo(_summary(report))


def _describe(value: Any) -> str:
    return "none" if value is None else str(value)


@main.command()
def reconcile() -> None:
    """Compare the projections with what Stripe says now (every subscription not ended, stale
    ones first, and every open invoice); log each drifted object as a snapshot, which heals it.
    Exit 0 when nothing drifted, 1 when drift was found."""
    settings = _settings()
    if settings.demo_mode:
        raise click.ClickException(
            "faddl reconcile reads a Stripe account: set STRIPE_API_KEY (and STRIPE_API_BASE for a stand-in)."
        )

    from api.gateway.reading import StripeReader, StripeRefused, StripeUnreachable
    from api.sync.account import AccountSync
    from api.sync.reconcile import Reconciler

    async def work(processor: EventProcessor) -> ReconcileReport:
        reader = StripeReader(settings)
        try:
            with tqdm(desc="reconcile", unit=" objects", disable=None) as bar:
                return await Reconciler(AccountSync(processor, reader), settings).run(progress=bar.update)
        except (StripeUnreachable, StripeRefused) as exc:
            raise click.ClickException(str(exc)) from None
        finally:
            await reader.close()

    report = _with_processor(settings, work)
    for drift in report.drift:
        changes = ", ".join(f"{name} {_describe(o)} -> {_describe(t)}" for name, (o, t) in drift.fields.items())
        click.echo(f"{drift.object_type} {drift.object_id}: {changes} ({'healed' if drift.healed else 'not healed'})")
    healed = sum(1 for d in report.drift if d.healed)
    click.echo(
        f"checked {report.checked} objects ({report.stale} stale) in {report.seconds:.1f} s: "
        f"{len(report.drift)} drifted, {healed} healed"
    )
    if report.drift:
        raise SystemExit(1)
