"""Fault injection (a benchmark script, and the harness of ``tests/test_fault_injection.py``).

A Stripe-like sender delivers a simulated history, each event one to three times, shuffled, several
at a time, and retries every delivery until it gets a 2xx (as Stripe does). Meanwhile the API
process is killed with SIGKILL and started again, and the database goes away: every session of the
run's database is terminated (``pg_terminate_backend``, what a restart or failover does to the
service) and the network to it is down for a while (a loopback proxy stops). The PostgreSQL server
itself is shared with the rest of the machine (other tests), so it is not stopped; for the service
the two are the same: every connection lost, then none possible, then back.

Then it checks what must hold: every event sent is stored once (stored = distinct sent), the live
projections equal ``faddl replay`` of the log, and equal a fresh database fed the history once, in
order; and the subscriptions agree with the simulator's truth.

    uv run python bench/faults.py [--customers 150] [--months 12] [--runs 3] [--kills 3] [--outages 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, make_url, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.db.engine import Database  # noqa: E402
from api.db.migrate import upgrade  # noqa: E402
from api.db.models import subscription_events, user_subscriptions  # noqa: E402
from api.events.model import parse_event  # noqa: E402
from api.ingest.processing import EventProcessor  # noqa: E402
from api.projections.projector import PROJECTION_TABLES  # noqa: E402
from api.settings import Settings  # noqa: E402
from bench.pg import admin_execute  # noqa: E402
from bench.tcp_proxy import TcpProxy  # noqa: E402
from simulator.delivery import DeliveryReport, deliver, delivery_plan  # noqa: E402
from simulator.engine import SimConfig, simulate  # noqa: E402

__all__ = ["FaultReport", "run"]

SECRET = "whsec_faults"
PG_ADMIN = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class FaultReport:
    events: int = 0
    deliveries: int = 0
    attempts: int = 0
    retries: int = 0
    gave_up: int = 0
    kills: int = 0
    outages: int = 0
    stored: int = 0
    seconds: float = 0.0
    live_equals_replay: bool = False
    live_equals_in_order: bool = False
    matches_truth: bool = False
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            self.stored == self.events
            and self.gave_up == 0
            and self.live_equals_replay
            and self.live_equals_in_order
            and self.matches_truth
        )


async def _admin(statement: str) -> None:
    await admin_execute(PG_ADMIN, statement)


def _database(name: str, port: int | None = None) -> str:
    url = make_url(PG_ADMIN).set(drivername="postgresql+asyncpg", database=name)
    if port is not None:
        url = url.set(host="127.0.0.1", port=port)
    return url.render_as_string(hide_password=False)


def _settings(url: str, var_dir: Path) -> Settings:
    return Settings(
        database_url=url,
        stripe_webhook_secrets=(SECRET,),
        stripe_api_key="sk_test_not_used",
        rate_limits_enabled=False,
        var_dir=var_dir,
    )


def _normal(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


async def _state(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    db = Database(settings)
    try:
        async with db.read() as conn:
            state: dict[str, list[tuple[Any, ...]]] = {}
            for table in PROJECTION_TABLES:
                columns = [c for c in table.c if c.name not in ("id", "updated_at")]
                rows = await conn.execute(select(*columns))
                state[table.name] = sorted((tuple(_normal(v) for v in row) for row in rows), key=str)
            return state
    finally:
        await db.dispose()


async def _scalar(settings: Settings, query: Any) -> Any:
    db = Database(settings)
    try:
        async with db.read() as conn:
            return (await conn.execute(query)).scalar_one()
    finally:
        await db.dispose()


async def _replay(settings: Settings) -> None:
    db = Database(settings)
    try:
        await EventProcessor(db, settings).replay()
    finally:
        await db.dispose()


async def _in_order(settings: Settings, bodies: list[str]) -> None:
    db = Database(settings)
    try:
        processor = EventProcessor(db, settings)
        for start in range(0, len(bodies), 200):
            await processor.ingest_many([parse_event(body) for body in bodies[start : start + 200]])
    finally:
        await db.dispose()


class _Api:
    """``faddl serve`` as a real process, to be killed and started again on the same port."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env = env
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(self.port)],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # so a kill reaches the worker too
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/api/health/live", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the API did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def _faults(
    api: _Api,
    proxy: TcpProxy,
    database: str,
    progress: list[int],
    total: int,
    kills: int,
    outages: int,
    report: FaultReport,
    done: threading.Event,
) -> None:
    """Kill the API and take the database away at evenly spread points of the run."""
    schedule: list[tuple[float, str]] = [((i + 1) / (kills + 1), "kill") for i in range(kills)]
    schedule += [((i + 0.5) / (outages + 1) + 0.05, "outage") for i in range(outages)]
    for share, fault in sorted(schedule):
        while progress[0] < share * total and not done.is_set():
            time.sleep(0.01)
        if done.is_set():
            return
        if fault == "kill":
            api.kill()
            time.sleep(0.2)  # the sender meets a closed port for a moment
            api.start()
            report.kills += 1
        else:
            asyncio.run(
                _admin(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
                )
            )
            proxy.stop()
            time.sleep(1.0)
            proxy.start()
            report.outages += 1


