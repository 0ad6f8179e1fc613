"""The ``faddl`` command."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec
from tqdm import tqdm

from api.db.engine import Database
from api.events.model import InvalidEvent, ParsedEvent, check_storable, parse_event
from api.ingest.processing import EventProcessor, Outcome
from api.logs import configure_logging
from api.settings import Settings, get_settings

__all__ = ["main"]

T = TypeVar("T")


def _settings() -> Settings:
    try:
        settings = get_settings()
    except ValueError as exc:  # a malformed environment variable
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings)
    return settings


def _check_plans(settings: Settings) -> None:
    """Refuse to start the API with a broken plan catalogue, saying what is wrong."""
    from api.billing.plans import DEFAULT_PLANS_FILE, load_catalogue

    try:
        load_catalogue(settings.plans_file or DEFAULT_PLANS_FILE)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc


def _with_processor(settings: Settings, work: Callable[[EventProcessor], Awaitable[T]]) -> T:
    async def run() -> T:
        db = Database(settings)
        try:
            return await work(EventProcessor(db, settings))
        finally:
            await db.dispose()

    return asyncio.run(run())


@click.group()
def main() -> None:
    """faddl: Stripe subscription backend (webhooks, event log, projections, KPIs)."""


# -- serving -------------------------------------------------------------------------------------
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="API processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the API (granian, ASGI): N worker processes, a dead one replaced, all of them ending
    with this process (even when it is killed)."""
    from granian.constants import Interfaces
    from granian.server import Server

    _check_plans(_settings())
    # Several worker processes share their metrics through files (prometheus-client's multiprocess
    # mode): the directory must be set before any worker imports the client, and start empty.
    made_here = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        made_here = tempfile.mkdtemp(prefix="faddl-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = made_here
    elif directory := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        for stale in Path(directory).glob("*.db"):
            stale.unlink()
    try:
        Server(
            "api.supervision:create_supervised_app",
            address=host,
            port=port,
            workers=workers,
            interface=Interfaces.ASGI,
            factory=True,
            log_access=False,
            backlog=2048,
            respawn_failed_workers=True,  # a worker that dies is replaced (a crash loop still stops)
            workers_kill_timeout=30,  # a worker that does not stop on shutdown is killed
        ).serve()
    finally:
        if made_here:
            shutil.rmtree(made_here, ignore_errors=True)


@main.command()
@click.option("--once", is_flag=True, help="Do one pass of everything, then exit.")
def worker(once: bool) -> None:
    """Retry failed events with back-off (dead after the last attempt); purge expired idempotency keys;
    every ANALYTICS_REFRESH_SECONDS, refresh the Parquet export and KPI snapshot and evaluate the alerts."""
    settings = _settings()

    async def loop(processor: EventProcessor) -> None:
        from analytics.refresh import refresh
        from api.protection.idempotency import DatabaseIdempotencyStore

        last_analytics = float("-inf")

        idempotency = DatabaseIdempotencyStore(processor.db)  # expired keys (Redis expires its own)
        stop = asyncio.Event()
        running = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            running.add_signal_handler(sig, stop.set)
        click.echo(f"worker: retrying failed events every {settings.worker_poll_seconds:g} s", err=True)
        while not stop.is_set():
            try:
                counts = await processor.retry_due()
                if counts:
                    click.echo("worker: " + ", ".join(f"{k.value}={v}" for k, v in counts.items()), err=True)
                await idempotency.purge()
            except Exception as exc:  # keep the worker alive through a database outage
                click.echo(f"worker: pass failed: {type(exc).__name__}: {exc}", err=True)
            if time.monotonic() - last_analytics >= settings.analytics_refresh_seconds:
                last_analytics = time.monotonic()
                try:
                    result = await refresh(processor.db, settings)
                    fired = ", ".join(f"{c.kind} {c.rule}:{c.key}" for c in result.changes)
                    click.echo(
                        f"worker: analytics refreshed in {result.seconds:.1f} s ({result.exported} new events)"
                        + (f"; alerts: {fired}" if fired else ""),
                        err=True,
                    )
                except Exception as exc:  # an analytics failure must not stop retries
                    click.echo(f"worker: analytics pass failed: {type(exc).__name__}: {exc}", err=True)
            if once:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=settings.worker_poll_seconds)

    _with_processor(settings, loop)


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
            _, document = kpi_document(facts, start, end, as_of, with_sources=sources)
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


