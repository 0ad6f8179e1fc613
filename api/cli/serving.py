"""Serving: ``faddl serve`` (the API in supervised worker processes) and ``faddl run`` (everything
at once, with demo data)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import msgspec

from api.cli.base import _check_plans, _settings, _with_processor, main
from api.cli.simulation import history_start
from api.ingest.processing import EventProcessor
from api.settings import DEMO_WEBHOOK_SECRET, Settings


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


# -- everything at once --------------------------------------------------------------------------
def _port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def _check_ports(host: str, ports: list[int]) -> None:
    """Refuse to start on a port another program holds, in one line that says how to choose others
    (before anything starts: the processes would otherwise fail one by one, each with a traceback)."""
    taken = [port for port in ports if _port_taken(host, port)]
    if not taken:
        return
    free: list[int] = []
    for port in ports:
        candidate = port + 10
        while _port_taken(host, candidate) or candidate in free:
            candidate += 1
        free.append(candidate)
    which = " and ".join(str(port) for port in taken)
    raise click.ClickException(
        f"port {which} on {host} is taken (another program, or faddl already running): choose others with "
        f"`make run PORT={free[0]}{f' DASHBOARD_PORT={free[1]}' if len(free) > 1 else ''}` "
        f"or `faddl run --port {free[0]}{f' --dashboard-port {free[1]}' if len(free) > 1 else ''}`"
    )


DEMO_WRITE_LIMIT = "30/minute"
"""The write tiers in demo mode (3 and 5 a minute otherwise): a person trying cancel, resume and
change plan by hand should not meet a 429."""


def _spawn(*args: str, base_url: str, demo: bool, defaults: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A ``faddl`` child process. Local runs trust development tokens (``faddl token``), link demo
    pages to where the API listens, and let ``faddl simulate --post`` deliver a whole history from
    one address; in demo mode the write tiers are more generous; plus the caller's ``defaults``.
    Each only unless the environment says otherwise."""
    local = {"AUTH_DEV_MODE": "1", "PUBLIC_BASE_URL": base_url, "RATE_LIMIT_WEBHOOK": "6000/minute"}
    if demo:
        local |= {"RATE_LIMIT_SUBSCRIPTION_WRITE": DEMO_WRITE_LIMIT, "RATE_LIMIT_CHECKOUT": DEMO_WRITE_LIMIT}
    env = {**local, **(defaults or {}), **os.environ}
    return subprocess.Popen([sys.executable, "-m", "api.cli", *args], env=env)  # noqa: S603


DASHBOARD = Path(__file__).parents[2] / "dashboards" / "app.py"
DEMO_MONTHS = 12
DEMO_INSTALLED_AT_MONTH = 8


def _load_demo(settings: Settings, customers: int) -> None:
    """The demo account, adopted as a real one is (:mod:`api.demo.adoption`): ``faddl sync`` at
    month 8 of a 12-month simulated history, its webhooks after. Its events and truth are kept in
    ``VAR_DIR/demo`` for the notebooks."""
    from api.demo.adoption import adopt
    from simulator.clock import add_months
    from simulator.engine import SimConfig, Simulation
    from simulator.truth import ground_truth

    start = history_start(DEMO_MONTHS)
    click.echo(
        f"demo: a simulated Stripe account of {customers} customers, {DEMO_MONTHS} months from {start}", err=True
    )
    config = SimConfig(
        customers=customers, months=DEMO_MONTHS, seed=7, start=datetime(start.year, start.month, 1, tzinfo=UTC)
    )
    sim = Simulation(config).run()
    demo_dir = settings.var_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    truth = ground_truth(sim)
    (demo_dir / "truth.json").write_text(json.dumps(truth, indent=1, sort_keys=True), encoding="utf-8")
    bodies = [msgspec.json.encode(event).decode() for event in sim.events]
    (demo_dir / "events.jsonl").write_text("".join(b + "\n" for b in bodies), encoding="utf-8")
    installed = add_months(sim.start, DEMO_INSTALLED_AT_MONTH)
    adoption = _with_processor(settings, lambda processor: adopt(processor, sim, installed))
    click.echo(
        f"demo: faddl sync brought in the account as of {datetime.fromtimestamp(installed, UTC):%Y-%m-%d} "
        f"({adoption.synced} objects and events; the months before rest on reconstructed history), "
        f"then {adoption.delivered} webhook events after it",
        err=True,
    )


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

    _check_ports(host, [port, *([dashboard_port] if dashboard_port else [])])
    settings = _settings()
    _check_plans(settings)
    upgrade(settings)

    async def log_size(processor: EventProcessor) -> int:
        from api.events.log import size

        return await processor.db.run(size)

    if demo_customers and _with_processor(settings, log_size) == 0:
        _load_demo(settings, demo_customers)

    base = f"http://{host}:{port}"
    demo = settings.demo_mode
    children = [
        _spawn("serve", "--host", host, "--port", str(port), base_url=base, demo=demo),
        _spawn("worker", base_url=base, demo=demo),
    ]
    if dashboard_port:
        # Open without a login only for the demo on this machine; anywhere else the login holds.
        open_here = demo and host in ("127.0.0.1", "localhost", "::1")
        dashboard = ("dashboard", "--host", host, "--port", str(dashboard_port))
        no_login = {"DASHBOARD_LOGIN": "0"} if open_here else None
        children.append(_spawn(*dashboard, base_url=base, demo=demo, defaults=no_login))
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
                + (f"  (demo signing secret {DEMO_WEBHOOK_SECRET})" if settings.demo_mode else ""),
                *(
                    [
                        "  deliver some        uv run faddl simulate --customers 5 --months 1 "
                        f"--post {base}/api/webhooks/stripe"
                    ]
                    if settings.demo_mode
                    else []
                ),
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


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535))
def dashboard(host: str, port: int) -> None:
    """Run the KPI dashboard (Streamlit) until Ctrl-C, behind its login unless DASHBOARD_LOGIN=0:
    the OIDC settings are written where Streamlit reads its secrets (VAR_DIR/dashboard, readable by
    this user only)."""
    from api.security.dashboard_login import write_secrets

    settings = _settings()
    secrets = write_secrets(settings, settings.var_dir / "dashboard")
    command = [sys.executable, "-m", "streamlit", "run", str(DASHBOARD), "--server.address", host]
    command += ["--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    if secrets is not None:
        command += ["--secrets.files", str(secrets)]
    os.execv(sys.executable, command)  # noqa: S606 (the dashboard replaces this process)