def run(
    *,
    customers: int = 30,
    months: int = 4,
    seed: int = 7,
    kills: int = 1,
    outages: int = 1,
    concurrency: int = 8,
    workdir: Path | None = None,
) -> FaultReport:
    """One run of the history under faults; the report says what held."""
    report = FaultReport()
    events, truth = simulate(SimConfig(customers=customers, months=months, seed=seed))
    bodies = [json.dumps(e, separators=(",", ":")) for e in events]
    report.events = len(bodies)
    plan = delivery_plan(bodies, duplicates=0.5, shuffle=True, seed=seed)
    plan += [body for body in plan if zlib.crc32(body.encode()) % 7 == 0]  # some a third time
    report.deliveries = len(plan)

    live_db = f"faddl_faults_{uuid.uuid4().hex[:10]}"
    order_db = f"{live_db}_order"
    temp = tempfile.TemporaryDirectory(prefix="faddl-faults-") if workdir is None else None
    directory = Path(temp.name) if temp else workdir
    assert directory is not None
    asyncio.run(_admin(f'CREATE DATABASE "{live_db}"'))
    asyncio.run(_admin(f'CREATE DATABASE "{order_db}"'))
    live = _settings(_database(live_db), directory / "var")
    ordered = _settings(_database(order_db), directory / "var")
    upgrade(live)
    upgrade(ordered)
    url = make_url(live.database_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _database(live_db, proxy.port),
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "STRIPE_API_KEY": "sk_test_not_used",
        "RATE_LIMITS_ENABLED": "0",
        "VAR_DIR": str(directory / "var"),
        "LOG_LEVEL": "ERROR",
    }
    api = _Api(env, port)
    progress = [0]
    done = threading.Event()
    try:
        api.start()
        injector = threading.Thread(
            target=_faults, args=(api, proxy, live_db, progress, len(plan), kills, outages, report, done)
        )
        injector.start()

        def sent() -> None:
            progress[0] += 1

        started = time.perf_counter()
        delivered: DeliveryReport = asyncio.run(
            deliver(
                f"http://127.0.0.1:{port}/api/webhooks/stripe",
                plan,
                secret=SECRET,
                concurrency=concurrency,
                request_timeout=10,
                on_sent=sent,
                until_accepted=True,
            )
        )
        report.seconds = time.perf_counter() - started
        done.set()
        injector.join()
        report.attempts = sum(delivered.statuses.values()) + sum(delivered.errors.values())
        report.retries = delivered.retries
        report.gave_up = delivered.gave_up
        report.statuses = dict(delivered.statuses)
        api.stop()
        direct = _settings(_database(live_db), directory / "var")
        report.stored = asyncio.run(
            _scalar(
                direct,
                select(func.count()).select_from(subscription_events).where(subscription_events.c.source == "stripe"),
            )
        )
        live_state = asyncio.run(_state(direct))
        asyncio.run(_replay(direct))
        report.live_equals_replay = asyncio.run(_state(direct)) == live_state
        asyncio.run(_in_order(ordered, bodies))
        report.live_equals_in_order = asyncio.run(_state(ordered)) == live_state
        rows = live_state[user_subscriptions.name]
        columns = [c.name for c in user_subscriptions.c if c.name not in ("id", "updated_at")]
        index = {name: i for i, name in enumerate(columns)}
        projected = sorted((r[index["stripe_subscription_id"]], r[index["status"]], r[index["price_id"]]) for r in rows)
        expected = sorted((sid, s["status"], s["price_id"]) for sid, s in truth["subscriptions"].items())
        report.matches_truth = projected == expected
    finally:
        done.set()
        api.stop()
        proxy.close()
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{live_db}" WITH (FORCE)'))
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{order_db}" WITH (FORCE)'))
        if temp is not None:
            temp.cleanup()
    return report


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=150)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--outages", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    print(
        "| run | events | deliveries | attempts | retries | API kills | DB outages | stored | live = replay "
        "| live = in order | = truth | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    failed = 0
    for index in range(args.runs):
        r = run(
            customers=args.customers,
            months=args.months,
            seed=100 + index,
            kills=args.kills,
            outages=args.outages,
            concurrency=args.concurrency,
        )
        failed += not r.ok
        print(
            f"| {index + 1} | {r.events:,} | {r.deliveries:,} | {r.attempts:,} | {r.retries:,} | {r.kills} | "
            f"{r.outages} | {r.stored:,} | {r.live_equals_replay} | {r.live_equals_in_order} | {r.matches_truth} "
            f"| {r.seconds:.1f} |",
            flush=True,
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
