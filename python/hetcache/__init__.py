"""hetcache: an embedding cache and batched similarity search.

    import hetcache, numpy as np
    cache = hetcache.EmbeddingCache(dim=384, path="embeddings.db")
    vectors = cache.get_or_compute(keys, embed_batch)      # embed_batch(missing_keys) -> array
    keys, ids, scores = cache.search(queries, k=10)

    engine = hetcache.SimilarityEngine()
    ids, scores = engine.search(queries, candidates, k=10)  # numpy / torch CPU / DLPack arrays
    compact = engine.compact_set(candidates, hetcache.StorageType.BF16)  # half the bytes
    ids, scores = engine.search(queries, compact, k=10)     # the same answer, bit for bit

float32 C-contiguous inputs are read in place; float16 / float64 and non-contiguous inputs are
converted once. Results are numpy arrays that own the buffers they were computed in. Every call
that works on data releases the GIL.
"""

from ._core import (
    CompactSet,
    ConflictError,
    CorruptionError,
    DimensionMismatchError,
    Error,
    GpuError,
    InternalError,
    InvalidArgumentError,
    Isa,
    Metric,
    Precision,
    ScoreMode,
    SimilarityEngine,
    StorageType,
    StoreUnavailableError,
    Strategy,
    Tier,
    UnsupportedError,
    __version__,
    best_supported_isa,
    content_key,
)
from ._cache import EmbeddingCache
from .embeddings import CachedEmbeddings

__all__ = [
    "CachedEmbeddings",
    "CompactSet",
    "ConflictError",
    "CorruptionError",
    "DimensionMismatchError",
    "EmbeddingCache",
    "Error",
    "GpuError",
    "InternalError",
    "InvalidArgumentError",
    "Isa",
    "Metric",
    "Precision",
    "ScoreMode",
    "SimilarityEngine",
    "StorageType",
    "StoreUnavailableError",
    "Strategy",
    "Tier",
    "UnsupportedError",
    "__version__",
    "best_supported_isa",
    "content_key",
]
