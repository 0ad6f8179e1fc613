"""The `faddl` command as a user runs it: real processes where the process is what is tested (serving,
`faddl run`, a malformed setting's stderr), the other commands in-process through click's runner."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import (
    ROOT,
    faddl,
    faddl_here,
    free_port,
    service_env,
    simulate_history,
    start_server,
    stop,
    wait_ready,
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return service_env(tmp_path, STRIPE_WEBHOOK_SECRET="whsec_cli_test", STRIPE_API_KEY="sk_test_unused")


@pytest.fixture
def server(env: dict[str, str]) -> Iterator[str]:
    faddl(env, "db", "upgrade")
    port = free_port()
    process = start_server(env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base)
        yield base
    finally:
        stop(process)


def subscription_rows(database: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(database) as conn:
        return sorted(conn.execute("SELECT stripe_subscription_id, status, price_id FROM user_subscriptions"))


def test_simulate_load_replay(env: dict[str, str], tmp_path: Path) -> None:
    faddl_here(env, "db", "upgrade")
    simulate_history(env, tmp_path / "sim", customers=20, months=6, seed=3)
    truth = json.loads((tmp_path / "sim" / "truth.json").read_text())
    lines = (tmp_path / "sim" / "events.jsonl").read_text().splitlines()
    assert len(lines) == truth["events"]
    loaded = faddl_here(env, "events", "load", str(tmp_path / "sim" / "events.jsonl"))
    assert f"loaded {len(lines)} events" in loaded.stdout
    rows = subscription_rows(tmp_path / "faddl.db")
    expected = sorted((sid, s["status"], s["price_id"]) for sid, s in truth["subscriptions"].items())
    assert rows == expected
    replayed = faddl_here(env, "replay")
    assert "0 failed" in replayed.stdout
    assert subscription_rows(tmp_path / "faddl.db") == expected
    again = faddl_here(env, "events", "load", str(tmp_path / "sim" / "events.jsonl"))
    assert f"duplicate {len(lines)}" in again.stdout


def test_events_load_reports_a_bad_line(env: dict[str, str], tmp_path: Path) -> None:
    faddl_here(env, "db", "upgrade")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "evt_1", "type": "x", "created": 1, "data": {"object": {}}}\nnot json\n')
    result = faddl_here(env, "events", "load", str(bad), check=False)
    assert result.returncode != 0
    assert "bad.jsonl:2" in result.stderr
    assert "not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr


def test_post_shuffled_duplicated_concurrent_to_a_running_server(
    env: dict[str, str], server: str, tmp_path: Path
) -> None:
    result = faddl(
        env,
        "simulate",
        "--customers",
        "15",
        "--months",
        "6",
        "--seed",
        "9",
        "--out",
        str(tmp_path / "sim"),
        "--post",
        f"{server}/api/webhooks/stripe",
        "--shuffle",
        "--duplicates",
        "0.3",
        "--concurrency",
        "8",
    )
    assert "status 200:" in result.stderr
    truth = json.loads((tmp_path / "sim" / "truth.json").read_text())
    expected = sorted((sid, s["status"], s["price_id"]) for sid, s in truth["subscriptions"].items())
    assert subscription_rows(tmp_path / "faddl.db") == expected
    with sqlite3.connect(tmp_path / "faddl.db") as conn:
        stored = conn.execute("SELECT count(*) FROM subscription_events WHERE source = 'stripe'").fetchone()[0]
    assert stored == truth["events"]
    worker = faddl_here(env, "worker", "--once")
    assert worker.returncode == 0


def test_bad_settings_are_reported_plainly(env: dict[str, str]) -> None:
    result = faddl({**env, "RETRY_MAX_ATTEMPTS": "many"}, "db", "upgrade", check=False)
    assert result.returncode != 0
    assert "RETRY_MAX_ATTEMPTS must be a whole number" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_loads_demo_data_serves_and_stops_cleanly(env: dict[str, str], tmp_path: Path) -> None:
    """`make run`'s command: migrate, demo history, API + worker + dashboard; SIGTERM stops every
    process."""
    port, dashboard = free_port(), free_port()
    demo_env = {k: v for k, v in env.items() if k not in ("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api.cli",
            "run",
            "--port",
            str(port),
            "--demo-customers",
            "8",
            "--dashboard-port",
            str(dashboard),
        ],
        env=demo_env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", attempts=600)
        assert (tmp_path / "var" / "demo" / "truth.json").exists()
        truth = json.loads((tmp_path / "var" / "demo" / "truth.json").read_text())
        expected = sorted((sid, s["status"], s["price_id"]) for sid, s in truth["subscriptions"].items())
        assert subscription_rows(tmp_path / "faddl.db") == expected
        for _ in range(300):
            try:
                if httpx.get(f"http://127.0.0.1:{dashboard}/_stcore/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("the dashboard did not start")
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert "faddl is running" in stderr
    assert "demo: faddl sync brought in the account as of" in stderr  # adopted, not replayed
    assert "(demo signing secret whsec_faddl_demo_not_secret)" in stderr
    assert (
        f"uv run faddl simulate --customers 5 --months 1 --post http://127.0.0.1:{port}/api/webhooks/stripe" in stderr
    )
    for child in (f"api.cli serve --host 127.0.0.1 --port {port}", "api.cli worker", f"--server.port {dashboard}"):
        left = subprocess.run(["pgrep", "-f", child], capture_output=True)
        assert left.stdout == b"", f"`{child}` outlived `faddl run`"


def test_run_on_a_taken_port_says_how_to_choose_others(env: dict[str, str]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        result = faddl(env, "run", "--port", str(taken), "--dashboard-port", "0", check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"port {taken} on 127.0.0.1 is taken" in lines[0]
    assert "make run PORT=" in lines[0]
    assert "faddl is running" not in result.stderr


def test_simulate_ends_its_history_this_month_by_default(env: dict[str, str], tmp_path: Path) -> None:
    """As `make run`'s demo history does, so deliveries tried by hand land next to it."""
    from api.cli.simulation import history_start

    faddl_here(env, "simulate", "--customers", "3", "--months", "2", "--out", str(tmp_path / "sim"))
    truth = json.loads((tmp_path / "sim" / "truth.json").read_text())
    assert truth["months"][0]["month"] == f"{history_start(2):%Y-%m}"
    assert len(truth["months"]) == 2


