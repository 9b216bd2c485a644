"""CachedEmbeddings: one batched call for the misses, keys by model, LangChain's interface."""

import asyncio
import importlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import hetcache

DIM = 24


class CountingModel:
    """A deterministic stand-in for a model: a text's vector is seeded by the text."""

    def __init__(self):
        self.calls = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return np.stack([np.random.default_rng(abs(hash(t)) % (1 << 32)).uniform(-1, 1, DIM)
                         for t in texts]).astype(np.float32)


def test_misses_are_computed_in_one_call_and_then_cached():
    model = CountingModel()
    emb = hetcache.CachedEmbeddings(model, hetcache.EmbeddingCache(DIM), model="m1")
    first = emb.embed_documents(["a", "b", "a", "c"])
    assert model.calls == [["a", "b", "c"]]
    assert first[0] == first[2] and len(first) == 4 and len(first[0]) == DIM
    again = emb.embed_documents(["c", "a"])
    assert len(model.calls) == 1
    assert again == [first[3], first[0]]
    assert emb.embed_query("b") == first[1]
    assert len(model.calls) == 1


def test_another_model_name_never_reads_the_first_models_vectors():
    model = CountingModel()
    cache = hetcache.EmbeddingCache(DIM)
    hetcache.CachedEmbeddings(model, cache, model="m1").embed_documents(["a"])
    hetcache.CachedEmbeddings(model, cache, model="m2").embed_documents(["a"])
    assert model.calls == [["a"], ["a"]]


def test_vectors_survive_a_restart_through_rocksdb(tmp_path):
    model = CountingModel()
    with hetcache.EmbeddingCache(DIM, str(tmp_path / "db")) as cache:
        want = hetcache.CachedEmbeddings(model, cache, model="m").embed_array(["x", "y"])
    with hetcache.EmbeddingCache(DIM, str(tmp_path / "db")) as cache:
        got = hetcache.CachedEmbeddings(model, cache, model="m").embed_array(["x", "y"])
    assert len(model.calls) == 1
    np.testing.assert_array_equal(got, want)


def test_async_forms_leave_the_loop_running():
    model = CountingModel()
    emb = hetcache.CachedEmbeddings(model, hetcache.EmbeddingCache(DIM), model="m")

    async def main():
        ticks = 0
        stop = False

        async def ticker():
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0)

        t = asyncio.create_task(ticker())
        docs = await asyncio.gather(*(emb.aembed_documents([f"t{i}", "shared"]) for i in range(50)))
        query = await emb.aembed_query("shared")
        stop = True
        await t
        return docs, query, ticks

    docs, query, ticks = asyncio.run(main())
    assert all(d[1] == query for d in docs)
    assert ticks > 0
    assert sum(len(c) for c in model.calls) == 51  # every distinct text computed once


def test_bad_texts_and_results_are_named():
    emb = hetcache.CachedEmbeddings(lambda texts: np.ones((len(texts), DIM + 1)),
                                    hetcache.EmbeddingCache(DIM), model="m")
    with pytest.raises(hetcache.DimensionMismatchError, match="dimension 24"):
        emb.embed_documents(["a"])
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        emb.embed_documents(["a", 3])
    with pytest.raises(TypeError, match="embed"):
        hetcache.CachedEmbeddings(42, hetcache.EmbeddingCache(DIM), model="m")


def test_it_is_a_langchain_embeddings_and_wraps_one():
    lc = pytest.importorskip("langchain_core.embeddings")

    class Inner(lc.Embeddings):
        calls = 0

        def embed_documents(self, texts):
            Inner.calls += 1
            return [[float(len(t))] * DIM for t in texts]

        def embed_query(self, text):
            return self.embed_documents([text])[0]

    emb = hetcache.CachedEmbeddings(Inner(), hetcache.EmbeddingCache(DIM), model="inner")
    assert isinstance(emb, lc.Embeddings)
    assert emb.embed_documents(["ab", "abc"])[1][0] == 3.0
    assert emb.embed_query("ab")[0] == 2.0
    assert Inner.calls == 1


def test_it_works_without_langchain_installed():
    # A fresh interpreter in which langchain_core cannot be imported.
    code = textwrap.dedent("""
        import sys
        sys.modules["langchain_core"] = None
        import numpy as np, hetcache
        emb = hetcache.CachedEmbeddings(lambda t: np.ones((len(t), 4)), hetcache.EmbeddingCache(4), "m")
        assert emb.embed_query("x") == [1.0] * 4
        assert type(emb).__mro__[1] is object
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
