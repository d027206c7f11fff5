"""Candidates: what the first stage (retrieval) hands to the second (re-ranking)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Candidates:
    """Retrieved items: global ids int64[m], retrieval scores float32[m], unit vectors float32[m, d]."""

    ids: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float32]
    vectors: npt.NDArray[np.float32]

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, positions: npt.NDArray[np.int64], scores: npt.NDArray[np.float32] | None = None) -> "Candidates":
        return Candidates(self.ids[positions], (self.scores if scores is None else scores)[positions],
                          self.vectors[positions])
