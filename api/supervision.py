"""What ties an API worker process to its supervisor (``faddl serve``).

granian runs the API in worker processes and, with ``respawn_failed_workers``, replaces one that
dies. The other direction needs the kernel: a supervisor killed with SIGKILL cannot stop its
workers, which would go on serving the old configuration beside a restarted server on the same
port (``SO_REUSEPORT`` lets both bind). So each worker asks Linux for SIGKILL when its parent dies
(``PR_SET_PDEATHSIG``), and exits at once if the parent is already gone (a worker respawned just
before its supervisor was killed may still be importing when that happens).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys

from litestar import Litestar

__all__ = ["create_supervised_app", "die_with_parent"]

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """Have the kernel kill this process when its parent exits; True when it could (Linux), False
    elsewhere (there the supervisor's own shutdown is all there is).

    SIGKILL, not SIGTERM: a worker forked moments ago still has its parent's signal handlers (which
    set flags in the parent's copy of the server) and would swallow a SIGTERM. Nothing is lost by
    it: every transaction is atomic, and what was not answered is retried by its client."""
    if not sys.platform.startswith("linux"):
        return False
    # The supervisor as multiprocessing knows it: a worker still importing when the supervisor died
    # has been adopted already (os.getppid() is then init's or a subreaper's pid, not its own).
    supervisor = multiprocessing.parent_process()
    parent = supervisor.pid if supervisor is not None and supervisor.pid is not None else os.getppid()
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
    return True


def create_supervised_app() -> Litestar:
    """The app factory ``faddl serve`` gives granian: the API, in a worker that dies with its
    supervisor."""
    from api.app import create_app

    die_with_parent()
    return create_app()
