"""``faddl simulate``: a deterministic SaaS history as Stripe events."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, date, datetime
from datetime import time as dt_time
from pathlib import Path

import click
import msgspec
from tqdm import tqdm

from api.cli.base import _settings, main


def history_start(months: int) -> date:
    """The first of the month ``months`` months before this one: where a simulated history of
    ``months`` months starts so that it ends now (``make run``'s demo, ``faddl simulate``)."""
    today = datetime.now(UTC).date().replace(day=1)
    index = today.year * 12 + today.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


# -- simulator -----------------------------------------------------------------------------------
@main.command()
@click.option("--customers", default=100, show_default=True, type=click.IntRange(1), help="Customers to simulate.")
@click.option("--months", default=12, show_default=True, type=click.IntRange(1, 240), help="Months of history.")
@click.option("--seed", default=1, show_default=True, type=int, help="Random seed (same seed, same history).")
@click.option(
    "--start",
    type=click.DateTime(["%Y-%m-%d"]),
    help="First day of the history (default: the first of the month MONTHS months before this one, "
    "as `make run`'s demo history).",
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
    start: datetime | None,
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
    first = start.replace(tzinfo=UTC) if start else datetime.combine(history_start(months), dt_time(), tzinfo=UTC)
    events_list, truth = run_simulation(SimConfig(customers=customers, months=months, seed=seed, start=first))
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
