"""The asyncio forms: results through the loop's thread-safe callback, the loop never blocked."""

import asyncio
import threading
import time

import numpy as np
import pytest

import hetcache
from conftest import random_rows

DIM = 64


async def run_with_ticker(work):
    """Runs `work` while a ticker task measures the longest the loop went without running it."""
    longest = 0.0
    ticks = 0
    stop = asyncio.Event()

    async def ticker():
        nonlocal longest, ticks
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0)
            now = time.perf_counter()
            longest = max(longest, now - last)
            last = now
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        result = await work
    finally:
        stop.set()
        await task
    return result, longest, ticks


@pytest.fixture
def filled_db(tmp_path, rng):
    rows = random_rows(rng, 5000, DIM)
    keys = [f"doc-{i}" for i in range(5000)]
    path = str(tmp_path / "db")
    with hetcache.EmbeddingCache(DIM, path) as cache:
        cache.put_batch(keys, rows)
    return path, keys, rows


def test_a_thousand_concurrent_reads_leave_the_loop_ticking(filled_db):
    path, keys, rows = filled_db
    # A small memory store: most keys are read from RocksDB, on fibers.
    cache = hetcache.EmbeddingCache(DIM, path, strategy=hetcache.Strategy.FIBER_ONLY,
                                    memory_bytes=64 * 1024)
    rng = np.random.default_rng(1)
    picks = [rng.integers(0, len(keys), size=8) for _ in range(1000)]

    events = []

    async def read(n, p):
        events.append("start")
        result = await cache.aget_batch([keys[i] for i in p])
        events.append("done")
        return result

    async def main():
        return await asyncio.gather(*(read(n, p) for n, p in enumerate(picks)))

    results, longest, ticks = asyncio.run(run_with_ticker(main()))
    # Every read was in flight before the first finished: none of them ran on the loop's thread.
    assert events.index("done") == 1000
    for p, (vectors, found) in zip(picks, results):
        assert found.all()
        np.testing.assert_array_equal(vectors, rows[p])
    assert cache.stats()["get_batch_async_calls"] == 1000
    assert cache.stats()["durable_hits"] > 0
    assert ticks > 0
    assert longest < 0.25, f"the loop stood still for {longest * 1000:.0f} ms"


def test_aput_then_aget_round_trip(tmp_path, rng):
    rows = random_rows(rng, 300, DIM)
    keys = [f"k{i}" for i in range(300)]

    async def main():
        with hetcache.EmbeddingCache(DIM, str(tmp_path / "db")) as cache:
            await asyncio.gather(*(cache.aput_batch(keys[i:i + 30], rows[i:i + 30])
                                   for i in range(0, 300, 30)))
            return await cache.aget_batch(keys)

    vectors, found = asyncio.run(main())
    assert found.all()
    np.testing.assert_array_equal(vectors, rows)


def test_aget_or_compute_is_single_flight_across_tasks_and_threads(rng):
    row = random_rows(rng, 1, DIM)[0]
    calls = []
    on_loop_thread = []
    loop_thread = threading.get_ident()

    def slow_embed(missing):
        calls.append(list(missing))
        on_loop_thread.append(threading.get_ident() == loop_thread)
        time.sleep(0.2)  # a blocking model call: it must not run on the loop's thread
        return np.tile(row, (len(missing), 1))

    cache = hetcache.EmbeddingCache(DIM, strategy=hetcache.Strategy.FIBER_ONLY)

    async def main():
        return await asyncio.gather(*(cache.aget_or_compute(["same", "same"], slow_embed)
                                      for _ in range(100)))

    results, longest, _ = asyncio.run(run_with_ticker(main()))
    assert calls == [["same"]]
    assert on_loop_thread == [False]
    for r in results:
        np.testing.assert_array_equal(r, np.tile(row, (2, 1)))
    assert longest < 0.15, f"the loop stood still for {longest * 1000:.0f} ms during the embed"


def test_errors_reach_the_awaiting_task(tmp_path):
    cache = hetcache.EmbeddingCache(DIM)

    def broken(missing):
        raise RuntimeError("model offline")

    async def main():
        with pytest.raises(RuntimeError, match="model offline"):
            await cache.aget_or_compute(["a"], broken)
        with pytest.raises(hetcache.DimensionMismatchError):
            await cache.aput_batch(["a"], np.ones((1, DIM + 1), np.float32))
        with pytest.raises(hetcache.InvalidArgumentError, match="single string"):
            await cache.aget_batch("abc")

    asyncio.run(main())


def test_a_cancelled_task_does_not_break_the_cache(filled_db):
    path, keys, _ = filled_db
    cache = hetcache.EmbeddingCache(DIM, path, strategy=hetcache.Strategy.FIBER_ONLY,
                                    memory_bytes=64 * 1024)

    async def main():
        tasks = [asyncio.create_task(cache.aget_batch(keys[i:i + 50])) for i in range(0, 5000, 50)]
        await asyncio.sleep(0)
        for t in tasks[::2]:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return await cache.aget_batch(keys[:10])

    vectors, found = asyncio.run(main())
    assert found.all()


def test_aput_batch_keeps_a_converted_input_alive_until_written(rng):
    rows = random_rows(rng, 2000, DIM)
    keys = [f"c{i}" for i in range(2000)]
    cache = hetcache.EmbeddingCache(DIM, strategy=hetcache.Strategy.FIBER_ONLY)

    async def main():
        # float64 in: the float32 copy the write reads exists only inside the call
        await asyncio.gather(*(cache.aput_batch(keys[i:i + 200], rows[i:i + 200].astype(np.float64))
                               for i in range(0, 2000, 200)))
        return cache.get_batch(keys)

    vectors, found = asyncio.run(main())
    assert found.all()
    np.testing.assert_array_equal(vectors, rows)
