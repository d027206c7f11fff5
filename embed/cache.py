"""An on-disk embedding cache, so a rebuild re-embeds only new or changed items.

Keyed by the encoder's weights fingerprint (one folder per model) and the sha256 of each
item's text: a changed title or description changes the key, a renamed model folder with the
same weights does not. Plain ``.npy`` files, written whole and swapped in atomically, never
pickled.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import numpy.typing as npt

from tastebud.embed.encoder import Encoder

log = logging.getLogger(__name__)


def text_key(text: str) -> bytes:
    """The cache key of one text: its sha256, hex, as bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest().encode("ascii")


class EmbeddingCache:
    """Vectors of texts already embedded by one model, stored under ``root/<digest of its fingerprint>``."""

    def __init__(self, root: Path, fingerprint: str) -> None:
        # A digest of the whole fingerprint: a prefix of it is not unique ("name:sentence-transformers/
        # all-MiniLM-L6-v2" and "...-L12-v2" share 32 characters) and may hold a "/".
        self._dir = Path(root) / hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()[:32]
        self._keys_path = self._dir / "keys.npy"
        self._vectors_path = self._dir / "vectors.npy"

    def _load(self, dimension: int) -> tuple[npt.NDArray[np.bytes_], npt.NDArray[np.float32]]:
        if not (self._keys_path.exists() and self._vectors_path.exists()):
            return np.zeros(0, dtype="S64"), np.zeros((0, dimension), dtype=np.float32)
        try:
            keys = np.load(self._keys_path, allow_pickle=False)
            vectors = np.load(self._vectors_path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:  # a torn or foreign file: rebuild, do not fail
            log.warning("ignoring unreadable embedding cache at %s: %s", self._dir, exc)
            return np.zeros(0, dtype="S64"), np.zeros((0, dimension), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != dimension or len(keys) != len(vectors):
            log.warning("ignoring embedding cache at %s: shape %s does not match", self._dir, vectors.shape)
            return np.zeros(0, dtype="S64"), np.zeros((0, dimension), dtype=np.float32)
        return keys, vectors

    def _save(self, keys: npt.NDArray[np.bytes_], vectors: npt.NDArray[np.float32]) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        for path, array in ((self._vectors_path, vectors), (self._keys_path, keys)):
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, array, allow_pickle=False)
            os.replace(tmp, path)

    def embed(self, texts: Sequence[str], encoder: Encoder, *, progress: bool = False
              ) -> tuple[npt.NDArray[np.float32], int]:
        """Vectors for ``texts`` (float32[n, d]) and how many had to be newly encoded."""
        keys = np.array([text_key(t) for t in texts], dtype="S64")
        cached_keys, cached_vectors = self._load(encoder.dimension)
        position = {k: i for i, k in enumerate(cached_keys.tolist())}
        rows = np.array([position.get(k, -1) for k in keys.tolist()], dtype=np.int64)
        missing = np.flatnonzero(rows < 0)
        # Identical texts share one encoding.
        unique_missing: dict[bytes, int] = {}
        for i in missing.tolist():
            unique_missing.setdefault(keys[i].tobytes(), i)
        out = np.empty((len(texts), encoder.dimension), dtype=np.float32)
        hit = rows >= 0
        out[hit] = cached_vectors[rows[hit]]
        if unique_missing:
            firsts = list(unique_missing.values())
            fresh = encoder.encode_documents([texts[i] for i in firsts], progress=progress)
            by_key = {keys[i].tobytes(): fresh[j] for j, i in enumerate(firsts)}
            for i in missing.tolist():
                out[i] = by_key[keys[i].tobytes()]
            new_keys = np.array([keys[i] for i in firsts], dtype="S64")
            self._save(np.concatenate([cached_keys, new_keys]), np.concatenate([cached_vectors, fresh]))
        log.info("embedded %d texts: %d from cache, %d new", len(texts), int(hit.sum()), len(unique_missing))
        return out, len(unique_missing)
