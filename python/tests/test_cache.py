"""EmbeddingCache from Python: memory, RocksDB and Redis stores, TTL, single flight, errors."""

import threading
import time

import numpy as np
import pytest

import hetcache
from conftest import random_rows

DIM = 32


def test_put_get_round_trip_through_rocksdb(tmp_path, rng):
    rows = random_rows(rng, 100, DIM)
    keys = [f"doc-{i}" for i in range(100)]
    with hetcache.EmbeddingCache(DIM, str(tmp_path / "db")) as cache:
        cache.put_batch(keys, rows)
    with hetcache.EmbeddingCache(DIM, str(tmp_path / "db"), mode="read_only") as cache:
        vectors, found = cache.get_batch(keys + ["absent"])
        assert found.dtype == np.bool_ and found.tolist() == [True] * 100 + [False]
        np.testing.assert_array_equal(vectors[:100], rows)
        np.testing.assert_array_equal(cache.get("doc-7"), rows[7])
        assert cache.get("absent") is None
        assert "doc-1" in cache and cache.contains("doc-2")
        with pytest.raises(hetcache.UnsupportedError):
            cache.put("x", rows[0])


def test_get_or_compute_calls_fn_once_with_distinct_misses(rng):
    rows = random_rows(rng, 4, DIM)
    calls = []

    def embed(missing):
        calls.append(list(missing))
        return np.stack([rows[int(k[-1])] for k in missing])

    cache = hetcache.EmbeddingCache(DIM)
    cache.put("k0", rows[0])
    out = cache.get_or_compute(["k0", "k1", "k2", "k1"], embed)
    assert calls == [["k1", "k2"]]
    np.testing.assert_array_equal(out, rows[[0, 1, 2, 1]])
    cache.get_or_compute(["k1", "k2"], embed)
    assert len(calls) == 1  # all cached now: fn not called
    stats = cache.stats()
    assert stats["embed_calls"] == 1 and stats["embedded_keys"] == 2


def test_get_or_compute_is_single_flight_across_threads(rng):
    row = random_rows(rng, 1, DIM)[0]
    calls = []
    started = threading.Event()

    def slow_embed(missing):
        calls.append(list(missing))
        started.set()
        time.sleep(0.3)
        return np.tile(row, (len(missing), 1))

    cache = hetcache.EmbeddingCache(DIM)
    results = [None] * 4

    def worker(i):
        results[i] = cache.get_or_compute(["same-key"], slow_embed)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    threads[0].start()
    started.wait(5)
    for t in threads[1:]:
        t.start()
    for t in threads:
        t.join()
    assert calls == [["same-key"]]
    for r in results:
        np.testing.assert_array_equal(r[0], row)


def test_an_exception_in_fn_reaches_the_caller_and_stores_nothing():
    cache = hetcache.EmbeddingCache(DIM)

    def broken(missing):
        raise KeyError("model offline")

    with pytest.raises(KeyError, match="model offline"):
        cache.get_or_compute(["a", "b"], broken)
    assert cache.get("a") is None


def test_fn_returning_the_wrong_shape_is_named():
    cache = hetcache.EmbeddingCache(DIM)
    with pytest.raises(hetcache.DimensionMismatchError, match="fn returned 1 x 32 for 2"):
        cache.get_or_compute(["a", "b"], lambda missing: np.ones((1, DIM), np.float32))


def test_ttl_expires(rng):
    cache = hetcache.EmbeddingCache(DIM, ttl=0.05)
    cache.put("short", random_rows(rng, 1, DIM)[0])
    cache.put("long", random_rows(rng, 1, DIM)[0], ttl=60)
    time.sleep(0.15)
    assert cache.get("short") is None
    assert cache.get("long") is not None
    with pytest.raises(hetcache.InvalidArgumentError, match="ttl"):
        cache.put("bad", np.ones(DIM, np.float32), ttl=0)
    with pytest.raises(hetcache.InvalidArgumentError, match="ttl"):
        cache.put("bad", np.ones(DIM, np.float32), ttl=float("nan"))


