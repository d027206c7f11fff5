"""Validation inside the training data: does the model beat popularity on held-out events?

The last 20% of each user's training sequence (users with at least 5 items) is held out,
the model is trained on the rest, and NDCG@10 / Recall@10 over the held-out items are
compared with a popularity ranking of the same prefix. Held-out data never comes from the
evaluation's test period: this runs on whatever the build was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import numpy.typing as npt

from tastebud.evaluate.metrics import list_metrics
from tastebud.train.sequences import Sequences

K = 10


@dataclass(frozen=True, slots=True)
class Holdout:
    prefix: Sequences
    targets: dict[int, npt.NDArray[np.int64]]


def holdout_split(seqs: Sequences, fraction: float = 0.2, min_length: int = 5) -> Holdout:
    """Per user: the prefix to train on and the held-out tail (users with >= min_length items)."""
    items, offsets, targets = [], [0], {}
    for u in range(len(seqs)):
        s = seqs.of(u)
        n_out = max(1, round(fraction * len(s))) if len(s) >= min_length else 0
        items.append(s[: len(s) - n_out])
        offsets.append(offsets[-1] + len(s) - n_out)
        if n_out:
            targets[u] = s[len(s) - n_out:]
    prefix = Sequences(seqs.user_ids, np.array(offsets, dtype=np.int64),
                       np.concatenate(items) if items else np.zeros(0, np.int64), seqs.n_items)
    return Holdout(prefix, targets)


def ranking_metrics(score: Callable[[int, npt.NDArray[np.int64]], npt.NDArray[np.float32]], holdout: Holdout
                    ) -> dict[str, float]:
    """Mean NDCG@10 and Recall@10 over held-out users; ``score(user, history)`` scores all items."""
    ndcg, recall = [], []
    for u, target in holdout.targets.items():
        history = holdout.prefix.of(u)
        scores = np.array(score(u, history), dtype=np.float64)
        scores[history] = -np.inf
        top = np.argsort(-scores, kind="stable")[:K]
        user_recall, user_ndcg = list_metrics(top.tolist(), set(target.tolist()), K)
        recall.append(user_recall)
        ndcg.append(user_ndcg)
    return {"ndcg@10": float(np.mean(ndcg)) if ndcg else 0.0, "recall@10": float(np.mean(recall)) if recall else 0.0,
            "users": len(ndcg)}


def popularity_scores(prefix: Sequences) -> npt.NDArray[np.float32]:
    return np.bincount(prefix.items, minlength=prefix.n_items).astype(np.float32)
