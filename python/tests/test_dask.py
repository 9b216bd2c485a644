"""hetcache.dask on a real LocalCluster of worker processes (loopback only)."""

import numpy as np
import pytest

import hetcache
from conftest import random_rows

pytest.importorskip("dask.array")
pytest.importorskip("distributed")
import dask.array as da  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

import hetcache.dask as hd  # noqa: E402

DIM = 48


@pytest.fixture(scope="module")
def client():
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None, host="127.0.0.1")
    with Client(cluster) as c:
        yield c
    cluster.close()


def test_ingest_then_search_equals_one_search_over_everything(client, tmp_path, rng):
    n = 6000
    rows = random_rows(rng, n, DIM)
    # A real tie across shards, the smaller key in the later shard (partition 1 -> shard 1,
    # partition 3 -> shard 0): equal scores rank by key, not by shard.
    rows[3017] = rows[1017]
    keys = np.array([f"doc-{i:05d}" for i in range(n)], dtype=object)
    shards = [str(tmp_path / f"shard-{s}") for s in range(3)]
    counts = hd.ingest(shards, da.from_array(keys, chunks=1000),
                       da.from_array(rows, chunks=(1000, DIM)), client=client)
    assert sum(c["written"] for c in counts) == n
    assert [c["partitions"] for c in counts] == [2, 2, 2]

    queries = np.vstack([rows[[1017, 5, 123]], random_rows(rng, 2, DIM)])
    got_keys, got_ids, got_scores, got_shards = hd.search(shards, queries, k=10, client=client)

    # The same search over one database holding every vector.
    with hetcache.EmbeddingCache(DIM, str(tmp_path / "all")) as whole:
        whole.put_batch(list(keys), rows)
        want_keys, _ids, want_scores = whole.search_database(queries, k=10)
    assert got_keys == want_keys
    np.testing.assert_array_equal(got_scores, want_scores)
    assert got_keys[0][:2] == ["doc-01017", "doc-03017"]  # the tie, by key
    assert got_shards[0, :2].tolist() == [1, 0]
    assert set(np.unique(got_shards)) <= {0, 1, 2}

    # A re-run writes nothing new: every key already holds the same vector.
    again = hd.ingest(shards, da.from_array(keys, chunks=1000),
                      da.from_array(rows, chunks=(1000, DIM)), client=client)
    assert sum(c["unchanged"] for c in again) == n and sum(c["written"] for c in again) == 0


def test_ingest_from_a_dataframe(client, tmp_path, rng):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    rows = random_rows(rng, 500, DIM)
    frame = pd.DataFrame(rows, columns=[f"f{i}" for i in range(DIM)])
    keys = pd.Series([f"row-{i}" for i in range(500)])
    shards = [str(tmp_path / "a"), str(tmp_path / "b")]
    hd.ingest(shards, dd.from_pandas(keys, npartitions=4), dd.from_pandas(frame, npartitions=4),
              client=client)
    keys_found, _, scores, shard = hd.search(shards, rows[42], k=1, client=client)
    assert keys_found == [["row-42"]] and scores[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_nan_scores_rank_after_every_number_across_shards():
    per_shard = [
        ([["a", "b"]], np.array([[0, 1]]), np.array([[np.nan, 0.5]], np.float32)),
        ([["c"]], np.array([[0]]), np.array([[0.1]], np.float32)),
    ]
    keys, ids, scores, shards = hd.merge_hits(per_shard, 3, hetcache.Metric.DOT)
    assert keys == [["b", "c", "a"]] and shards.tolist() == [[0, 1, 0]]
    keys, _, _, _ = hd.merge_hits(per_shard, 3, hetcache.Metric.L2)
    assert keys == [["c", "b", "a"]]


def test_a_missing_shard_is_named(client, tmp_path):
    with pytest.raises(hetcache.InvalidArgumentError, match="shard .*nothing-here"):
        hd.search([str(tmp_path / "nothing-here")], np.ones(DIM, np.float32), k=1, client=client)


def test_bad_arguments(client, tmp_path):
    with pytest.raises(hetcache.InvalidArgumentError, match="shards"):
        hd.search("one-path", np.ones(DIM, np.float32), client=client)
    with pytest.raises(hetcache.InvalidArgumentError, match="k = -1"):
        hd.search([str(tmp_path)], np.ones(DIM, np.float32), k=-1, client=client)
    with pytest.raises(hetcache.InvalidArgumentError, match="3 keys but 2 rows"):
        hd.ingest([str(tmp_path / "x")], da.from_array(np.array(["a", "b", "c"], dtype=object), chunks=3),
                  da.ones((2, DIM), chunks=(1, DIM)), client=client)
