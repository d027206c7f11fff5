"""Features of (user, candidate) pairs for the learned re-ranker. Pure numpy.

The same function builds the training rows (``tastebud.train.ranker``, from arrays) and the
serving rows (the recommender, from vectors fetched off the shards), so the ranker sees in
production exactly what it was trained on.

Per candidate j of a user with recent history H (weights w_h, most recent highest); "z" is
standardised over the request's candidates (mean 0, sd 1), so a ranker trained on one model's
scores (the validation model) means the same on another's (the published model, trained on
more data, whose scores have another scale):
  0 z of the retrieval score [u, 1] . [p_j, b_j] 7 attribute affinity: mean over j's attribute
  1 z of the preference u . p_j                    values of their share in H
  2 z of the prior b_j                           8 release year of j (NaN when unknown)
  3 log(1 + interactions of j)                   9 year of j - mean year of H
    - log(1 + interactions of the top item)     10 log(1 + |H|)
  4 item-kNN: sum_h w_h cos(h, j) / sum_h w_h   11 retrieval rank of j / number of candidates
  5 item-kNN: max_h cos(h, j)                   12 1 if j has interactions, else 0 (a new item:
  6 text similarity: t_j . mean_h t_h              3, 4, 5, 13 and 14 carry no information)
 13 EASE: sum_h B[h, j]                          14 EASE, recency weighted: sum_h w_h B[h, j] / mean_h w_h

cos and B are the co-occurrence and EASE neighbour tables (``train.item_item``), learned from
the training interactions and truncated to each history item's top neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tastebud.index.filters import NO_YEAR

FEATURE_NAMES = ("retrieval_z", "preference_z", "prior_z", "log_popularity_vs_top", "knn_mean", "knn_max",
                 "text_similarity", "attribute_affinity", "year", "year_gap", "log_history", "retrieval_rank",
                 "has_interactions", "ease", "ease_recency")


@dataclass(frozen=True, slots=True)
class NeighbourTable:
    """Row h: the items related to item h (``ids``, int64[n, M], -1 padded) and how strongly
    (``values``, float32[n, M], 0 padded), strongest first."""

    ids: npt.NDArray[np.int64]
    values: npt.NDArray[np.float32]

    @classmethod
    def empty(cls, n_items: int, neighbours: int) -> "NeighbourTable":
        return cls(np.full((n_items, neighbours), -1, dtype=np.int64), np.zeros((n_items, neighbours), np.float32))

    def without(self, items: npt.NDArray[np.bool_]) -> "NeighbourTable":
        """The table with the ``items`` (a mask) removed from every row."""
        gone = (self.ids >= 0) & items[np.maximum(self.ids, 0)]
        return NeighbourTable(np.where(gone, -1, self.ids), np.where(gone, 0.0, self.values).astype(np.float32))

    def sums(self, history: npt.NDArray[np.int64], weights: npt.NDArray[np.float32], n_items: int
             ) -> npt.NDArray[np.float32]:
        """float32[n_items]: sum over history items h of weight_h * (h's value for each item)."""
        out = np.zeros(n_items, dtype=np.float32)
        ids, values = self.ids[history], self.values[history]
        valid = ids >= 0
        np.add.at(out, ids[valid], (values * weights[:, None])[valid])
        return out


@dataclass(frozen=True, slots=True)
class ItemSignals:
    """Per-item data the features need, by global row: popularity, years, the attribute value
    codes of item i as ``codes[code_offsets[i]:code_offsets[i + 1]]``, and the co-occurrence
    (cosine) and EASE neighbour tables learned from the training interactions."""

    popularity: npt.NDArray[np.float32]
    years: npt.NDArray[np.int32]
    code_offsets: npt.NDArray[np.int64]
    codes: npt.NDArray[np.int64]
    n_codes: int
    cooccurrence: NeighbourTable
    ease: NeighbourTable


@dataclass(frozen=True, slots=True)
class UserContext:
    """What is known of the user for one request (history oldest first)."""

    history: npt.NDArray[np.int64]
    history_weights: npt.NDArray[np.float32]
    history_text: npt.NDArray[np.float32]
    user_vector: npt.NDArray[np.float32]


def candidate_features(signals: ItemSignals, context: UserContext, rows: npt.NDArray[np.int64],
                       retrieval_scores: npt.NDArray[np.float32], item_vectors: npt.NDArray[np.float32],
                       text_vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """float32[m, 15] for candidates ``rows`` with their retrieval scores, index vectors
    [p_j, b_j] (float32[m, d+1]) and text vectors (float32[m, t])."""
    m = len(rows)
    out = np.zeros((m, len(FEATURE_NAMES)), dtype=np.float32)
    if m == 0:
        return out
    n_hist = len(context.history)
    out[:, 0] = standardised(retrieval_scores)
    out[:, 1] = standardised(item_vectors[:, :-1] @ context.user_vector)
    out[:, 2] = standardised(item_vectors[:, -1])
    popularity = signals.popularity[rows]
    top = float(signals.popularity.max()) if len(signals.popularity) else 0.0
    out[:, 3] = np.log1p(popularity) - np.log1p(top)
    out[:, 12] = popularity > 0
    if n_hist:
        n_items = len(signals.popularity)
        w = context.history_weights / max(float(context.history_weights.sum()), 1e-9)
        out[:, 4] = signals.cooccurrence.sums(context.history, w, n_items)[rows]
        knn_max = np.zeros(n_items, dtype=np.float32)
        ids, sims = signals.cooccurrence.ids[context.history], signals.cooccurrence.values[context.history]
        valid = ids >= 0
        np.maximum.at(knn_max, ids[valid], sims[valid])
        out[:, 5] = knn_max[rows]
        out[:, 13] = signals.ease.sums(context.history, np.ones(n_hist, np.float32), n_items)[rows]
        out[:, 14] = signals.ease.sums(context.history, (w * n_hist).astype(np.float32), n_items)[rows]
        text_mean = context.history_text.mean(axis=0)
        out[:, 6] = text_vectors @ text_mean
        history_codes, _ = _codes_of(signals, context.history)
        share = np.bincount(history_codes, minlength=signals.n_codes).astype(np.float32) / n_hist
        candidate_codes, lengths = _codes_of(signals, rows)
        sums = np.zeros(m, dtype=np.float32)
        np.add.at(sums, np.repeat(np.arange(m), lengths), share[candidate_codes])
        out[:, 7] = np.where(lengths > 0, sums / np.maximum(lengths, 1), 0.0)
        years = signals.years[context.history]
        known = years != NO_YEAR
        mean_year = float(years[known].mean()) if known.any() else np.nan
    else:
        mean_year = np.nan
    cand_years = signals.years[rows].astype(np.float32)
    cand_years[signals.years[rows] == NO_YEAR] = np.nan
    out[:, 8] = cand_years
    out[:, 9] = cand_years - mean_year
    out[:, 10] = np.log1p(n_hist)
    out[:, 11] = np.arange(m, dtype=np.float32) / m
    return out


def standardised(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(x - mean) / sd over x; zeros when x is constant (or has fewer than two values)."""
    x = np.asarray(x, dtype=np.float64)
    sd = float(x.std()) if len(x) > 1 else 0.0
    return ((x - x.mean()) / sd if sd > 0 else np.zeros(len(x))).astype(np.float32)


def _codes_of(signals: ItemSignals, rows: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """All attribute codes of ``rows`` (concatenated, in row order) and how many each row has."""
    starts = signals.code_offsets[rows]
    lengths = signals.code_offsets[rows + 1] - starts
    positions = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
    return signals.codes[positions], lengths
