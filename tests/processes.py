"""Running the service and its stand-ins as real processes, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import structlog

ROOT = Path(__file__).parents[1]


def service_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment of a `faddl` process on its own SQLite database and files under
    ``tmp_path``, rate limits off (tests of them turn them on), the worker's own calls to Stripe
    off (the tests of them set a stand-in), plus ``settings``."""
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'faddl.db'}",
        "VAR_DIR": str(tmp_path / "var"),
        "LOG_LEVEL": "WARNING",
        "RATE_LIMITS_ENABLED": "0",
        "STRIPE_CATCHUP_SECONDS": "0",
        "STRIPE_RECONCILE_SECONDS": "0",
        **settings,
    }


def faddl(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"faddl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def faddl_here(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``faddl`` run in this process (click's runner, the environment ``env``): the same command
    without 1.7 s of interpreter start and imports, where the process itself is not what is tested."""
    from click.testing import CliRunner

    from api.cli import main
    from api.settings import get_settings

    get_settings.cache_clear()  # the settings are read once per process; here, once per command
    logging_before = structlog.get_config()  # a command configures logging for the process
    try:
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    finally:
        get_settings.cache_clear()
        structlog.configure(**logging_before)
    completed = subprocess.CompletedProcess(["faddl", *args], result.exit_code, result.stdout, result.stderr)
    if check and result.exit_code != 0:
        raise AssertionError(f"faddl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return completed


def simulate_history(env: dict[str, str], out: Path, *, customers: int, months: int, seed: int) -> None:
    """``faddl simulate --out`` of a history from 2025-01-01 (fixed dates: the tests compare months)."""
    args = ("--start", "2025-01-01", "--customers", str(customers), "--months", str(months), "--seed", str(seed))
    faddl_here(env, "simulate", *args, "--out", str(out))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, attempts: int = 300, path: str = "/api/health/ready") -> None:
    """Poll ``base + path`` until it answers 200 (the API's readiness by default)."""
    for _ in range(attempts):
        try:
            if httpx.get(f"{base}{path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base} did not become ready")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a child and reap it, killing it if it does not stop within ten seconds."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_server(
    env: dict[str, str], port: int, *, workers: int = 1, log: Any = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """``faddl serve`` on 127.0.0.1:``port`` (stop it with :func:`stop`)."""
    return subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=log,
    )
