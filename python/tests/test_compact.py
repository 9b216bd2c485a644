"""Compact sets from Python: exact mode equals the float32 search, fast mode ranks well, bad
calls are named."""

import numpy as np
import pytest

import hetcache
from conftest import random_rows

TYPES = [hetcache.StorageType.F16, hetcache.StorageType.BF16, hetcache.StorageType.I8]


@pytest.mark.parametrize("storage", TYPES)
@pytest.mark.parametrize("metric", [hetcache.Metric.DOT, hetcache.Metric.COSINE, hetcache.Metric.L2])
def test_exact_mode_is_the_float32_search(rng, storage, metric):
    c = random_rows(rng, 4000, 96)
    c[1000:1100] = c[7] + rng.normal(0, 1e-4, size=(100, 96)).astype(np.float32)  # near-ties
    q = np.vstack([random_rows(rng, 7, 96), c[7:8]])
    engine = hetcache.SimilarityEngine()
    want_ids, want_scores = engine.search(q, c, k=20, metric=metric)
    compact = engine.compact_set(c, storage)
    assert compact.type == storage and compact.rows == 4000 and compact.dim == 96
    assert compact.keeps_f32
    ids, scores = engine.search(q, compact, k=20, metric=metric)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(scores, want_scores)


def test_rows_kept_elsewhere_and_fast_mode(rng):
    c = random_rows(rng, 5000, 128)
    q = random_rows(rng, 10, 128)
    engine = hetcache.SimilarityEngine()
    want_ids, want_scores = engine.search(q, c, k=10)
    lean = engine.compact_set(c, hetcache.StorageType.I8, keep_f32=False)
    assert not lean.keeps_f32
    assert lean.compact_bytes < c.nbytes * 0.35  # 128 bytes + 48 of scale and bounds per row of 512
    with pytest.raises(hetcache.InvalidArgumentError, match="keep_f32"):
        engine.search(q, lean, k=10)
    ids, scores = engine.search(q, lean, k=10, f32_rows=c)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(scores, want_scores)
    fast_ids, fast_scores = engine.search(q, lean, k=10, mode=hetcache.ScoreMode.FAST)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(fast_ids, want_ids)])
    assert recall >= 0.8
    np.testing.assert_allclose(fast_scores, want_scores, atol=0.02)
    with pytest.raises(hetcache.InvalidArgumentError):
        engine.search(q, lean, k=10, f32_rows=c[:, :64])
    with pytest.raises(ValueError):
        engine.search(q, c, k=10, f32_rows=c)
    with pytest.raises(hetcache.UnsupportedError):
        engine.search(q, lean, k=10, mode=hetcache.ScoreMode.FAST, tier=hetcache.Tier.GPU)


def test_widened_bf16_gives_the_same_answer(rng):
    c = random_rows(rng, 3000, 64)
    q = random_rows(rng, 4, 64)
    engine = hetcache.SimilarityEngine(quantize_queries=False)
    want = engine.search(q, c, k=5)
    got = engine.search(q, engine.compact_set(c), k=5)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_amx_kernels_asked_for_give_the_float32_answer(rng):
    c = random_rows(rng, 2000, 96)
    q = random_rows(rng, 24, 96)  # parts of 8 or more queries: the AMX tiles where there are any
    off = hetcache.SimilarityEngine(amx_kernels=False)
    on = hetcache.SimilarityEngine(amx_kernels=True)
    assert not off.amx_kernels and on.amx_kernels
    assert not off.compact_kernels(hetcache.StorageType.BF16).startswith("amx")
    assert off.compact_kernels(hetcache.StorageType.F32) == off.isa.name.lower()
    want = off.search(q, c, k=10)
    for storage in (hetcache.StorageType.BF16, hetcache.StorageType.I8):
        ids, scores = on.search(q, on.compact_set(c, storage), k=10)
        np.testing.assert_array_equal(ids, want[0], err_msg=on.compact_kernels(storage))
        np.testing.assert_array_equal(scores, want[1])


@pytest.mark.parametrize("storage", TYPES)
def test_compact_memory_store_searches_like_float32(rng, tmp_path, storage):
    c = random_rows(rng, 3000, 64)
    c[500:560] = c[9] + rng.normal(0, 1e-3, size=(60, 64)).astype(np.float32)  # near-ties
    keys = [f"k{i}" for i in range(len(c))]
    q = np.vstack([random_rows(rng, 5, 64), c[9:10]])
    with hetcache.EmbeddingCache(64) as f32, hetcache.EmbeddingCache(
            64, str(tmp_path / "db"), memory_storage=storage) as compact:
        f32.put_batch(keys, c)
        compact.put_batch(keys, c)
        want_keys, _, want_scores = f32.search(q, k=15)
        got_keys, _, got_scores = compact.search(q, k=15)
        assert got_keys == want_keys
        np.testing.assert_array_equal(got_scores, want_scores)
        assert compact.stats()["rescored_keys"] > 0
        # A read the memory store answers returns the stored row, decoded.
        stored = hetcache.SimilarityEngine().compact_set(c[:1], storage).decoded_row(0)
        np.testing.assert_array_equal(compact.get("k0"), stored)


def test_compact_memory_store_bounds_and_modes(rng):
    c = random_rows(rng, 3000, 768)
    keys = [f"k{i}" for i in range(len(c))]
    entries = {}
    for storage in [hetcache.StorageType.F32, hetcache.StorageType.BF16]:
        with hetcache.EmbeddingCache(768, memory_bytes=4 << 20, memory_storage=storage,
                                     search_mode=hetcache.ScoreMode.FAST) as cache:
            cache.put_batch(keys, c)
            entries[storage] = cache.stats()["entries"]
    # Per entry at d = 768: f32 3072 bytes + key and index; bf16 1536 + 40 of bounds + the same.
    assert entries[hetcache.StorageType.BF16] >= 1.85 * entries[hetcache.StorageType.F32]
    with pytest.raises(hetcache.InvalidArgumentError, match="durable store"):
        hetcache.EmbeddingCache(8, memory_storage=hetcache.StorageType.I8)


@pytest.mark.parametrize("storage", TYPES)
def test_compact_durable_store_reads_back_rounded(rng, tmp_path, storage):
    c = random_rows(rng, 200, 48)
    keys = [f"k{i}" for i in range(len(c))]
    stored = hetcache.SimilarityEngine().compact_set(c, storage)
    with hetcache.EmbeddingCache(48, str(tmp_path / "db"), durable_storage=storage) as cache:
        cache.put_batch(keys, c)
        np.testing.assert_array_equal(cache.get("k3"), stored.decoded_row(3))
    # Reopened, the memory store is empty: the durable store's value, as it was rounded.
    with hetcache.EmbeddingCache(48, str(tmp_path / "db")) as reopened:
        np.testing.assert_array_equal(reopened.get("k7"), stored.decoded_row(7))
        assert reopened.stats()["durable_hits"] == 1
    with pytest.raises(hetcache.InvalidArgumentError, match="durable_storage"):
        hetcache.EmbeddingCache(8, durable_storage=storage)
