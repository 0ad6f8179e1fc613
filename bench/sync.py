"""``faddl sync`` benchmark (not a test): a simulated account served by the Stripe API stand-in
(``simulator/stripe_api.py``, in its own process, so it does not share the sync's interpreter),
synced twice by ``faddl sync`` with the rate limit off: objects a second end to end, peak memory
(max RSS of the sync process) and the second (unchanged) sync against the first.

    uv run python bench/sync.py [--customers 10000] [--months 24] [--postgres URL]

Prints a Markdown table for the README, with the machine's load at the time.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEY = "sk_test_bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(env: dict[str, str], *args: str) -> tuple[float, int, str]:
    """Run ``faddl`` under GNU time: wall seconds, max RSS in KiB, stdout."""
    started = time.perf_counter()
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "api.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"faddl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    rss = int(result.stderr.strip().splitlines()[-1])
    return seconds, rss, result.stdout


def total(output: str) -> dict[str, int]:
    line = next(line for line in output.splitlines() if line.startswith("total"))
    names = ("fetched", "stored", "unchanged", "skipped", "failed")
    return dict(zip(names, (int(part) for part in line.split()[1:]), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--postgres", help="a PostgreSQL URL (an empty database) instead of SQLite")
    args = parser.parse_args()

    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulator.stripe_api",
            "--customers",
            str(args.customers),
            "--months",
            str(args.months),
            "--seed",
            str(args.seed),
            "--port",
            str(port),
            "--key",
            KEY,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        ready = server.stdout.readline().strip()
        print(f"stand-in ready in {time.perf_counter() - started:.0f} s: {ready}", file=sys.stderr)
        with tempfile.TemporaryDirectory() as tmp:
            database = args.postgres or f"sqlite:///{Path(tmp) / 'faddl.db'}"
            env = {
                **os.environ,
                "DATABASE_URL": database,
                "VAR_DIR": str(Path(tmp) / "var"),
                "STRIPE_API_KEY": KEY,
                "STRIPE_API_BASE": f"http://127.0.0.1:{port}",
                "STRIPE_WEBHOOK_SECRET": "whsec_bench",
                "STRIPE_SYNC_REQUESTS_PER_SECOND": "-1",
                "LOG_LEVEL": "WARNING",
            }
            subprocess.run(
                [sys.executable, "-m", "api.cli", "db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True
            )
            first_s, first_rss, first_out = timed(env, "sync")
            second_s, second_rss, second_out = timed(env, "sync")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a large account takes a while to free
            server.kill()
            server.wait()
    first, second = total(first_out), total(second_out)
    load = os.getloadavg()
    counts = re.findall(r"^(\w+)\s+(\d+)\s+(\d+)", first_out, re.MULTILINE)
    print(
        f"\n{args.customers:,} customers over {args.months} months (seed {args.seed}), "
        f"{'PostgreSQL' if args.postgres else 'SQLite'}, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print("objects fetched: " + ", ".join(f"{name} {fetched}" for name, fetched, _ in counts if name != "total"))
    print("\n| sync | objects | stored | seconds | objects/s | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, row, seconds, rss in (
        ("first", first, first_s, first_rss),
        ("second (unchanged)", second, second_s, second_rss),
    ):
        rate = row["fetched"] / seconds
        print(f"| {name} | {row['fetched']:,} | {row['stored']:,} | {seconds:.1f} | {rate:,.0f} | {rss / 1024:.0f} |")
    print(f"\nsecond sync {first_s / second_s:.1f}x faster than the first")


if __name__ == "__main__":
    main()
