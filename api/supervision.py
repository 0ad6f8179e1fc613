"""What ties an API worker process to its supervisor (``faddl serve``).

granian runs the API in worker processes and, with ``respawn_failed_workers``, replaces one that
dies. The other direction needs the kernel: a supervisor killed with SIGKILL cannot stop its
workers, which would go on serving the old configuration beside a restarted server on the same
port (``SO_REUSEPORT`` lets both bind). So each worker asks Linux for SIGTERM when its parent dies
(``PR_SET_PDEATHSIG``), and exits at once if the parent is already gone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

from litestar import Litestar

__all__ = ["create_supervised_app", "die_with_parent"]

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """Have the kernel send SIGTERM to this process when its parent exits; True when it could
    (Linux), False elsewhere (there the supervisor's own shutdown is all there is)."""
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
    return True


def create_supervised_app() -> Litestar:
    """The app factory ``faddl serve`` gives granian: the API, in a worker that dies with its
    supervisor."""
    from api.app import create_app

    die_with_parent()
    return create_app()
