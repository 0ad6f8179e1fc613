"""What a walk fetched, stored ``STORE_BATCH`` at a time, each batch stored while the next is
being fetched.

One batch is stored at a time, in the order fetched, so a resource's cursor moves forward only
past what is committed; a walk killed at any moment resumes after the last committed batch. The
fetching goes on meanwhile: the next pages arrive and are read while the database commits (the
first sync of a large account spent a third of its time with either the database or Stripe idle).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Generic, TypeVar

from api.sync.resources import STORE_BATCH

__all__ = ["Batches"]

T = TypeVar("T")


class Batches(Generic[T]):
    """Collects items and hands them to ``store`` ``size`` at a time, in the background."""

    def __init__(self, store: Callable[[list[T]], Awaitable[None]], size: int = STORE_BATCH) -> None:
        self._store = store
        self._size = size
        self._pending: list[T] = []
        self._storing: asyncio.Future[None] | None = None

    async def add(self, items: Iterable[T]) -> None:
        """Take items; once a batch is full, wait for the previous batch to be stored (raising
        what storing it raised) and start storing this one."""
        self._pending.extend(items)
        if len(self._pending) >= self._size:
            await self._start()

    async def flush(self) -> None:
        """Store what was taken and wait until every batch is stored."""
        await self._start()
        await self._wait()

    async def abandon(self) -> None:
        """Stop storing: the batch being stored is left to finish or fail (its transaction commits
        whole or not at all); what was not started is dropped. Raises nothing."""
        self._pending.clear()
        if self._storing is not None:
            with contextlib.suppress(Exception):
                await self._storing
            self._storing = None

    async def _start(self) -> None:
        await self._wait()
        if self._pending:
            batch, self._pending = self._pending, []
            self._storing = asyncio.ensure_future(self._store(batch))

    async def _wait(self) -> None:
        storing, self._storing = self._storing, None
        if storing is not None:
            await storing
