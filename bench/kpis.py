"""KPI engine benchmark (not a test): the full KPI set (``kpi_document``: monthly MRR series,
movements, retention, cohorts, payments, conversion, at-risk customers, payment windows) over
Parquet exports of 100k, 1M and 10M events, compared in the same run with the time DuckDB needs
to merely read the same columns. Prints a Markdown table for the README.

    uv run python bench/kpis.py [--sizes 100000,1000000,10000000] [--base-customers 2400]

The base log is one simulator history (2,400 customers over 24 months, about 100k events),
exported to Parquet through the same code as ``faddl export``. Simulating 10M events of real
Stripe JSON would take hours and 40 GB, so the larger logs are that history repeated with every
id suffixed per copy (customers, subscriptions, invoices, charges, refunds, users): N copies are
N independent companies' worth of customers on the same calendar, and their MRR must be exactly N
times the base's, which the run checks.

Each measurement runs in a fresh process, so its peak memory (max RSS) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CACHE = ROOT / "bench" / "results" / "kpis"
# The columns the engine reads (every column but the raw JSON kept for same-second ties).
COLUMNS = (
    "event_id, created, type, source, object_type, object_id, customer_id, currency, status, mrr, "
    "undiscounted_mrr, discount_ends, cancel_at_period_end, user_id, delinquent, terminal, rank, "
    "trial_end, period_end, plan, previous_json, amount, billing_reason, subscription_id, period_start, "
    "attempt_count, charge_id, refunds_json, feature, period"
)


def base_export(customers: int, months: int) -> Path:
    """The simulator's history as a Parquet export (cached between runs)."""
    from analytics.export import _write
    from analytics.facts import facts_table
    from api.events.model import parse_event
    from simulator.engine import SimConfig, simulate

    directory = CACHE / f"base-{customers}-{months}"
    if (directory / "done").exists():
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    started = time.perf_counter()
    events, _ = simulate(SimConfig(customers=customers, months=months, seed=2026))
    rows = facts_table(parse_event(json.dumps(e)) for e in events).to_pylist()
    _write(directory, rows, 1)
    (directory / "done").write_text(str(len(events)))
    print(
        f"simulated and exported {len(events):,} events ({len(rows):,} facts) in {time.perf_counter() - started:.0f} s"
    )
    return directory


def scaled_export(base: Path, copies: int) -> Path:
    """``copies`` copies of the base export with every id suffixed per copy."""
    import duckdb

    directory = CACHE / f"{base.name}-x{copies}"
    if copies == 1:
        return base
    if (directory / "done").exists():
        return directory
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    con = duckdb.connect()
    suffix = "'~' || r"
    con.execute(
        f"""
        COPY (
            SELECT * REPLACE (
                event_id || {suffix} AS event_id, object_id || {suffix} AS object_id,
                customer_id || {suffix} AS customer_id, user_id || {suffix} AS user_id,
                subscription_id || {suffix} AS subscription_id, charge_id || {suffix} AS charge_id,
                replace(refunds_json, '["re_', '["re_' || r || '~') AS refunds_json
            )
            FROM read_parquet('{base}/month=*/*.parquet'), range({copies}) copies(r)
        ) TO '{directory}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (month), WRITE_PARTITION_COLUMNS true)
        """
    )
    (directory / "done").write_text(str(copies))
    return directory


def events_in(directory: Path) -> int:
    import duckdb

    return int(duckdb.sql(f"SELECT count(*) FROM read_parquet('{directory}/month=*/*.parquet')").fetchall()[0][0])


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- measured in a child process ---------------------------------------------------------------------
def measure_read(directory: str) -> dict[str, float]:
    import duckdb

    started = time.perf_counter()
    table = duckdb.sql(f"SELECT {COLUMNS} FROM read_parquet('{directory}/month=*/*.parquet')").to_arrow_table()
    return {"seconds": time.perf_counter() - started, "rows": table.num_rows}


def measure_kpis(directory: str) -> dict[str, float]:
    from analytics.engine import Facts
    from analytics.output import kpi_document

    started = time.perf_counter()
    facts = Facts(Path(directory))
    _, document = kpi_document(facts)
    seconds = time.perf_counter() - started
    last = document["months"][-1]
    return {"seconds": seconds, "mrr": last["mrr"], "months": len(document["months"])}


def child(kind: str, directory: Path) -> dict[str, object]:
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); from bench.kpis import peak_mb, measure_{kind} as m; "
        f"r = m({str(directory)!r}); r['peak_mb'] = peak_mb(); print(json.dumps(r))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000,10000000", help="Target event counts.")
    parser.add_argument("--base-customers", type=int, default=2400)
    parser.add_argument("--months", type=int, default=24)
    args = parser.parse_args()
    base = base_export(args.base_customers, args.months)
    base_events = int((base / "done").read_text())
    rows = [
        "| events | facts | DuckDB read (s) | read peak (MB) | KPI set (s) | KPI peak (MB) | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    base_mrr: dict[str, int] | None = None
    for size in (int(s) for s in args.sizes.split(",")):
        copies = max(1, round(size / base_events))
        directory = scaled_export(base, copies)
        read = child("read", directory)
        kpis = child("kpis", directory)
        mrr = dict(kpis["mrr"])  # type: ignore[call-overload]
        if copies == 1:
            base_mrr = mrr
        elif base_mrr is not None:
            expected = {c: v * copies for c, v in base_mrr.items()}
            assert mrr == expected, f"MRR of {copies} copies is not {copies} x the base: {mrr} != {expected}"
        ratio = float(kpis["seconds"]) / float(read["seconds"])  # type: ignore[arg-type]
        rows.append(
            f"| {base_events * copies:,} | {int(read['rows']):,} | {float(read['seconds']):.2f} | "  # type: ignore[call-overload]
            f"{float(read['peak_mb']):,.0f} | {float(kpis['seconds']):.2f} | {float(kpis['peak_mb']):,.0f} | "  # type: ignore[arg-type]
            f"{ratio:.1f}x |"
        )
        print(rows[-1], flush=True)
    print("\n".join(rows))
    print(f"\nbase: {base_events:,} simulator events ({args.base_customers} customers, {args.months} months)")
    print(f"cores: {len(os.sched_getaffinity(0))}")


if __name__ == "__main__":
    main()
