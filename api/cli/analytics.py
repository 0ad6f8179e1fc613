"""The KPI commands: ``faddl kpis``, ``faddl export``, ``faddl alerts``."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import click
from tqdm import tqdm

from api.cli.base import _settings, _with_processor, main
from api.ingest.processing import EventProcessor
from api.settings import Settings


@main.command()
@click.option("--from", "first", help="First month (YYYY-MM); default: the log's first.")
@click.option("--to", "last", help="Last month (YYYY-MM); default: the log's last (or --as-of's).")
@click.option("--as-of", "as_of", help="Compute as the log stood at the end of this day (YYYY-MM-DD).")
@click.option("--format", "output", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option(
    "--events",
    "events_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read Stripe events from a JSON-lines file instead of the database.",
)
@click.option("--sources", is_flag=True, help="With --format json: the event ids behind each month's movements.")
def kpis(
    first: str | None, last: str | None, as_of: str | None, output: str, events_file: Path | None, sources: bool
) -> None:
    """SaaS KPIs from the event log: MRR, ARR, movements, customers, ARPA, churn, NRR/GRR, LTV per month."""
    from analytics.engine import Facts
    from analytics.facts import facts_table
    from analytics.output import as_csv, as_table, kpi_document
    from analytics.report import analyze
    from analytics.sources import events_from_file
    from api.catalogue.plans import configured_catalogue

    def month(value: str | None, name: str) -> date | None:
        if value is None:
            return None
        try:
            return datetime.strptime(value, "%Y-%m").date()
        except ValueError:
            raise click.BadParameter(f"{value!r} is not a month like 2026-03", param_hint=name) from None

    cutoff: int | None = None
    if as_of is not None:
        try:
            day = datetime.strptime(as_of, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise click.BadParameter(f"{as_of!r} is not a date like 2026-03-31", param_hint="--as-of") from None
        cutoff = int(day.timestamp()) + 86_400
    start, end = month(first, "--from"), month(last, "--to")
    if start is not None and end is not None and start > end:
        raise click.BadParameter("--from is after --to", param_hint="--from")
    if end is None and as_of is not None:
        end = date(int(as_of[:4]), int(as_of[5:7]), 1)
    settings = _settings()
    grace = settings.analytics_stale_grace_days
    if events_file is not None:
        read = tqdm(events_from_file(events_file), unit=" events", desc="reading", disable=None)
        facts = Facts(facts_table(read), cutoff, stale_grace_days=grace)
    else:
        facts = Facts(_export(settings, full=False), cutoff, stale_grace_days=grace)
    with tqdm(total=1, desc="computing KPIs", disable=None, bar_format="{desc}: {elapsed}") as bar:
        if output == "json":
            catalogue = configured_catalogue(settings)
            _, document = kpi_document(facts, start, end, as_of, with_sources=sources, catalogue=catalogue)
        else:
            report = analyze(facts, start, end)
        bar.update(1)
    if output == "json":
        click.echo(json.dumps(document, indent=2))
    elif output == "csv":
        click.echo(as_csv(report.months), nl=False)
    else:
        click.echo(as_table(report.months) if report.months else "No subscription events in the log yet.")


@main.group()
def alerts() -> None:
    """Business alerts over the KPIs and the log."""


@alerts.command("evaluate")
def alerts_evaluate() -> None:
    """Refresh the export and KPI snapshot, evaluate every rule, record and deliver what changed."""
    from analytics.alerts.rules import RuleError
    from analytics.refresh import refresh

    settings = _settings()
    try:
        result = _with_processor(settings, lambda processor: refresh(processor.db, settings))
    except RuleError as exc:
        raise click.ClickException(str(exc)) from None
    if not result.changes:
        click.echo("no alert changed")
    for change in result.changes:
        click.echo(f"{change.kind:<10} {change.severity:<8} {change.rule}:{change.key}  {change.message}")
        if change.delivery:
            click.echo(f"{'':<20}{change.delivery}")


@alerts.command("rules")
def alerts_rules() -> None:
    """The rules in force (defaults with ALERT_RULES_FILE applied)."""
    from analytics.alerts.rules import RuleError, load_rules

    try:
        rules = load_rules(_settings().alert_rules_file)
    except RuleError as exc:
        raise click.ClickException(str(exc)) from None
    for rule in rules.values():
        state = "" if rule.enabled else "  (disabled)"
        click.echo(
            f"{rule.name:<24} {rule.severity:<8} > {rule.threshold:g} (min volume {rule.min_volume}, "
            f"cooldown {rule.cooldown_minutes} min){state}"
        )


def _export(settings: Settings, full: bool) -> Path:
    """Bring the Parquet export up to date (with a progress bar) and return its directory."""
    from analytics.export import export_events

    directory = settings.analytics_path

    async def run(processor: EventProcessor) -> None:
        with tqdm(unit=" events", desc="exporting new events", disable=None) as bar:
            await export_events(processor.db, directory, full=full, progress=bar.update)

    _with_processor(settings, run)
    return directory


@main.command("export")
@click.option("--full", is_flag=True, help="Rewrite the export from the whole log instead of appending.")
def export_command(full: bool) -> None:
    """Append the log's new events to the Parquet export the KPIs read (ANALYTICS_DIR)."""
    directory = _export(_settings(), full)
    click.echo(f"export up to date in {directory}")