def test_kpis_from_the_log_and_from_a_file(env: dict[str, str], tmp_path: Path) -> None:
    faddl_here(env, "db", "upgrade")
    simulate_history(env, tmp_path / "sim", customers=25, months=4, seed=9)
    events = str(tmp_path / "sim" / "events.jsonl")
    faddl_here(env, "events", "load", events)
    truth = json.loads((tmp_path / "sim" / "truth.json").read_text())
    from_log = json.loads(faddl_here(env, "kpis", "--format", "json", "--from", "2025-01", "--to", "2025-04").stdout)
    from_file = json.loads(
        faddl_here(env, "kpis", "--format", "json", "--events", events, "--from", "2025-01", "--to", "2025-04").stdout
    )
    assert from_log["months"] == from_file["months"]
    assert [m["mrr"] for m in from_log["months"]] == [m["mrr"] for m in truth["months"]]
    assert set(from_log["months"][0]) >= {
        "month",
        "mrr",
        "arr",
        "mrr_movements",
        "paying_customers",
        "arpa",
        "logo_churn_rate",
        "gross_revenue_churn",
        "net_revenue_churn",
        "nrr",
        "grr",
        "ltv",
    }
    assert from_log["cohorts"][0]["month"] == "2025-01"
    assert isinstance(from_log["at_risk"], list)
    assert all({"customer_id", "mrr", "score", "reasons"} <= set(r) for r in from_log["at_risk"])
    assert from_log["cohorts"][0]["logo_retention"][0] == 1.0
    table = faddl_here(env, "kpis", "--from", "2025-01", "--to", "2025-04").stdout
    assert "MRR" in table
    assert "2025-04" in table
    csv_text = faddl_here(env, "kpis", "--format", "csv", "--from", "2025-02", "--to", "2025-02").stdout
    assert csv_text.splitlines()[0].startswith("month,currency,mrr,arr,new")
    bad = faddl_here(env, "kpis", "--from", "March", check=False)
    assert bad.returncode == 2
    assert "is not a month like 2026-03" in bad.stderr


def test_export_and_alerts_commands(env: dict[str, str], tmp_path: Path) -> None:
    import sqlite3

    faddl_here(env, "db", "upgrade")
    simulate_history(env, tmp_path / "sim", customers=30, months=4, seed=3)
    faddl_here(env, "events", "load", str(tmp_path / "sim" / "events.jsonl"))
    assert "export up to date" in faddl_here(env, "export").stdout
    assert any((Path(env["VAR_DIR"]) / "analytics").glob("month=*/*.parquet"))
    rules = faddl_here(env, "alerts", "rules").stdout.splitlines()
    assert len(rules) == 9
    assert rules[0].startswith("payment_failure_rate")
    evaluated = faddl_here(env, "alerts", "evaluate")
    assert evaluated.stdout.strip()
    database = env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as conn:
        (snapshots,) = conn.execute("SELECT count(*) FROM kpi_snapshots").fetchone()
    assert snapshots == 1
    bad = tmp_path / "rules.toml"
    bad.write_text("[mrr_drop]\nseverity = 'urgent'\n")
    refused = faddl_here({**env, "ALERT_RULES_FILE": str(bad)}, "alerts", "evaluate", check=False)
    assert refused.returncode == 1
    assert "severity must be one of low, medium, high, critical" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_the_command_group_creates_no_metric_before_serve_chooses_their_directory() -> None:
    """Prometheus metrics made before ``faddl serve`` sets PROMETHEUS_MULTIPROC_DIR live in the
    supervisor's memory, and forked workers then count apart (a scrape showed 0 requests after
    the sync command's imports pulled the metrics in). A fresh interpreter is what is tested."""
    probe = "import sys, api.cli; print('api.observability.metrics' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
