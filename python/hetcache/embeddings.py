"""CachedEmbeddings: any embedding function behind an EmbeddingCache, with the interface LangChain
users know (embed_documents, embed_query and their async forms).

    cache = hetcache.EmbeddingCache(dim=384, path="embeddings.db")
    embeddings = hetcache.CachedEmbeddings(model.encode, cache, model="all-MiniLM-L6-v2")
    vectors = embeddings.embed_documents(texts)   # misses computed in one call, the rest cached

When langchain-core is installed the class is a ``langchain_core.embeddings.Embeddings``, so it
goes wherever LangChain takes one (a vector store, a retriever); without it, it works the same.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, List, Sequence, Union

import numpy as np

from ._cache import EmbeddingCache

try:  # LangChain's interface when it is there; the adapter does not need it
    from langchain_core.embeddings import Embeddings as _Base
except ImportError:  # pragma: no cover - exercised by the test that hides langchain_core
    _Base = object

EmbedFunction = Callable[[List[str]], Any]


class CachedEmbeddings(_Base):  # type: ignore[misc, valid-type]
    """Embeddings of texts, read from ``cache`` when present and computed by ``embed`` when not.

    ``embed`` is a function ``list[str] -> array (len x dim)`` (a model's ``encode``) or an object
    with ``embed_documents`` (a LangChain ``Embeddings``). Texts are keyed by
    ``cache.content_key(model, text)``, so a new model name never reads an old model's vectors.
    Each call computes its distinct missing texts in one batched call of ``embed``; threads
    asking for the same missing text at once share that one computation.
    """

    def __init__(self, embed: Union[EmbedFunction, Any], cache: EmbeddingCache, model: str,
                 ttl: float | None = None) -> None:
        """embed: the function or Embeddings to wrap; cache: where vectors are kept; model: the
        model's name, part of every key; ttl: seconds a computed vector is kept (None: forever)."""
        if hasattr(embed, "embed_documents"):
            self._embed: EmbedFunction = embed.embed_documents
        elif callable(embed):
            self._embed = embed
        else:
            raise TypeError("embed: a function list[str] -> array, or an object with "
                            f"embed_documents; got {type(embed).__name__}")
        if not model:
            raise ValueError("model: a non-empty model name (it is part of every key)")
        self.cache = cache
        self.model = model
        self.ttl = ttl

    def embed_array(self, texts: Sequence[str]) -> np.ndarray:
        """The embeddings of ``texts`` as one float32 array (len(texts) x dim)."""
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}]: a str, got {type(t).__name__}")
        keys = [self.cache.content_key(self.model, t) for t in texts]
        text_of = dict(zip(keys, texts))

        def compute(missing: List[str]) -> np.ndarray:
            return np.asarray(self._embed([text_of[k] for k in missing]), dtype=np.float32)

        return self.cache.get_or_compute(keys, compute, ttl=self.ttl)

    def embed_documents(self, texts: List[str]) -> List[List[float]]:
        """LangChain's form: one list of floats per text."""
        return self.embed_array(texts).tolist()

    def embed_query(self, text: str) -> List[float]:
        """LangChain's form: the embedding of one text."""
        return self.embed_array([text])[0].tolist()

    async def aembed_documents(self, texts: List[str]) -> List[List[float]]:
        """embed_documents on a worker thread: the event loop keeps running meanwhile."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> List[float]:
        """embed_query on a worker thread: the event loop keeps running meanwhile."""
        return await asyncio.to_thread(self.embed_query, text)
