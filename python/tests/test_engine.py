"""SimilarityEngine from Python: the same answers as numpy, every tier, bad input named."""

import numpy as np
import pytest

import hetcache
from conftest import random_rows


def numpy_topk(q, c, k, metric):
    if metric == hetcache.Metric.COSINE:
        qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        cn = c / np.linalg.norm(c, axis=1, keepdims=True)
        s = qn @ cn.T
    elif metric == hetcache.Metric.DOT:
        s = q @ c.T
    else:
        s = -((q[:, None, :] - c[None, :, :]) ** 2).sum(-1)
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(s, order, axis=1)


@pytest.mark.parametrize("metric", [hetcache.Metric.DOT, hetcache.Metric.COSINE, hetcache.Metric.L2])
@pytest.mark.parametrize("tier", [None, hetcache.Tier.SEQUENTIAL, hetcache.Tier.CPU])
def test_search_matches_numpy(rng, metric, tier):
    c = random_rows(rng, 3000, 96)
    q = random_rows(rng, 17, 96)
    ids, scores = hetcache.SimilarityEngine().search(q, c, k=10, metric=metric, tier=tier)
    assert ids.shape == (17, 10) and ids.dtype == np.int64
    assert scores.shape == (17, 10) and scores.dtype == np.float32
    want_ids, want_scores = numpy_topk(q.astype(np.float64), c.astype(np.float64), 10, metric)
    np.testing.assert_array_equal(ids, want_ids)
    expected = -want_scores if metric == hetcache.Metric.L2 else want_scores
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-4)


def test_scores_matrix(rng):
    c = random_rows(rng, 1001, 40)  # 1001 columns: rows padded to 64 bytes, a strided view
    q = random_rows(rng, 5, 40)
    s = hetcache.SimilarityEngine().scores(q, c)
    assert s.shape == (5, 1001)
    np.testing.assert_allclose(s, q @ c.T, rtol=1e-5, atol=1e-5)


def test_one_vector_is_one_query(rng):
    c = random_rows(rng, 200, 16)
    engine = hetcache.SimilarityEngine()
    ids, _ = engine.search(c[3], c, k=1, metric=hetcache.Metric.COSINE)
    assert ids.tolist() == [[3]]
    # converted ones too: a float64 vector, a list of floats
    assert engine.search(c[3].astype(np.float64), c, k=1)[0].tolist() == [[3]]
    assert engine.search([float(x) for x in c[3]], c, k=1)[0].tolist() == [[3]]


def test_k_larger_than_candidates_gives_every_candidate(rng):
    c = random_rows(rng, 7, 8)
    ids, scores = hetcache.SimilarityEngine().search(c[:2], c, k=100)
    assert ids.shape == (2, 7)
    assert sorted(ids[0]) == list(range(7))


def test_nan_scores_rank_after_every_number(rng):
    c = random_rows(rng, 64, 8)
    c[5, 0] = np.nan
    q = random_rows(rng, 1, 8)
    ids, scores = hetcache.SimilarityEngine().search(q, c, k=64, metric=hetcache.Metric.DOT)
    assert ids[0, -1] == 5 and np.isnan(scores[0, -1])
    assert not np.isnan(scores[0, :-1]).any()


def test_ties_break_by_lower_id(rng):
    row = random_rows(rng, 1, 16)
    c = np.repeat(row, 50, axis=0)
    ids, _ = hetcache.SimilarityEngine().search(row, c, k=10, metric=hetcache.Metric.DOT)
    assert list(ids[0]) == list(range(10))


def test_dimension_mismatch_is_named():
    e = hetcache.SimilarityEngine()
    with pytest.raises(hetcache.DimensionMismatchError, match="dim 8"):
        e.search(np.ones((2, 8), np.float32), np.ones((4, 9), np.float32), k=1)


def test_negative_k_is_refused_not_wrapped():
    with pytest.raises(hetcache.InvalidArgumentError, match="k = -1"):
        hetcache.SimilarityEngine().search(np.ones((1, 4), np.float32), np.ones((4, 4), np.float32), k=-1)


def test_non_numeric_input_is_an_error():
    with pytest.raises(hetcache.InvalidArgumentError, match="candidates"):
        hetcache.SimilarityEngine().search(np.ones((1, 4), np.float32), [["a", "b"]], k=1)
    with pytest.raises(hetcache.InvalidArgumentError, match="2-D"):
        hetcache.SimilarityEngine().search(np.ones((1, 4), np.float32), np.ones((2, 2, 4)), k=1)


def test_the_gpu_tier_is_absent_with_a_reason_or_runs():
    e = hetcache.SimilarityEngine()
    stats = e.gpu_stats()
    if not e.gpu_available:
        assert stats["reason"]
        with pytest.raises(hetcache.UnsupportedError):
            e.search(np.ones((1, 4), np.float32), np.ones((4, 4), np.float32), k=1,
                     tier=hetcache.Tier.GPU)
    else:
        ids, _ = e.search(np.ones((1, 4), np.float32), np.eye(4, dtype=np.float32), k=1,
                          tier=hetcache.Tier.GPU)
        assert ids.shape == (1, 1)


def test_errors_are_one_class_per_code():
    assert issubclass(hetcache.InvalidArgumentError, hetcache.Error)
    assert issubclass(hetcache.InvalidArgumentError, ValueError)
    assert issubclass(hetcache.StoreUnavailableError, ConnectionError)
    assert hetcache.ConflictError.code == "Conflict"
    codes = {cls.code for cls in (hetcache.InvalidArgumentError, hetcache.DimensionMismatchError,
                                  hetcache.UnsupportedError, hetcache.CorruptionError,
                                  hetcache.StoreUnavailableError, hetcache.GpuError,
                                  hetcache.ConflictError, hetcache.InternalError)}
    assert len(codes) == 8


def test_isa_choice(rng):
    c = random_rows(rng, 500, 32)
    want, _ = hetcache.SimilarityEngine(isa=hetcache.Isa.SCALAR).search(c[:4], c, k=5)
    got, _ = hetcache.SimilarityEngine().search(c[:4], c, k=5)
    np.testing.assert_array_equal(want, got)


@pytest.mark.parametrize("metric", [hetcache.Metric.DOT, hetcache.Metric.COSINE, hetcache.Metric.L2])
def test_a_candidate_set_gives_the_arrays_results_bit_for_bit(rng, metric):
    engine = hetcache.SimilarityEngine()
    c = random_rows(rng, 5000, 100)  # 400-byte rows: the set pads them to 448
    q = random_rows(rng, 9, 100)
    cset = engine.candidate_set(c)
    want_ids, want_scores = engine.search(q, c, k=20, metric=metric)
    del c  # the set owns its copy
    got_ids, got_scores = engine.search(q, cset, k=20, metric=metric)
    np.testing.assert_array_equal(got_ids, want_ids)
    np.testing.assert_array_equal(got_scores, want_scores)
    assert cset.rows == 5000 and cset.dim == 100
    view = cset.array
    assert view.shape == (5000, 100) and not view.flags.writeable
    assert view.ctypes.data % 64 == 0 and view.strides[0] % 64 == 0
    np.testing.assert_allclose(engine.scores(q, cset), q @ view.T, rtol=1e-5, atol=1e-5)