def test_search_returns_keys_ids_and_scores(tmp_path, rng):
    rows = random_rows(rng, 50, DIM)
    with hetcache.EmbeddingCache(DIM, str(tmp_path / "db")) as cache:
        cache.put_batch([f"k{i}" for i in range(50)], rows)
        keys, ids, scores = cache.search(rows[[3, 9]], k=4)
        assert [k[0] for k in keys] == ["k3", "k9"]
        assert ids[:, 0].tolist() == [3, 9]  # row ids in order of first arrival
        assert scores.shape == (2, 4) and scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_search_pads_when_fewer_entries_than_k(rng):
    cache = hetcache.EmbeddingCache(DIM)
    cache.put_batch(["a", "b"], random_rows(rng, 2, DIM))
    keys, ids, scores = cache.search(random_rows(rng, 1, DIM), k=5)
    assert len(keys[0]) == 2 and ids.shape == (1, 2) and not np.isnan(scores).any()


def test_non_finite_values_are_refused_unless_allowed():
    bad = np.ones(DIM, np.float32)
    bad[3] = np.nan
    with pytest.raises(hetcache.InvalidArgumentError):
        hetcache.EmbeddingCache(DIM).put("a", bad)
    cache = hetcache.EmbeddingCache(DIM, allow_non_finite=True)
    cache.put("a", bad)
    assert np.isnan(cache.get("a")[3])


def test_bad_input_is_named(rng):
    cache = hetcache.EmbeddingCache(DIM)
    with pytest.raises(hetcache.DimensionMismatchError):
        cache.put("a", np.ones(DIM + 1, np.float32))
    with pytest.raises(hetcache.InvalidArgumentError, match="3 keys but 2 rows"):
        cache.put_batch(["a", "b", "c"], random_rows(rng, 2, DIM))
    with pytest.raises(hetcache.InvalidArgumentError, match="single string"):
        cache.get_batch("abc")
    with pytest.raises(hetcache.InvalidArgumentError, match=r"keys\[1\]"):
        cache.get_batch(["a", 7])
    with pytest.raises(hetcache.InvalidArgumentError, match="dim = -3"):
        hetcache.EmbeddingCache(-3)
    with pytest.raises(hetcache.InvalidArgumentError, match="on_conflict"):
        cache.ingest(["a"], random_rows(rng, 1, DIM), on_conflict="maybe")


def test_a_closed_cache_says_so(tmp_path):
    cache = hetcache.EmbeddingCache(DIM, str(tmp_path / "db"))
    cache.close()
    assert cache.closed
    with pytest.raises(hetcache.InvalidArgumentError, match="closed"):
        cache.get("a")
    # the directory's lock is free again: another writer opens it
    hetcache.EmbeddingCache(DIM, str(tmp_path / "db")).close()


def test_a_second_writer_is_refused_while_the_first_is_open(tmp_path):
    with hetcache.EmbeddingCache(DIM, str(tmp_path / "db"), collection="a"):
        with pytest.raises(hetcache.StoreUnavailableError, match="locked"):
            hetcache.EmbeddingCache(DIM, str(tmp_path / "db"), collection="a")


def test_ingest_counts_and_conflicts(tmp_path, rng):
    rows = random_rows(rng, 10, DIM)
    keys = [f"k{i}" for i in range(10)]
    with hetcache.EmbeddingCache(DIM, str(tmp_path / "db")) as cache:
        assert cache.ingest(keys, rows)["written"] == 10
        assert cache.ingest(keys, rows)["unchanged"] == 10
        changed = rows.copy()
        changed[4] += 1
        with pytest.raises(hetcache.ConflictError, match="k4"):
            cache.ingest(keys, changed)
        assert cache.ingest(keys, changed, on_conflict="overwrite")["overwritten"] == 1
        np.testing.assert_array_equal(cache.get("k4"), changed[4])