# -- database ------------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from api.db.migrate import upgrade

    upgrade(_settings(), revision)
    click.echo(f"database at {revision}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (`base` removes every table)."""
    from api.db.migrate import downgrade

    downgrade(_settings(), revision)
    click.echo(f"database at {revision}")


# -- the event log -------------------------------------------------------------------------------
@main.command()
def replay() -> None:
    """Rebuild every projection table from the event log alone."""
    settings = _settings()

    async def work(processor: EventProcessor) -> None:
        from api.events.log import count_stripe_events

        total = await processor.db.run(count_stripe_events)
        started = time.perf_counter()
        with tqdm(total=total, unit="event", desc="replay", disable=None) as bar:
            report = await processor.replay(progress=bar.update)
        click.echo(
            f"replayed {report.events} events in {time.perf_counter() - started:.1f} s; "
            f"{len(report.failed)} failed, {len(report.recovered)} recovered"
        )
        if report.failed:
            raise click.ClickException(f"{len(report.failed)} events failed; see `last_error` in the log")

    _with_processor(settings, work)


@main.group()
def events() -> None:
    """The event log."""


async def _load(processor: EventProcessor, parsed: list[ParsedEvent], chunk: int = 500) -> dict[str, int]:
    """Store and process events in ``created`` order, ``chunk`` to a transaction; outcome counts."""
    counts: dict[str, int] = {}
    with tqdm(total=len(parsed), unit="event", desc="load", disable=None) as bar:
        for start in range(0, len(parsed), chunk):
            for outcome in await processor.ingest_many(parsed[start : start + chunk]):
                counts[outcome.value] = counts.get(outcome.value, 0) + 1
            bar.update(min(chunk, len(parsed) - start))
    return counts


def _read_events(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line.strip()


@events.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def events_load(file: Path) -> None:
    """Bulk-load FILE (JSON lines of Stripe events) through the same processing as webhooks."""
    settings = _settings()
    lines = list(_read_events(file))

    events_parsed = []
    for number, line in lines:
        try:
            event = parse_event(line)
            check_storable(event)
            events_parsed.append(event)
        except InvalidEvent as exc:
            raise click.ClickException(f"{file}:{number}: {exc}") from exc

    async def work(processor: EventProcessor) -> dict[str, int]:
        return await _load(processor, events_parsed)

    started = time.perf_counter()
    counts = _with_processor(settings, work)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    click.echo(f"loaded {len(lines)} events in {time.perf_counter() - started:.1f} s: {summary}")
    if counts.get(Outcome.FAILED.value) or counts.get(Outcome.DEAD.value):
        raise click.ClickException("some events failed to process; the worker will retry them")


# -- authentication ------------------------------------------------------------------------------
@main.command()
@click.option("--user", "user_id", required=True, help="The user id (`sub`) the token is for.")
@click.option("--role", "roles", multiple=True, help="A role to grant (repeatable), e.g. admin.")
@click.option("--minutes", default=60, show_default=True, type=click.IntRange(1, 7 * 24 * 60), help="Lifetime.")
def token(user_id: str, roles: tuple[str, ...], minutes: int) -> None:
    """Mint a development bearer token (trusted only while AUTH_DEV_MODE=1)."""
    from api.security.tokens import mint_dev_token

    settings = _settings()
    if not settings.auth_dev_active:
        click.echo(
            "note: the API trusts this token only with AUTH_DEV_MODE=1 and no AUTH_JWKS_URL (as in `make run`)",
            err=True,
        )
    click.echo(mint_dev_token(settings, user_id, list(roles), minutes))


# -- simulator -----------------------------------------------------------------------------------
@main.command()
@click.option("--customers", default=100, show_default=True, type=click.IntRange(1), help="Customers to simulate.")
@click.option("--months", default=12, show_default=True, type=click.IntRange(1, 240), help="Months of history.")
@click.option("--seed", default=1, show_default=True, type=int, help="Random seed (same seed, same history).")
@click.option(
    "--start",
    default="2025-01-01",
    show_default=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="First day of the history.",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Write events.jsonl and truth.json here.")
@click.option("--post", "post_url", help="Deliver the events, signed, to this webhook URL.")
@click.option("--secret", help="Signing secret for --post (default: STRIPE_WEBHOOK_SECRET, or the demo secret).")
@click.option(
    "--duplicates",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of events delivered a second time.",
)
@click.option("--shuffle", is_flag=True, help="Deliver in random order instead of `created` order.")
@click.option(
    "--concurrency",
    default=8,
    show_default=True,
    type=click.IntRange(1, 512),
    help="Deliveries in flight at once.",
)
def simulate(
    customers: int,
    months: int,
    seed: int,
    start: datetime,
    out: Path | None,
    post_url: str | None,
    secret: str | None,
    duplicates: float,
    shuffle: bool,
    concurrency: int,
) -> None:
    """Generate a deterministic SaaS billing history as Stripe events."""
    from simulator.delivery import deliver, delivery_plan
    from simulator.engine import SimConfig
    from simulator.engine import simulate as run_simulation

    if out is None and post_url is None:
        raise click.UsageError("give --out DIR, --post URL, or both")
    started = time.perf_counter()
    events_list, truth = run_simulation(
        SimConfig(customers=customers, months=months, seed=seed, start=start.replace(tzinfo=UTC))
    )
    bodies = [msgspec.json.encode(event).decode() for event in events_list]
    click.echo(
        f"simulated {len(bodies)} events for {customers} customers over {months} months "
        f"in {time.perf_counter() - started:.1f} s",
        err=True,
    )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "events.jsonl").write_text("".join(body + "\n" for body in bodies), encoding="utf-8")
        (out / "truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True), encoding="utf-8")
        click.echo(f"wrote {out / 'events.jsonl'} and {out / 'truth.json'}", err=True)
    if post_url is not None:
        settings = _settings()
        signing = secret or (settings.webhook_secrets[0] if settings.webhook_secrets else None)
        if not signing:
            raise click.UsageError("no signing secret: pass --secret or set STRIPE_WEBHOOK_SECRET")
        plan = delivery_plan(bodies, duplicates=duplicates, shuffle=shuffle, seed=seed)
        with tqdm(total=len(plan), unit="event", desc="deliver", disable=None) as bar:
            report = asyncio.run(
                deliver(post_url, plan, secret=signing, concurrency=concurrency, on_sent=lambda: bar.update(1))
            )
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(report.statuses.items()))
        errors = ", ".join(f"{name}: {n}" for name, n in sorted(report.errors.items()))
        click.echo(
            f"delivered {report.sent} in {report.seconds:.1f} s ({report.sent / report.seconds:.0f}/s); "
            f"status {statuses}" + (f"; errors {errors}" if errors else ""),
            err=True,
        )
        if report.non_2xx:
            raise click.ClickException(f"{report.non_2xx} deliveries were not accepted")


# -- everything at once --------------------------------------------------------------------------
def _demo_start(months: int) -> date:
    today = datetime.now(UTC).date().replace(day=1)
    index = today.year * 12 + today.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def _spawn(*args: str, base_url: str, module: str = "api.cli") -> subprocess.Popen[bytes]:
    """A child process (our interpreter, ``module``). Local runs trust development tokens
    (``faddl token``), link demo pages to where the API listens, and let ``faddl simulate --post``
    deliver a whole history from one address, unless told otherwise."""
    env = {"AUTH_DEV_MODE": "1", "PUBLIC_BASE_URL": base_url, "RATE_LIMIT_WEBHOOK": "6000/minute", **os.environ}
    return subprocess.Popen([sys.executable, "-m", module, *args], env=env)  # noqa: S603


DASHBOARD = Path(__file__).parents[1] / "dashboards" / "app.py"


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--demo-customers",
    default=150,
    show_default=True,
    type=click.IntRange(0),
    help="Customers of demo history loaded into an empty event log (0: none).",
)
@click.option(
    "--dashboard-port",
    default=8501,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of the Streamlit dashboard (0: do not start it).",
)
def run(host: str, port: int, demo_customers: int, dashboard_port: int) -> None:
    """Migrate, load demo data into an empty log, then run the API, the worker and the dashboard
    until Ctrl-C."""
    from api.db.migrate import upgrade
    from simulator.engine import SimConfig
    from simulator.engine import simulate as run_simulation

    settings = _settings()
    _check_plans(settings)
    upgrade(settings)

    async def log_size(processor: EventProcessor) -> int:
        from api.events.log import size

        return await processor.db.run(size)

    if demo_customers and _with_processor(settings, log_size) == 0:
        months = 12
        start = _demo_start(months)
        click.echo(f"loading demo history: {demo_customers} customers, {months} months from {start}", err=True)
        demo_events, truth = run_simulation(
            SimConfig(
                customers=demo_customers,
                months=months,
                seed=7,
                start=datetime(start.year, start.month, 1, tzinfo=UTC),
            )
        )
        demo_dir = settings.var_dir / "demo"
        demo_dir.mkdir(parents=True, exist_ok=True)
        (demo_dir / "truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True), encoding="utf-8")
        bodies = [msgspec.json.encode(event).decode() for event in demo_events]
        (demo_dir / "events.jsonl").write_text("".join(b + "\n" for b in bodies), encoding="utf-8")

        demo = [parse_event(body) for body in bodies]
        _with_processor(settings, lambda processor: _load(processor, demo))

    base = f"http://{host}:{port}"
    children = [_spawn("serve", "--host", host, "--port", str(port), base_url=base), _spawn("worker", base_url=base)]
    if dashboard_port:
        streamlit = ["run", str(DASHBOARD), "--server.address", host, "--server.port", str(dashboard_port)]
        streamlit += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
        children.append(_spawn(*streamlit, base_url=base, module="streamlit"))
    click.echo(
        "\n".join(
            [
                "",
                "faddl is running (Ctrl-C stops everything):",
                f"  API                 {base}",
                f"  API docs (OpenAPI)  {base}/api/schema/swagger",
                f"  readiness           {base}/api/health/ready",
                f"  health (components) {base}/api/health",
                f"  Prometheus metrics  {base}/metrics",
                *([f"  dashboard (KPIs)    http://{host}:{dashboard_port}"] if dashboard_port else []),
                f"  Stripe webhooks     POST {base}/api/webhooks/stripe"
                + ("  (demo secret: see README)" if settings.demo_mode else ""),
                f"  database            {settings.describe()['database_url']}",
                "  a bearer token      uv run faddl token --user user_000001   (add --role admin for /api/admin)",
                *(
                    [
                        "  payments            demo mode: the simulator plays Stripe; POST /api/checkout returns",
                        "                      a local checkout page (card 4242 pays, 0002 is declined)",
                    ]
                    if settings.demo_mode
                    else []
                ),
                "",
            ]
        ),
        err=True,
    )

    def stop(*_: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    main()
