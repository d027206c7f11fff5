"""A cache of trained retrieval models, keyed by exactly what they were trained on.

The key is a sha256 over the training sequences, the text embeddings (and any other item
inputs: ``train.item_features``) and the training configuration. Any difference in the
interactions (one held-out event more or less) gives another key, so an evaluation on a
train-only split can never reuse a model that saw the test period. Entries are plain ``.npz``
archives plus a JSON of their metadata.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)


def training_key(sequences_fingerprint: str, text_vectors: npt.NDArray[np.float32], config: dict[str, Any],
                 item_features: npt.NDArray[np.float32] | None = None) -> str:
    digest = hashlib.sha256()
    digest.update(sequences_fingerprint.encode())
    digest.update(np.ascontiguousarray(text_vectors, dtype=np.float32).tobytes())
    if item_features is not None:
        digest.update(np.array(item_features.shape, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(item_features, dtype=np.float32).tobytes())
    digest.update(json.dumps(config, sort_keys=True).encode())
    return digest.hexdigest()


class ModelCache:
    def __init__(self, root: Path) -> None:
        self._root = Path(root)

    def get(self, key: str) -> tuple[dict[str, npt.NDArray], dict[str, Any]] | None:
        arrays_path, meta_path = self._root / f"{key}.npz", self._root / f"{key}.json"
        if not (arrays_path.exists() and meta_path.exists()):
            return None
        try:
            with np.load(arrays_path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # a truncated .npz is a BadZipFile
            log.warning("ignoring damaged model cache entry %s: %s", key[:12], exc)
            return None
        log.info("reusing the trained model cached for this exact training data (%s)", key[:12])
        return arrays, meta

    def put(self, key: str, arrays: dict[str, npt.NDArray], meta: dict[str, Any]) -> None:
        self._root.mkdir(parents=True, exist_ok=True)
        tmp = self._root / f".{key}.tmp.npz"
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, self._root / f"{key}.npz")
        meta_tmp = self._root / f".{key}.tmp.json"
        meta_tmp.write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(meta_tmp, self._root / f"{key}.json")
