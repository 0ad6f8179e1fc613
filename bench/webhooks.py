"""Webhook ingestion benchmark (not a test): 20,000 signed simulator events, 32 in flight over
loopback, to the API (one worker process) on SQLite and on PostgreSQL, and in the same run to a bare
Litestar route that only reads the body. Prints a Markdown table for the README.

    uv run python bench/webhooks.py [--events 20000] [--concurrency 32] [--only bare,sqlite,postgres]

The extra case `postgres-2-workers` shows how the API scales out with a second process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import stripe

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import LoadResult, build_request, run_load  # noqa: E402
from simulator.engine import SimConfig, simulate  # noqa: E402

SECRET = "whsec_bench"
PG_ADMIN = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_events(count: int) -> list[str]:
    customers = max(10, count // 28)
    while True:
        events, _ = simulate(SimConfig(customers=customers, months=12, seed=2024))
        if len(events) >= count:
            return [json.dumps(e, separators=(",", ":")) for e in events[:count]]
        customers = int(customers * 1.3) + 1


def start_server(target: str, env: dict[str, str], port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    code = (
        "from granian.constants import Interfaces; from granian.server import Server; "
        f"Server({target!r}, address='127.0.0.1', port={port}, workers={workers}, interface=Interfaces.ASGI, "
        "factory=True, log_access=False, backlog=2048).serve()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(200):
        try:
            httpx.post(f"http://127.0.0.1:{port}/api/webhooks/stripe", content=b"{}", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"server {target} did not start")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """CPU seconds used so far by every PostgreSQL process on this machine."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += cpu_seconds(int(entry.name))
            except OSError:
                continue
    return total


def server_cpu(process: subprocess.Popen[bytes]) -> float:
    total = cpu_seconds(process.pid)
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    if children.exists():
        for pid in children.read_text().split():
            total += cpu_seconds(int(pid))
    return total


def run_case(
    name: str, target: str, env: dict[str, str], bodies: list[str], concurrency: int, workers: int = 1
) -> dict[str, Any]:
    port = free_port()
    process = start_server(target, env, port, workers)
    try:
        # Sign right before sending: the signature must be under 300 s old when it arrives.
        stamp = int(time.time())
        requests = [
            build_request(
                "127.0.0.1",
                port,
                "/api/webhooks/stripe",
                body.encode(),
                {"Stripe-Signature": stripe.WebhookSignature.generate_signature_header(body, SECRET, stamp)},
            )
            for body in bodies
        ]
        cpu_before, pg_before = server_cpu(process), postgres_cpu()
        generator_before = resource.getrusage(resource.RUSAGE_SELF)
        result: LoadResult = asyncio.run(run_load("127.0.0.1", port, requests, concurrency))
        generator_after = resource.getrusage(resource.RUSAGE_SELF)
        cpu, pg_cpu = server_cpu(process) - cpu_before, postgres_cpu() - pg_before
    finally:
        process.terminate()
        process.wait(timeout=20)
    generator_cpu = (generator_after.ru_utime - generator_before.ru_utime) + (
        generator_after.ru_stime - generator_before.ru_stime
    )
    return {
        "name": name,
        "sent": result.sent,
        "seconds": result.seconds,
        "rate": result.rate,
        "p50_ms": result.percentile(50) * 1000,
        "p99_ms": result.percentile(99) * 1000,
        "non_2xx": result.non_2xx,
        "server_cpu": cpu,
        "postgres_cpu": pg_cpu,
        "generator_cpu": generator_cpu,
    }


async def pg_admin(statement: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def stored(url: str, sqlite_path: Path | None) -> int:
    if sqlite_path is not None:
        import sqlite3

        with sqlite3.connect(sqlite_path) as conn:
            return int(conn.execute("SELECT count(*) FROM subscription_events WHERE source = 'stripe'").fetchone()[0])
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM subscription_events WHERE source = 'stripe'"))
    finally:
        await conn.close()


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "api.cli", "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--only", default="bare,sqlite,postgres,postgres-2-workers")
    args = parser.parse_args()
    cases = args.only.split(",")

    bodies = make_events(args.events)
    print(
        f"{len(bodies)} simulator events, {len({json.loads(b)['id'] for b in bodies})} distinct, "
        f"concurrency {args.concurrency}",
        file=sys.stderr,
    )
    base_env = {
        **os.environ,
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "STRIPE_API_KEY": "sk_test_bench",
        "LOG_LEVEL": "ERROR",
        # One client sends everything: the limiter runs (its cost is measured) but never refuses.
        "RATE_LIMIT_WEBHOOK": "100000000/minute",
    }
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if "bare" in cases:
            rows.append(
                run_case(
                    "bare Litestar route (reads body)", "bench.bare_app:create_app", base_env, bodies, args.concurrency
                )
            )
        if "sqlite" in cases:
            path = Path(tmp) / "bench.db"
            env = {**base_env, "DATABASE_URL": f"sqlite:///{path}"}
            migrate(env)
            row = run_case("faddl on SQLite", "api.app:create_app", env, bodies, args.concurrency)
            row["stored"] = asyncio.run(stored("", path))
            rows.append(row)
        for case, workers in (("postgres", 1), ("postgres-2-workers", 2)):
            if case not in cases:
                continue
            name = f"faddl_bench_{uuid.uuid4().hex[:8]}"
            asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
            url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
            env = {**base_env, "DATABASE_URL": url}
            try:
                migrate(env)
                label = "faddl on PostgreSQL" + (f", {workers} worker processes" if workers > 1 else "")
                row = run_case(label, "api.app:create_app", env, bodies, args.concurrency, workers)
                row["stored"] = asyncio.run(stored(url, None))
                rows.append(row)
            finally:
                asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    bare = next((r["rate"] for r in rows if r["name"].startswith("bare")), None)
    print(
        "| target | events/s | p50 ms | p99 ms | non-2xx | stored / sent | vs bare route | server CPU s "
        "| PostgreSQL CPU s | generator CPU s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = f"{r['rate'] / bare:.2f}" if bare else "-"
        stored_text = f"{r['stored']} / {r['sent']}" if "stored" in r else "-"
        print(
            f"| {r['name']} | {r['rate']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['non_2xx']} | "
            f"{stored_text} | {ratio} | {r['server_cpu']:.1f} | {r['postgres_cpu']:.1f} | {r['generator_cpu']:.1f} |"
        )


if __name__ == "__main__":
    main()
