"""The re-ranking chain: eligibility, learned scores, top-k and MMR diversity."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tastebud.server.candidates import Candidates
from tastebud.server.rerank import RerankRequest, RuleReranker, keep_eligible, mmr_order

N_ITEMS = 30


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def candidates(ids, scores, vectors=None) -> Candidates:
    ids = np.asarray(ids, dtype=np.int64)
    if vectors is None:
        vectors = np.eye(len(ids), max(len(ids), 1), dtype=np.float32)
    return Candidates(ids, np.asarray(scores, dtype=np.float32), np.asarray(vectors, dtype=np.float32))


def request(k, drop=(), allowed=None, diversity=0.0, ranker_scores=None) -> RerankRequest:
    return RerankRequest(k=k, drop=np.asarray(drop, dtype=np.int64), allowed=allowed, diversity=diversity,
                         ranker_scores=None if ranker_scores is None else np.asarray(ranker_scores, np.float32))


def test_keep_eligible_drops_seen_filtered_missing_and_duplicates():
    c = candidates([5, 3, -1, 7, 3, 9, 2], [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    allowed = np.ones(N_ITEMS, dtype=bool)
    allowed[9] = False
    assert keep_eligible(c, np.array([7], np.int64), allowed).tolist() == [0, 1, 6]
    assert keep_eligible(c, np.zeros(0, np.int64), None).tolist() == [0, 1, 3, 5, 6]


def test_ranker_scores_replace_retrieval_scores():
    c = candidates([1, 2, 3], [0.8, 0.7, 0.6])
    plain = RuleReranker().rerank(c, request(3))
    assert plain.ids.tolist() == [1, 2, 3]
    np.testing.assert_allclose(plain.scores, [0.8, 0.7, 0.6])
    learned = RuleReranker().rerank(c, request(2, ranker_scores=[-1.0, 2.0, 0.5]))
    assert learned.ids.tolist() == [2, 3]
    np.testing.assert_allclose(learned.scores, [2.0, 0.5])
    dropped = RuleReranker().rerank(c, request(3, drop=[2], ranker_scores=[-1.0, 2.0, 0.5]))
    assert dropped.ids.tolist() == [3, 1]


def test_mmr_without_diversity_is_score_order(rng):
    scores = rng.integers(0, 5, 20).astype(np.float32)  # many ties: broken by position
    vectors = unit(rng.standard_normal((20, 4)))
    expected = sorted(range(20), key=lambda i: (-scores[i], i))
    assert mmr_order(scores, vectors, 20, 0.0).tolist() == expected
    assert mmr_order(scores, vectors, 5, 0.0).tolist() == expected[:5]
    assert mmr_order(scores, vectors, 0, 0.5).tolist() == []


def two_clusters(rng):
    """Three near-duplicates of e1 with the best scores, two near-duplicates of e2 below them,
    and, as retrieval hands over, a tail of unrelated candidates scored lower still (relevance
    is the score rescaled over all the candidates)."""
    e1, e2 = np.eye(8, dtype=np.float32)[:2]
    tail = np.eye(8, dtype=np.float32)[2:]
    vectors = unit(np.concatenate([np.stack([e1, e1, e1, e2, e2]), tail]) + 0.01 * rng.standard_normal((11, 8)))
    scores = np.array([0.90, 0.89, 0.88, 0.60, 0.59, 0.10, 0.08, 0.06, 0.04, 0.02, 0.0], dtype=np.float32)
    return scores, vectors


def test_mmr_with_diversity_picks_from_both_clusters(rng):
    scores, vectors = two_clusters(rng)
    assert set(mmr_order(scores, vectors, 2, 0.0).tolist()) == {0, 1}  # relevance only: one cluster
    for diversity in (0.3, 0.5, 0.9):
        order = mmr_order(scores, vectors, 2, diversity).tolist()
        assert order[0] == 0, "the best item is picked first"
        assert order[1] in (3, 4), f"diversity {diversity} picked {order}"
        full = mmr_order(scores, vectors, len(scores), diversity).tolist()
        assert sorted(full) == list(range(len(scores)))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), log_scale=st.integers(-6, 6), shift=st.integers(-1000, 1000),
       diversity=st.sampled_from([0.2, 0.5, 0.9]))
def test_mmr_ignores_the_scale_of_scores_and_vectors(seed, log_scale, shift, diversity):
    """Relevance is rescaled to 0..1 and similarity is a cosine: an affine change of the scores
    (a model with other score units) or of the vectors' lengths ([p_j] of a learned model are not
    unit) leaves the order unchanged. Powers of two and integers keep the arithmetic exact, so
    equality is exact too."""
    rng = np.random.default_rng(seed)
    scores = rng.permutation(20).astype(np.float32)
    vectors = unit(rng.standard_normal((20, 6)))
    lengths = np.float32(2.0) ** rng.integers(-3, 4, (20, 1)).astype(np.float32)
    expected = mmr_order(scores, vectors, 10, diversity).tolist()
    changed = (np.float32(2.0 ** log_scale) * scores + np.float32(shift)).astype(np.float32)
    assert mmr_order(changed, vectors * lengths, 10, diversity).tolist() == expected


def test_mmr_of_equal_scores_is_pure_diversity():
    """No spread in the scores: every candidate is equally relevant and MMR only spreads out."""
    vectors = unit(np.array([[1, 0], [1, 0.01], [0, 1], [-1, 0.02]], dtype=np.float32))
    assert mmr_order(np.full(4, 0.5, np.float32), vectors, 3, 0.5).tolist() == [0, 3, 2]


def test_reranker_with_diversity_spreads_the_top(rng):
    scores, vectors = two_clusters(rng)
    c = Candidates(np.array([10, 11, 12, 20, 21], np.int64), scores, vectors)
    assert RuleReranker().rerank(c, request(2)).ids.tolist() == [10, 11]
    top = RuleReranker().rerank(c, request(2, diversity=0.5)).ids.tolist()
    assert top[0] == 10 and top[1] in (20, 21), top


@st.composite
def rerank_cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    m = draw(st.integers(0, 40))
    ids = rng.integers(-1, N_ITEMS, m)
    scores = rng.standard_normal(m).astype(np.float32)
    vectors = unit(rng.standard_normal((m, 4))) if m else np.zeros((0, 4), np.float32)
    drop = rng.choice(N_ITEMS, draw(st.integers(0, 10)), replace=False)
    allowed = rng.random(N_ITEMS) < 0.7 if draw(st.booleans()) else None
    learned = rng.standard_normal(m).astype(np.float32) if draw(st.booleans()) else None
    diversity = draw(st.sampled_from([0.0, 0.0, 0.2, 0.7, 1.0]))
    req = RerankRequest(k=draw(st.integers(0, 25)), drop=drop.astype(np.int64), allowed=allowed,
                        diversity=diversity, ranker_scores=learned)
    return Candidates(ids.astype(np.int64), scores, vectors), req


@settings(max_examples=50, deadline=None)
@given(case=rerank_cases())
def test_reranker_invariants(case):
    c, req = case
    out = RuleReranker().rerank(c, req)
    ids = out.ids.tolist()

    # What may come back, worked out here from the request alone.
    first_position: dict[int, int] = {}
    for position, item in enumerate(c.ids.tolist()):
        first_position.setdefault(item, position)
    eligible = {i for i in first_position if i >= 0 and i not in set(req.drop.tolist())
                and (req.allowed is None or req.allowed[i])}

    assert set(ids) <= eligible
    assert len(ids) == len(set(ids)), "duplicates"
    assert len(ids) == min(req.k, len(eligible))
    source = c.scores if req.ranker_scores is None else req.ranker_scores
    final = {i: source[first_position[i]] for i in eligible}
    np.testing.assert_allclose(out.scores, [final[i] for i in ids], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out.vectors, c.vectors[[first_position[i] for i in ids]].reshape(len(ids), 4))
    if req.diversity == 0:
        assert np.all(np.diff(out.scores) <= 0), "not sorted by final score"
        best = sorted(eligible, key=lambda i: (-final[i], first_position[i]))[: req.k]
        assert ids == best
