"""How arrays cross: in place when float32 C-contiguous, converted once otherwise, results owned
by the C++ buffers they were computed in, and the GIL released while the kernels run."""

import hashlib
import os
import threading
import time
import tracemalloc

import numpy as np
import pytest

import hetcache
from conftest import random_rows

GIB = 1 << 30


@pytest.fixture(scope="module")
def one_gib():
    """1 GiB of float32 candidates (262144 x 1024), random."""
    rng = np.random.default_rng(3)
    c = np.empty((GIB // 4096, 1024), dtype=np.float32)
    for start in range(0, c.shape[0], 16384):
        c[start:start + 16384] = rng.uniform(-1, 1, size=(16384, 1024))
    return c


def traced_peak(fn):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_float32_input_is_read_in_place(one_gib):
    engine = hetcache.SimilarityEngine()
    q = np.ascontiguousarray(one_gib[:2])
    peak = traced_peak(lambda: engine.search(q, one_gib, k=10))
    assert peak < 1 << 20, f"search allocated {peak} bytes from Python for a 1 GiB input"


def test_a_float64_input_is_converted_once(rng):
    engine = hetcache.SimilarityEngine()
    c = rng.uniform(-1, 1, size=(20000, 256))  # float64, 41 MB; its float32 copy is 20.5 MB
    q = c[:2].astype(np.float32)
    peak = traced_peak(lambda: engine.search(q, c, k=10))
    assert c.size * 4 <= peak < c.size * 4 * 1.5
    ids, _ = engine.search(q, c, k=1)
    assert ids[:, 0].tolist() == [0, 1]


def test_non_contiguous_and_half_inputs_give_the_same_answer(rng):
    engine = hetcache.SimilarityEngine()
    c = random_rows(rng, 2000, 64)
    q = random_rows(rng, 8, 64)
    want, _ = engine.search(q, c, k=10)
    wide = np.zeros((2000, 128), np.float32)
    wide[:, ::2] = c
    got, _ = engine.search(q, wide[:, ::2], k=10)  # strided columns
    np.testing.assert_array_equal(got, want)
    got_t, _ = engine.search(q, np.asfortranarray(c), k=10)
    np.testing.assert_array_equal(got_t, want)
    half_ids, _ = engine.search(q.astype(np.float16), c.astype(np.float16), k=3)
    assert half_ids.shape == (8, 3)


class DLPackOnly:
    """Exports only the DLPack protocol (as torch tensors and JAX arrays do)."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


def test_dlpack_and_buffer_protocol_inputs(rng):
    engine = hetcache.SimilarityEngine()
    c = random_rows(rng, 1000, 32)
    want, _ = engine.search(c[:3], c, k=5)
    got, _ = engine.search(DLPackOnly(c[:3]), DLPackOnly(c), k=5)
    np.testing.assert_array_equal(got, want)
    got_mv, _ = engine.search(memoryview(c[:3]), memoryview(c), k=5)
    np.testing.assert_array_equal(got_mv, want)


def test_torch_cpu_tensors(rng):
    torch = pytest.importorskip("torch")
    engine = hetcache.SimilarityEngine()
    c = random_rows(rng, 1000, 32)
    want, _ = engine.search(c[:3], c, k=5)
    got, _ = engine.search(torch.from_numpy(c[:3]), torch.from_numpy(c), k=5)
    np.testing.assert_array_equal(got, want)


def test_results_own_the_buffer_they_were_computed_in(rng):
    engine = hetcache.SimilarityEngine()
    c = random_rows(rng, 3000, 32)
    scores = engine.scores(c[:4], c)
    ids, top = engine.search(c[:4], c, k=5)
    for array in (scores, ids, top):
        assert not array.flags.owndata  # numpy did not allocate it ...
        assert type(array.base.obj).__name__ == "nb_ndarray"  # ... it views the C++ result
        assert array.flags.writeable
    del c  # the results do not depend on the inputs
    assert scores.sum() == scores.sum()


def test_get_batch_writes_into_the_array_it_returns(rng):
    cache = hetcache.EmbeddingCache(16)
    rows = random_rows(rng, 1000, 16)
    keys = [str(i) for i in range(1000)]
    cache.put_batch(keys, rows)
    vectors, found = cache.get_batch(keys)
    assert type(vectors.base.obj).__name__ == "nb_ndarray"
    assert type(found.base.obj).__name__ == "nb_ndarray"
    np.testing.assert_array_equal(vectors, rows)


def _throughput(fn, threads, seconds=0.5):
    done = [0] * threads
    stop = time.monotonic() + seconds

    def work(i):
        while time.monotonic() < stop:
            fn()
            done[i] += 1

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / seconds


def test_two_python_threads_search_on_both_cores(rng):
    """Two threads searching at once scale as two threads of a GIL-free workload do right then.

    The reference is measured beside: on a shared 2-vCPU guest the second core gives anywhere
    from 1.3x to 1.9x (bench/results/cold-start-2026-12-02.md), so a fixed 1.6x would test the
    host, not the GIL. With the GIL held, two searching threads run at 1.0x.
    """
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core: nothing to run beside")
    engine = hetcache.SimilarityEngine()
    c = random_rows(rng, 20000, 256)
    q = random_rows(rng, 16, 256)
    block = rng.bytes(1 << 20)
    reference = lambda: hashlib.sha256(block).digest()  # releases the GIL, touches 1 MiB
    search = lambda: engine.search(q, c, k=10, tier=hetcache.Tier.SEQUENTIAL)
    tries = []
    for _ in range(5):
        machine = _throughput(reference, 2) / _throughput(reference, 1)
        ours = _throughput(search, 2) / _throughput(search, 1)
        tries.append((ours, machine))
        if machine >= 1.15 and ours >= 0.85 * machine:
            return
    if max(m for _, m in tries) < 1.15:
        pytest.skip(f"the second core gives at most {max(m for _, m in tries):.2f}x right now")
    detail = ", ".join(f"{o:.2f}x vs {m:.2f}x" for o, m in tries)
    pytest.fail(f"two searching threads vs two sha256 threads: {detail}: the GIL is held")
