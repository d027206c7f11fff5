"""The learned re-ranking step at serving time: LightGBM scores over candidate features.

Trained by ``tastebud.train.ranker`` at build time and stored in the index (``ranker.txt``,
LightGBM's own text format, and ``neighbours.npz``); features come from
``server.features.candidate_features``, the function training used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from tastebud.index.items import ItemStore
from tastebud.server.features import FEATURE_NAMES, ItemSignals


class LearnedRanker:
    """``for_new_items``: also re-order lists of new items only (validated on pseudo-cold
    groups at build time); otherwise those keep their retrieval order."""

    def __init__(self, booster, signals: ItemSignals, for_new_items: bool = False) -> None:
        if list(booster.feature_name()) != list(FEATURE_NAMES):
            from tastebud.errors import IndexIntegrityError

            raise IndexIntegrityError(f"ranker was trained on features {booster.feature_name()}, "
                                      f"this server computes {list(FEATURE_NAMES)}; rebuild the index")
        self._booster = booster
        self.signals = signals
        self.for_new_items = for_new_items

    @classmethod
    def load(cls, model_path: Path, neighbours_path: Path, items: ItemStore, for_new_items: bool = False
             ) -> "LearnedRanker":
        import lightgbm

        from tastebud.train.ranker import attribute_codes

        booster = lightgbm.Booster(model_str=model_path.read_text(encoding="utf-8"))
        with np.load(neighbours_path, allow_pickle=False) as data:
            ids, sims = data["ids"].astype(np.int64), data["sims"].astype(np.float32)
        offsets, codes, n_codes = attribute_codes(items.attributes, len(items))
        return cls(booster, ItemSignals(items.popularity, items.years, offsets, codes, n_codes, ids, sims),
                   for_new_items)

    def score(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """float32[m]: higher is better."""
        if len(features) == 0:
            return np.zeros(0, dtype=np.float32)
        return self._booster.predict(features, num_threads=1).astype(np.float32)
