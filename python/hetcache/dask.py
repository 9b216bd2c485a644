"""Search and ingest across machines on a Dask cluster: a set of hetcache databases (shards).

    from dask.distributed import Client
    import hetcache.dask

    client = Client("scheduler:8786")
    shards = ["/data/emb/shard-0", "/data/emb/shard-1", "/data/emb/shard-2"]
    hetcache.dask.ingest(shards, keys, vectors)          # dask arrays (or dataframe columns)
    keys, ids, scores, shard = hetcache.dask.search(shards, queries, k=10)

Each shard is a RocksDB database directory that its task opens on the worker it runs on: a
shared file system (every worker sees every path), or one shard per machine with the tasks
pinned there (``workers=``). search() runs the library's whole-database search in one task per
shard and merges the top-k lists on the client with the library's order (better score first,
NaN after every number, equal scores by key). ingest() writes each shard from one task, so one
process at a time holds a shard's write lock.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import _core
from ._cache import EmbeddingCache

try:
    import dask.array as _da
    from dask.distributed import Client, get_client
except ImportError as error:  # pragma: no cover - the module is optional
    raise ImportError("hetcache.dask needs dask and distributed: "
                      "pip install 'dask[array]' distributed") from error

__all__ = ["search", "ingest", "merge_hits"]

Hit = Tuple[float, str, int, int]  # score, key, row id, shard


def _client(client: Optional[Client]) -> Client:
    return client if client is not None else get_client()


def _open_mode(path: str) -> str:
    # A writer elsewhere: follow it (see its committed batches); else read the files as they are.
    return "follower" if _core.database_has_writer(path) else "read_only"


def _search_shard(path: str, collection: str, queries: np.ndarray, k: int,
                  metric: _core.Metric) -> Tuple[List[List[str]], np.ndarray, np.ndarray]:
    dim = _core.stored_dimension(path, collection)
    if dim is None:
        raise _core.InvalidArgumentError(
            f"shard {path}: no hetcache database with collection '{collection}' there")
    with EmbeddingCache(dim, path, collection=collection, mode=_open_mode(path),
                        memory_bytes=1 << 20) as cache:
        return cache.search_database(queries, k, metric)


def _rank_key(metric: _core.Metric):
    larger_is_better = metric != _core.Metric.L2

    def key(hit: Hit):
        score = hit[0]
        if math.isnan(score):
            return (1, 0.0, hit[1])
        return (0, -score if larger_is_better else score, hit[1])

    return key


def merge_hits(per_shard: Sequence[Tuple[List[List[str]], np.ndarray, np.ndarray]], k: int,
               metric: _core.Metric = _core.Metric.COSINE
               ) -> Tuple[List[List[str]], np.ndarray, np.ndarray, np.ndarray]:
    """Merges per-shard (keys, ids, scores) into the top k of all: (keys, ids, scores, shards),
    ranked as the library ranks (better score first, NaN after every number, equal scores by
    key). ids are row ids within their shard; shards index ``per_shard``."""
    if not per_shard:
        raise _core.InvalidArgumentError("merge_hits: no shards")
    queries = len(per_shard[0][0])
    order = _rank_key(metric)
    merged: List[List[Hit]] = []
    for q in range(queries):
        hits: List[Hit] = []
        for s, (keys, ids, scores) in enumerate(per_shard):
            for j, key in enumerate(keys[q]):
                hits.append((float(scores[q, j]), key, int(ids[q, j]), s))
        hits.sort(key=order)
        merged.append(hits[:k])
    width = max((len(h) for h in merged), default=0)
    out_scores = np.full((queries, width), np.nan, dtype=np.float32)
    out_ids = np.full((queries, width), -1, dtype=np.int64)
    out_shards = np.full((queries, width), -1, dtype=np.int64)
    for q, hits in enumerate(merged):
        for j, (score, _key, row, shard) in enumerate(hits):
            out_scores[q, j], out_ids[q, j], out_shards[q, j] = score, row, shard
    return [[h[1] for h in hits] for hits in merged], out_ids, out_scores, out_shards


def search(shards: Sequence[str], queries: Any, k: int = 10, *,
           metric: _core.Metric = _core.Metric.COSINE, collection: str = "default",
           client: Optional[Client] = None,
           workers: Optional[Dict[str, Any]] = None
           ) -> Tuple[List[List[str]], np.ndarray, np.ndarray, np.ndarray]:
    """Top-k of each query over every vector of every shard: (keys, ids, scores, shards) -- a
    key list per query, and queries x k arrays of row ids (within their shard), scores and the
    index in ``shards`` each hit came from. One task per shard on the cluster (``client``, default: the current one) runs the
    whole-database search there; ``workers`` maps a shard path to the worker(s) it must run on
    (one shard per machine, no shared file system)."""
    if isinstance(shards, str) or not shards:
        raise _core.InvalidArgumentError("shards: a non-empty list of database directories")
    if k < 0:
        raise _core.InvalidArgumentError(f"k = {k}: must be >= 0")
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    c = _client(client)
    [scattered] = c.scatter([q], broadcast=True)
    futures = [
        c.submit(_search_shard, path, collection, scattered, k, metric, pure=False,
                 workers=(workers or {}).get(path))
        for path in shards
    ]
    return merge_hits(c.gather(futures), k, metric)


def _ingest_shard(path: str, collection: str, dim: int, on_conflict: str,
                  parts: List[Tuple[np.ndarray, np.ndarray]]) -> Dict[str, int]:
    totals = {"written": 0, "unchanged": 0, "overwritten": 0, "skipped": 0, "partitions": 0}
    with EmbeddingCache(dim, path, collection=collection) as cache:
        for keys, vectors in parts:
            counts = cache.ingest([str(key) for key in keys], vectors, on_conflict=on_conflict)
            for name, n in counts.items():
                totals[name] += n
            totals["partitions"] += 1
    return totals


def _as_dask_array(x: Any, name: str):
    if hasattr(x, "to_dask_array"):  # a dask dataframe or series
        return x.to_dask_array(lengths=True)
    if isinstance(x, _da.Array):
        return x
    raise _core.InvalidArgumentError(
        f"{name}: a dask array, dataframe or series, got {type(x).__name__}")


def ingest(shards: Sequence[str], keys: Any, vectors: Any, *, collection: str = "default",
           on_conflict: str = "error", client: Optional[Client] = None,
           workers: Optional[Dict[str, Any]] = None) -> List[Dict[str, int]]:
    """Writes vectors (a dask array n x dim, or a dataframe of dim float columns) under keys
    (a dask array or series of n strings) into the shards: row-partition i goes to shard
    i mod len(shards), and each shard is written by one task (one writer per database), partition
    by partition, with EmbeddingCache.ingest (bulk table files for large partitions; keys already
    holding the same vector are not rewritten, so a re-run after a failure is safe). Returns
    each shard's counts (written, unchanged, overwritten, skipped, partitions)."""
    if isinstance(shards, str) or not shards:
        raise _core.InvalidArgumentError("shards: a non-empty list of database directories")
    v = _as_dask_array(vectors, "vectors").astype(np.float32)
    kx = _as_dask_array(keys, "keys")
    if v.ndim != 2 or kx.ndim != 1:
        raise _core.InvalidArgumentError(
            f"vectors must be 2-D (rows x dim) and keys 1-D; got {v.ndim}-D and {kx.ndim}-D")
    if v.shape[0] != kx.shape[0]:
        raise _core.InvalidArgumentError(
            f"{kx.shape[0]} keys but {v.shape[0]} rows of vectors")
    v = v.rechunk({1: v.shape[1]})
    kx = kx.rechunk((v.chunks[0],))
    dim = int(v.shape[1])
    c = _client(client)
    key_blocks = c.compute(list(kx.to_delayed().ravel()))
    vector_blocks = c.compute(list(v.to_delayed().ravel()))
    futures = []
    for s, path in enumerate(shards):
        mine = list(range(s, len(vector_blocks), len(shards)))
        parts = [(key_blocks[i], vector_blocks[i]) for i in mine]
        futures.append(c.submit(_ingest_shard, path, collection, dim, on_conflict, parts,
                                pure=False, workers=(workers or {}).get(path)))
    return c.gather(futures)
