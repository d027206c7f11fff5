"""The learned re-ranking step at serving time: LightGBM scores over candidate features.

Trained by ``tastebud.train.ranker`` at build time and stored in the index (``ranker.txt``,
LightGBM's own text format, and ``neighbours.npz``); features come from
``server.features.candidate_features``, the function training used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from tastebud.errors import IndexIntegrityError
from tastebud.index.items import ItemStore
from tastebud.server.features import FEATURE_NAMES, ItemSignals, NeighbourTable

TABLES = ("cooccurrence", "ease")  # ItemSignals' neighbour tables, as stored in neighbours.npz
NEIGHBOUR_ARRAYS = tuple(f"{name}_{part}" for name in TABLES for part in ("ids", "values"))


def write_neighbour_tables(path: Path, signals: dict[str, NeighbourTable]) -> None:
    """``neighbours.npz``: each of ``TABLES`` as ``<name>_ids`` and ``<name>_values``."""
    arrays = {f"{name}_{part}": getattr(signals[name], part) for name in TABLES for part in ("ids", "values")}
    with open(path, "wb") as f:
        np.savez(f, **arrays)


class LearnedRanker:
    """``for_new_items``: also re-order lists of new items only (validated on pseudo-cold
    groups at build time); otherwise those keep their retrieval order."""

    def __init__(self, booster, signals: ItemSignals, for_new_items: bool = False) -> None:
        if list(booster.feature_name()) != list(FEATURE_NAMES):
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
            missing = sorted(set(NEIGHBOUR_ARRAYS) - set(data.files))
            if missing:
                raise IndexIntegrityError(f"{neighbours_path} lacks {missing}: it was written by an older "
                                          "tastebud; rebuild the index")
            tables = {name: NeighbourTable(data[f"{name}_ids"].astype(np.int64),
                                           data[f"{name}_values"].astype(np.float32))
                      for name in TABLES}
        offsets, codes, n_codes = attribute_codes(items.attributes, len(items))
        return cls(booster, ItemSignals(items.popularity, items.years, offsets, codes, n_codes, **tables),
                   for_new_items)

    def score(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """float32[m]: higher is better."""
        if len(features) == 0:
            return np.zeros(0, dtype=np.float32)
        return self._booster.predict(features, num_threads=1).astype(np.float32)
