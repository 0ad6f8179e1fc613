"""Group commit: deliveries that arrive while a transaction is running wait and go together in the
next one, so a burst of webhooks shares transactions (and their round trips and fsyncs) instead of
queueing for one each. A lone delivery still goes at once, in a batch of one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """Runs ``run(batch)`` for queued items, one batch at a time, at most ``max_batch`` items each;
    each caller gets its own item's result (or the batch's exception)."""

    def __init__(self, run: Callable[[Sequence[Item]], Awaitable[list[Result]]], max_batch: int) -> None:
        self._run = run
        self._max_batch = max(1, max_batch)
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.append((item, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: len(batch)]
            try:
                results = await self._run([item for item, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():  # a caller that went away has a cancelled future
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
