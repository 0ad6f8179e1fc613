"""KPI freshness benchmark (not a test): how long a webhook that changes MRR takes to be in the KPI
snapshot the dashboard, ``GET /api/admin/dashboard`` and the alerts read.

`faddl serve` and `faddl worker` run as processes on SQLite over a simulated history (the demo's
size by default); new subscriptions are posted, signed, at a steady rate for a while. For each one,
the time from its 200 to the first snapshot that includes it (each event has a second of its own,
and a snapshot's ``computed_until`` is the newest second it includes). Prints the
figures with the machine's load.

    uv run python bench/freshness.py [--rate 2] [--seconds 120] [--customers 150] [--months 12]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulator.delivery import sign  # noqa: E402
from simulator.engine import SimConfig, Simulation  # noqa: E402

SECRET = "whsec_bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def faddl(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "api.cli", *args], env=env, cwd=ROOT)


def newest_snapshot_until(database: Path) -> int | None:
    """The newest snapshot's ``computed_until``: the ``created`` of the newest event it includes."""
    with sqlite3.connect(database, timeout=5) as conn:
        row = conn.execute("SELECT document FROM kpi_snapshots ORDER BY id DESC LIMIT 1").fetchone()
    return None if row is None else json.loads(row[0]).get("computed_until")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=2.0, help="new subscriptions posted a second")
    parser.add_argument("--seconds", type=float, default=120.0, help="how long to post")
    parser.add_argument("--customers", type=int, default=150, help="customers of the history loaded first")
    parser.add_argument("--months", type=int, default=12)
    args = parser.parse_args()

    # A history that ends at the start of this month, as make run's demo does: its live
    # subscriptions are not stale now, so the count of active ones moves only with what is posted.
    today = datetime.now(UTC)
    index = today.year * 12 + today.month - 1 - args.months
    first = datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)
    sim = Simulation(SimConfig(customers=args.customers, months=args.months, seed=5, start=first)).run()
    subscriptions = [e for e in sim.events if e["type"].startswith("customer.subscription.")]
    template = next(e for e in subscriptions if e["data"]["object"]["status"] == "active")
    template = {**template, "type": "customer.subscription.created"}
    template["data"] = {"object": template["data"]["object"]}  # no previous_attributes
    with tempfile.TemporaryDirectory() as tmp:
        database = Path(tmp) / "faddl.db"
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{database}",
            "VAR_DIR": str(Path(tmp) / "var"),
            "STRIPE_API_KEY": "sk_test_bench",
            "STRIPE_WEBHOOK_SECRET": SECRET,
            "RATE_LIMITS_ENABLED": "0",
            "STRIPE_CATCHUP_SECONDS": "0",
            "STRIPE_RECONCILE_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
        }
        subprocess.run([sys.executable, "-m", "api.cli", "db", "upgrade"], env=env, cwd=ROOT, check=True)
        history = Path(tmp) / "history.jsonl"
        history.write_text("".join(json.dumps(e) + "\n" for e in sim.events), encoding="utf-8")
        subprocess.run([sys.executable, "-m", "api.cli", "events", "load", str(history)], env=env, cwd=ROOT, check=True)
        port = free_port()
        server, worker = faddl(env, "serve", "--port", str(port)), faddl(env, "worker")
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/api/health/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            while newest_snapshot_until(database) is None:  # the worker's first refresh
                time.sleep(0.2)
            # Each posted event has its own second (``created``), so a snapshot includes it exactly
            # when its computed_until has reached that second.
            accepted: list[tuple[int, float]] = []  # (created, when its 200 came), in order
            seen: list[float] = []  # when each was first in a snapshot
            done = threading.Event()

            def watch() -> None:
                while not done.is_set() or len(seen) < len(accepted):
                    until = newest_snapshot_until(database) or 0
                    moment = time.perf_counter()
                    while len(seen) < len(accepted) and accepted[len(seen)][0] <= until:
                        seen.append(moment)
                    if done.is_set() and time.perf_counter() - last_post > 60:
                        return
                    time.sleep(0.05)

            last_post = time.perf_counter()
            watcher = threading.Thread(target=watch)
            watcher.start()
            with httpx.Client(base_url=base, timeout=30) as client:
                count = int(args.rate * args.seconds)
                began = time.perf_counter()
                for number in range(count):
                    due = began + number / args.rate
                    time.sleep(max(0.0, due - time.perf_counter()))
                    event = copy.deepcopy(template)
                    sub: dict[str, Any] = event["data"]["object"]
                    moment = max(int(time.time()), accepted[-1][0] + 1 if accepted else 0)
                    event["id"] = f"evt_fresh_{number:06d}"
                    event["created"] = moment
                    sub["id"], sub["customer"] = f"sub_fresh_{number:06d}", f"cus_fresh_{number:06d}"
                    sub["created"] = sub["start_date"] = sub["billing_cycle_anchor"] = moment
                    # A period running now (older API shapes keep it on the subscription, newer
                    # ones on each item), so the new subscription is live, not stale.
                    for holder in (sub, *sub["items"]["data"]):
                        if "current_period_end" in holder or holder is sub:
                            holder["current_period_start"], holder["current_period_end"] = moment, moment + 30 * 86_400
                    body = json.dumps(event)
                    answer = client.post(
                        "/api/webhooks/stripe",
                        content=body,
                        headers={"Stripe-Signature": sign(body, SECRET), "Content-Type": "application/json"},
                    )
                    answer.raise_for_status()
                    accepted.append((moment, time.perf_counter()))
                    last_post = time.perf_counter()
            done.set()
            watcher.join()
        finally:
            for process in (server, worker):
                process.terminate()
                process.wait(timeout=30)
    waits = [s - a for (_, a), s in zip(accepted, seen, strict=False)]
    if len(waits) < len(accepted):
        print(f"{len(accepted) - len(waits)} of {len(accepted)} never reached a snapshot within 60 s")
    if len(waits) < 2:
        raise SystemExit("too few subscriptions reached a snapshot to measure")
    quantiles = statistics.quantiles(waits, n=100)
    load = os.getloadavg()
    print(
        f"\n{len(accepted)} new subscriptions at {args.rate:g}/s for {args.seconds:g} s over a history of "
        f"{args.customers} customers and {args.months} months ({len(sim.events):,} events), SQLite, "
        f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print("\n| from 200 to the snapshot that includes it | p50 s | p95 s | max s |")
    print("|---|---:|---:|---:|")
    print(f"| measured | {statistics.median(waits):.2f} | {quantiles[94]:.2f} | {max(waits):.2f} |")


if __name__ == "__main__":
    main()
