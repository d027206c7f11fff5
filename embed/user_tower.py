"""The user tower at serving time: a user's query vector from their history, in numpy.

Both retrieval models of tastebud share this shape, so the server has one path:

    query = [u, 1]    with u = sum_k w_k v_k / sum_k w_k

over the query-side vectors ``v_k`` of the last ``len(recency_weights)`` history items, where
``recency_weights[0]`` weighs the most recent one. The index holds [p_j, b_j], so
query . item = u . p_j + b_j: preference plus the item's prior. A user without history gets
u = 0 and the prior alone (the popularity ranking); a free-text taste, encoded by the
sentence-transformer and mapped through ``text_projection``, joins the mean as
``taste_weight`` pseudo-items, so it leads for a new user and fades as history grows.

- ``two_tower``: weights, vectors and projection learned (``tastebud.train.two_tower``). An
  ensemble of K of them is K such means side by side, u = [u_1 | ... | u_K], against items
  [p_1 / K | ... | p_K / K, mean of b_j]: the members' mean score, still one search.
- ``content``: text embeddings as both item and query vectors, weights halving every 20
  interactions, u normalised (cosine), b_j = 0.05 x log-popularity scaled to 0..1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt



def recency_weights(n: int, half_life: float) -> npt.NDArray[np.float32]:
    """float32[n]: weight of each history position, oldest first, the last one 1.0, halving
    every ``half_life`` positions back."""
    age = np.arange(n - 1, -1, -1, dtype=np.float64)
    return np.power(0.5, age / half_life).astype(np.float32)


@dataclass(frozen=True, slots=True)
class UserTower:
    """``recency_weights`` is float32[L], or float32[K, L] for an ensemble of K members whose
    query-side vectors are K blocks side by side ([v_1 | ... | v_K], each its own mean)."""

    recency_weights: npt.NDArray[np.float32]
    text_projection: npt.NDArray[np.float32] | None
    normalize: bool
    taste_weight: float

    @property
    def history_length(self) -> int:
        return int(self.recency_weights.shape[-1])

    @property
    def members(self) -> int:
        return 1 if self.recency_weights.ndim == 1 else int(self.recency_weights.shape[0])

    def weights_for(self, n: int) -> npt.NDArray[np.float32]:
        """float32[n]: weights of the last n history items, oldest first (n <= history_length);
        for an ensemble, the members' mean."""
        return self._member_weights(n).mean(axis=0).astype(np.float32)

    def _member_weights(self, n: int) -> npt.NDArray[np.float32]:
        """float32[K, n]: each member's weights of the last n history items, oldest first."""
        return np.atleast_2d(self.recency_weights)[:, :n][:, ::-1].astype(np.float32)

    def user_vector(self, history_vectors: npt.NDArray[np.float32],
                    event_weights: npt.NDArray[np.float32] | None = None,
                    taste: npt.NDArray[np.float32] | None = None) -> npt.NDArray[np.float32]:
        """u (float32[d]) from the query-side vectors of the history (oldest first, at most
        history_length rows) and an optional encoded taste (float32[text_dim])."""
        n, d = history_vectors.shape
        k = self.members
        w = self._member_weights(n)
        if event_weights is not None:
            w = w * event_weights.astype(np.float32)[None, :]
        total = np.einsum("kn,nkd->kd", w, history_vectors.reshape(n, k, d // k))
        mass = w.sum(axis=1)
        if taste is not None:
            projected = taste @ self.text_projection if self.text_projection is not None else taste
            total = total + self.taste_weight * projected.astype(np.float32).reshape(k, d // k)
            mass = mass + self.taste_weight
        u = np.divide(total, mass[:, None], out=np.zeros_like(total), where=mass[:, None] > 0)
        u = u.reshape(d).astype(np.float32)
        if self.normalize:
            norm = float(np.linalg.norm(u))
            u = u / norm if norm > 0 else u
        return u.astype(np.float32)

    def query(self, user_vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """[u, 1]: the ANN query for the index vectors [p_j, b_j]."""
        return np.append(user_vector, np.float32(1.0)).astype(np.float32)

    def contributions(self, history_vectors: npt.NDArray[np.float32],
                      item_vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """[m, n]: how much each of n history items adds to each of m items' scores (for
        reasons). ``item_vectors`` are p_j, without the bias column."""
        n, d = history_vectors.shape
        k = self.members
        w = self._member_weights(n)
        per_member = np.einsum("mkd,nkd->kmn", item_vectors.reshape(len(item_vectors), k, d // k),
                               history_vectors.reshape(n, k, d // k))
        return np.einsum("kmn,kn->mn", per_member, w).astype(np.float32)

    def save(self, path: Path) -> None:
        arrays = {"recency_weights": self.recency_weights, "normalize": np.array(self.normalize),
                  "taste_weight": np.array(self.taste_weight, dtype=np.float32)}
        if self.text_projection is not None:
            arrays["text_projection"] = self.text_projection
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: Path) -> "UserTower":
        with np.load(path, allow_pickle=False) as data:
            return cls(data["recency_weights"].astype(np.float32),
                       data["text_projection"].astype(np.float32) if "text_projection" in data else None,
                       bool(data["normalize"]), float(data["taste_weight"]))


CONTENT_HALF_LIFE = 20.0
CONTENT_HISTORY = 200
CONTENT_POPULARITY_WEIGHT = 0.05


def content_tower(taste_weight: float = 1.0) -> UserTower:
    """The untrained tower over text embeddings (see the module docstring)."""
    weights = recency_weights(CONTENT_HISTORY, CONTENT_HALF_LIFE)[::-1].copy()
    return UserTower(weights, None, normalize=True, taste_weight=taste_weight)


def content_index_vectors(text_vectors: npt.NDArray[np.float32], popularity: npt.NDArray[np.float32]
                          ) -> npt.NDArray[np.float32]:
    """[t_j, 0.05 x log-popularity in 0..1]: the content model's index vectors."""
    top = float(np.log1p(popularity.max())) if len(popularity) else 0.0
    prior = np.log1p(popularity) / top if top > 0 else np.zeros(len(popularity))
    return np.concatenate([text_vectors, (CONTENT_POPULARITY_WEIGHT * prior)[:, None]], axis=1).astype(np.float32)
