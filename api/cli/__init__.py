"""The ``faddl`` command: a group of commands, one module per concern."""

from __future__ import annotations

from api.cli import analytics, database, log, serving, simulation, sync, tokens, worker
from api.cli.base import main

__all__ = ["main"]

_COMMANDS = (analytics, database, log, serving, simulation, sync, tokens, worker)
"""The modules whose commands register on :data:`main` when imported."""
