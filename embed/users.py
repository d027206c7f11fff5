"""User vectors from histories: a recency-weighted mean, blended with priors for cold users.

Pure functions on numpy arrays, shared by the server (per request) and by offline evaluation,
so both rank with exactly the same vector.

Recency weighting: the most recent interaction has weight 1 and the weight halves every
``half_life`` interactions further back (default 20: the 21st most recent counts half).
Counting interactions rather than seconds lets a caller-sent history (ids only, no times)
weigh the same way as the stored one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tastebud.errors import InvalidInputError


@dataclass(frozen=True, slots=True)
class UserVectorConfig:
    """How histories become vectors.

    ``prior_strength`` is the number of interactions at which the personal vector and the
    popularity prior weigh the same: a user with n interactions gets n / (n + prior_strength)
    of the personal vector. ``taste_weight`` is the weight of a free-text taste beside them.
    """

    half_life: float = 20.0
    prior_strength: float = 2.0
    taste_weight: float = 1.0

    def __post_init__(self) -> None:
        if not self.half_life > 0:
            raise InvalidInputError(f"half_life must be > 0, got {self.half_life}")
        if self.prior_strength < 0:
            raise InvalidInputError(f"prior_strength must be >= 0, got {self.prior_strength}")
        if self.taste_weight < 0:
            raise InvalidInputError(f"taste_weight must be >= 0, got {self.taste_weight}")


def recency_weights(n: int, half_life: float) -> npt.NDArray[np.float32]:
    """float32[n]: weight of each history position, oldest first, the last one 1.0."""
    age = np.arange(n - 1, -1, -1, dtype=np.float64)
    return np.power(0.5, age / half_life).astype(np.float32)


def normalize(vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Unit-length copy of ``vector``; the zero vector stays zero."""
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else vector.astype(np.float32)


def history_vector(item_vectors: npt.NDArray[np.float32], half_life: float,
                   weights: npt.NDArray[np.float32] | None = None) -> npt.NDArray[np.float32]:
    """Recency-weighted mean of a history's item vectors (float32[n, d], oldest first), normalised.

    ``weights`` (float32[n]) multiply the recency weights, e.g. a play counts more than a view.
    An empty history gives the zero vector.
    """
    n, d = item_vectors.shape
    if n == 0:
        return np.zeros(d, dtype=np.float32)
    w = recency_weights(n, half_life)
    if weights is not None:
        w = w * weights.astype(np.float32)
    return normalize(w @ item_vectors)


def blend_user_vector(personal: npt.NDArray[np.float32], n_history: int,
                      prior: npt.NDArray[np.float32], taste: npt.NDArray[np.float32] | None,
                      config: UserVectorConfig) -> npt.NDArray[np.float32]:
    """The query vector of a user: personal taste, shifting from an anchor as history grows.

    ``personal`` comes from :func:`history_vector`; the anchor is the user's stated ``taste``
    (an encoded free text, unit vector) when given, else the popularity ``prior`` (unit
    vector). The personal share is n / (n + prior_strength). With both a history and a taste,
    the taste is also added with ``taste_weight``, so what a user says keeps counting.
    """
    alpha = n_history / (n_history + config.prior_strength) if n_history > 0 else 0.0
    anchor = taste if taste is not None else prior
    mixed = alpha * personal + (1.0 - alpha) * anchor
    if taste is not None and n_history > 0:
        mixed = normalize(mixed) + config.taste_weight * taste
    return normalize(mixed)


def popularity_weight(n_history: int, config: UserVectorConfig) -> float:
    """How much item popularity counts in scoring: 1 for a cold user, shrinking with history."""
    return config.prior_strength / (n_history + config.prior_strength) if config.prior_strength > 0 else 0.0
