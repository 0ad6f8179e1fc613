"""`faddl serve --workers N` is supervised: a worker killed under load is replaced while the others
go on serving, and killing the supervisor itself (SIGKILL, no chance to clean up) takes every
worker with it, so nothing is left serving an old configuration on the port."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import psutil

from tests.processes import faddl, free_port, service_env, start_server, stop, wait_ready


def _workers(supervisor: psutil.Process) -> set[int]:
    return {child.pid for child in supervisor.children(recursive=True) if child.is_running()}


def _wait_for(condition: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_a_killed_worker_is_replaced_and_workers_die_with_the_supervisor(tmp_path: Path) -> None:
    env = service_env(tmp_path, STRIPE_WEBHOOK_SECRET="whsec_sup", STRIPE_API_KEY="sk_test_unused")
    faddl(env, "db", "upgrade")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_server(env, port, workers=2)
    statuses: list[int] = []
    failures: list[str] = []
    done = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=2) as client:
            while not done.is_set():
                try:
                    statuses.append(client.get(f"{base}/api/plans").status_code)
                except httpx.HTTPError as exc:
                    failures.append(type(exc).__name__)
                time.sleep(0.005)

    try:
        wait_ready(base)
        supervisor = psutil.Process(process.pid)
        assert _wait_for(lambda: len(_workers(supervisor)) == 2, 20)
        first = _workers(supervisor)
        loader = threading.Thread(target=load)
        loader.start()
        time.sleep(0.5)
        victim = min(first)
        psutil.Process(victim).send_signal(signal.SIGKILL)
        assert _wait_for(lambda: len(_workers(supervisor)) == 2 and victim not in _workers(supervisor), 20), (
            "the killed worker was not replaced"
        )
        served_before = len(statuses)
        time.sleep(1.0)
        done.set()
        loader.join()
        assert process.poll() is None, "the supervisor must survive a worker's death"
        assert len(statuses) > served_before, "service continued after the kill"
        assert set(statuses) == {200}
        assert len(failures) <= 5, failures  # only what the dead worker had in flight
        workers = _workers(supervisor)

        process.send_signal(signal.SIGKILL)  # the supervisor dies without a word to its workers
        process.wait()
        assert _wait_for(lambda: not [pid for pid in workers if _alive(pid)], 20), (
            f"workers outlived their supervisor: {_described([pid for pid in workers if _alive(pid)])} first={first}"
        )
        assert _wait_for(lambda: _refused(base), 10), "something still serves on the port"
    finally:
        done.set()
        if process.poll() is None:
            stop(process)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _described(pids: list[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            out.append(f"{pid} {process.status()} ppid={process.ppid()} {' '.join(process.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            out.append(f"{pid} gone")
    return out


def _refused(base: str) -> bool:
    try:
        httpx.get(f"{base}/api/health/live", timeout=0.5)
    except httpx.HTTPError:
        return True
    return False
