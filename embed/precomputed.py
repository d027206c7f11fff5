"""Item vectors computed elsewhere (a batch job, a bigger GPU, a benchmark): read and check them.

``tastebud build --vectors FILE`` skips the encoder for documents and takes the vectors from an
``.npz`` holding ``ids`` (item ids, str) and ``vectors`` (float32[n, d], L2-normalised, from the
same model the server encodes queries with). Every catalog item must have a row; rows for items
not in the catalog are ignored. Anything else is refused with the id or row named.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import numpy.typing as npt

from tastebud.errors import InvalidInputError

log = logging.getLogger(__name__)

NORM_TOLERANCE = 1e-3


def load_precomputed_vectors(path: Path, item_ids: Sequence[str], dimension: int) -> npt.NDArray[np.float32]:
    """float32[len(item_ids), dimension]: row i is ``item_ids[i]``'s vector from ``path``."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "ids" not in data or "vectors" not in data:
                raise InvalidInputError(f"{path}: needs arrays 'ids' and 'vectors', has {sorted(data.files)}")
            ids, vectors = data["ids"].astype(str), data["vectors"]
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{path}: not a readable .npz of ids and vectors ({exc})") from exc
    if vectors.ndim != 2 or len(vectors) != len(ids):
        raise InvalidInputError(f"{path}: 'vectors' must be [len(ids), d], got {vectors.shape} for {len(ids)} ids")
    if vectors.shape[1] != dimension:
        raise InvalidInputError(f"{path}: vectors are {vectors.shape[1]}-d, the model encodes {dimension}-d")
    row_of: dict[str, int] = {}
    for row, item_id in enumerate(ids.tolist()):
        if row_of.setdefault(item_id, row) != row:
            raise InvalidInputError(f"{path}: item id {item_id!r} appears twice (rows {row_of[item_id]} and {row})")
    missing = [i for i in item_ids if i not in row_of]
    if missing:
        raise InvalidInputError(f"{path}: no vector for {len(missing)} catalog item(s), first {missing[0]!r}")
    rows = np.fromiter((row_of[i] for i in item_ids), dtype=np.int64, count=len(item_ids))
    out = np.ascontiguousarray(vectors[rows], dtype=np.float32)
    norms = np.linalg.norm(out, axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (np.abs(norms - 1.0) > NORM_TOLERANCE))
    if len(bad):
        r = int(bad[0])
        raise InvalidInputError(f"{path}: the vector of item {item_ids[r]!r} (row {int(rows[r])}) has norm "
                                f"{norms[r]:.4g}; vectors must be finite and L2-normalised")
    if len(ids) > len(item_ids):
        log.info("%s: %d vectors for items not in the catalog ignored", path, len(ids) - len(item_ids))
    return out