def test_strategy_places_operations_and_metrics_say_where(rng):
    cache = hetcache.EmbeddingCache(DIM, strategy=hetcache.Strategy.CPU_ONLY)
    keys = [f"k{i}" for i in range(500)]
    cache.put_batch(keys, random_rows(rng, 500, DIM))
    cache.get_batch(keys)
    text = cache.metrics()
    assert 'hetcache_tier_operations_total{tier="cpu"}' in text


def test_content_key_is_stable_and_depends_on_every_part():
    cache = hetcache.EmbeddingCache(DIM)
    k = cache.content_key("model-a", "hello")
    assert len(k) == 32 and k == hetcache.content_key("model-a", "hello", DIM)
    assert k != cache.content_key("model-b", "hello")
    assert k != hetcache.content_key("model-a", "hello", DIM + 1)


def test_redis_store(redis_url, rng):
    rows = random_rows(rng, 20, DIM)
    keys = [f"r{i}" for i in range(20)]
    with hetcache.EmbeddingCache(DIM, redis=redis_url, collection="test") as writer:
        writer.put_batch(keys, rows)
    # a second cache (another process would do the same) reads them from the server
    with hetcache.EmbeddingCache(DIM, redis=redis_url, collection="test") as reader:
        vectors, found = reader.get_batch(keys)
        assert found.all()
        np.testing.assert_array_equal(vectors, rows)
        assert reader.stats()["durable_hits"] == 20
    with hetcache.EmbeddingCache(DIM, redis=redis_url, collection="other") as other:
        assert not other.get_batch(keys)[1].any()


def test_redis_urls_are_checked():
    with pytest.raises(hetcache.InvalidArgumentError, match="port"):
        hetcache.EmbeddingCache(DIM, redis="localhost:99999")
    with pytest.raises(hetcache.InvalidArgumentError, match="redis://"):
        hetcache.EmbeddingCache(DIM, redis="rediss://localhost:6379")
    with pytest.raises(hetcache.InvalidArgumentError, match="at most one"):
        hetcache.EmbeddingCache(DIM, "/tmp/x", redis="localhost:6379")


def test_an_unreachable_redis_raises_store_unavailable():
    with pytest.raises(hetcache.StoreUnavailableError):
        cache = hetcache.EmbeddingCache(DIM, redis="127.0.0.1:1")
        cache.get("a")


def test_get_batch_writes_into_a_given_array(rng):
    cache = hetcache.EmbeddingCache(DIM)
    rows = random_rows(rng, 3, DIM)
    cache.put_batch(["a", "b", "c"], rows)
    out = np.full((4, DIM), 7.0, dtype=np.float32)
    vectors, found = cache.get_batch(["c", "x", "a", "b"], out=out)
    assert vectors is out
    np.testing.assert_array_equal(out[[0, 2, 3]], rows[[2, 0, 1]])
    assert (out[1] == 7.0).all() and found.tolist() == [True, False, True, True]
    with pytest.raises(hetcache.InvalidArgumentError, match="shape 4 x 32, expected 2 x 32"):
        cache.get_batch(["a", "b"], out=out)
    with pytest.raises(hetcache.InvalidArgumentError, match="writable C-contiguous float32"):
        cache.get_batch(["a"], out=np.zeros((1, DIM)))  # float64
    frozen = np.zeros((1, DIM), np.float32)
    frozen.flags.writeable = False
    with pytest.raises(hetcache.InvalidArgumentError, match="writable"):
        cache.get_batch(["a"], out=frozen)


def test_keys_may_be_any_sequence_of_str_or_bytes(rng):
    cache = hetcache.EmbeddingCache(DIM)
    rows = random_rows(rng, 3, DIM)
    cache.put_batch(("ascii", "ünïcode", b"raw"), rows)
    _, found = cache.get_batch(["ascii", "ünïcode", "raw"])
    assert found.all()  # bytes b"raw" and str "raw" are the same key
    np.testing.assert_array_equal(cache.get("ünïcode"), rows[1])
    with pytest.raises(hetcache.InvalidArgumentError, match="sequence of keys"):
        cache.get_batch(42)
