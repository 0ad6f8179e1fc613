"""Batches: stored one at a time in the order fetched, each while the next is being gathered; a
failed store surfaces at the next step and nothing after it is stored."""

from __future__ import annotations

import asyncio

import pytest

from api.sync.batches import Batches


async def test_each_batch_is_stored_while_the_next_is_gathered_in_order() -> None:
    stored: list[list[int]] = []
    release = asyncio.Event()
    started = asyncio.Event()

    async def store(batch: list[int]) -> None:
        started.set()
        if not stored:
            await release.wait()  # the first batch's commit takes a while
        stored.append(batch)

    batches = Batches(store, size=3)
    await batches.add([1, 2, 3])
    await started.wait()
    await batches.add([4, 5])  # gathered while the first batch is being stored
    assert stored == []
    release.set()
    await batches.add([6, 7])  # waits for the first, then starts [4, 5, 6, 7]
    await batches.flush()
    assert stored == [[1, 2, 3], [4, 5, 6, 7]]


async def test_a_failed_store_is_raised_and_stops_what_follows() -> None:
    stored: list[list[int]] = []

    async def store(batch: list[int]) -> None:
        if batch[0] == 1:
            raise RuntimeError("the database refused the batch")
        stored.append(batch)

    batches = Batches(store, size=2)
    await batches.add([1, 2])
    with pytest.raises(RuntimeError, match="refused"):
        await batches.add([3, 4])
    await batches.abandon()
    assert stored == []


async def test_abandon_lets_the_batch_in_flight_finish_and_drops_the_rest() -> None:
    stored: list[list[int]] = []

    async def store(batch: list[int]) -> None:
        await asyncio.sleep(0.01)
        stored.append(batch)

    batches = Batches(store, size=2)
    await batches.add([1, 2])
    await batches.add([3])
    await batches.abandon()
    await batches.flush()
    assert stored == [[1, 2]]
