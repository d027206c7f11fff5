"""Second stage: turn retrieved candidates into the final, ordered list.

``Reranker`` is the seam; ``RuleReranker`` is the chain the server runs: drop seen, excluded
and filtered items, take the learned ranker's scores when it ran (``server/learned_ranker.py``
computes them; popularity is already in the retrieval score as the item prior b_j), then the
top k, by MMR when diversity is asked. All pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from tastebud.server.candidates import Candidates


@dataclass(frozen=True, slots=True)
class RerankRequest:
    """What the re-ranker may use besides the candidates.

    ``drop`` are global ids never to return (seen items, the query item); ``allowed`` is
    bool[n_items] from the filter (None: no filter); ``diversity`` in 0..1;
    ``ranker_scores`` (float32[m], aligned with the candidates), when a learned ranker ran,
    replace the retrieval scores.
    """

    k: int
    drop: npt.NDArray[np.int64]
    allowed: npt.NDArray[np.bool_] | None
    diversity: float = 0.0
    ranker_scores: npt.NDArray[np.float32] | None = None


class Reranker(Protocol):
    def rerank(self, candidates: Candidates, request: RerankRequest) -> Candidates:
        """At most ``request.k`` candidates, best first, with their final scores."""
        ...


def keep_eligible(candidates: Candidates, drop: npt.NDArray[np.int64], allowed: npt.NDArray[np.bool_] | None
                  ) -> npt.NDArray[np.int64]:
    """Positions of candidates that are not dropped, pass the filter, and are not duplicates."""
    ok = ~np.isin(candidates.ids, drop) & (candidates.ids >= 0)
    if allowed is not None:
        ok &= allowed[np.maximum(candidates.ids, 0)]
    positions = np.flatnonzero(ok)
    _, first = np.unique(candidates.ids[positions], return_index=True)
    return positions[np.sort(first)].astype(np.int64)


def mmr_order(scores: npt.NDArray[np.float32], vectors: npt.NDArray[np.float32], k: int, diversity: float
              ) -> npt.NDArray[np.int64]:
    """Maximal marginal relevance: greedily pick argmax (1-λ)·relevance - λ·max-similarity-to-picked.

    λ = ``diversity``; 0 gives plain score order. Relevance is the score rescaled to 0..1 over
    the candidates and similarity the cosine of the vectors, so the trade-off means the same
    whatever the scale of a model's scores. The first pick is always the best-scored item
    (even at λ = 1). Returns positions, at most k.
    """
    n = len(scores)
    k = min(k, n)
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    if diversity <= 0:
        return np.lexsort((np.arange(n), -scores))[:k].astype(np.int64)
    spread = float(scores.max() - scores.min())
    relevance = (scores - scores.min()) / spread if spread > 0 else np.zeros(n, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms > 0, norms, 1.0)
    similarity = unit @ unit.T
    picked: list[int] = []
    closest = np.full(n, -np.inf, dtype=np.float32)
    available = np.ones(n, dtype=bool)
    for step in range(k):
        if step == 0:  # nothing picked yet: the most relevant item opens the list
            value = relevance.astype(np.float64)
        else:
            value = (1.0 - diversity) * relevance - diversity * closest
        value = np.where(available, value, -np.inf)
        best = int(np.argmax(value))
        picked.append(best)
        available[best] = False
        closest = np.maximum(closest, similarity[best])
    return np.array(picked, dtype=np.int64)


class RuleReranker:
    """Seen/filter removal, learned scores when given, then top-k or MMR."""

    def rerank(self, candidates: Candidates, request: RerankRequest) -> Candidates:
        if request.ranker_scores is not None:
            candidates = Candidates(candidates.ids, request.ranker_scores.astype(np.float32), candidates.vectors)
        eligible = candidates.take(keep_eligible(candidates, request.drop, request.allowed))
        scores = eligible.scores
        order = mmr_order(scores.astype(np.float32), eligible.vectors, request.k, request.diversity)
        return eligible.take(order, scores.astype(np.float32))
