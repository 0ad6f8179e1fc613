"""Secrets this installation makes for itself on first use (the development token key, the demo's
session-id key): one file each under ``VAR_DIR``, created readable by this user only, and created
once even when several workers start together (``O_EXCL``: the loser reads the winner's file)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["secret_file"]


def secret_file(path: Path, make: Callable[[], bytes]) -> bytes:
    """The bytes of ``path``, written from ``make()`` (mode 0600) when the file does not exist yet."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    content = make()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    return content
