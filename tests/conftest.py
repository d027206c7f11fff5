"""Fixtures shared by the unit tests: a seeded ``rng`` and a deterministic fake encoder.

``FakeEncoder`` implements the ``Encoder`` protocol of ``tastebud.embed.encoder`` without a
model: each text maps to a random unit vector seeded by the text's sha256, so equal texts give
equal vectors in every process. It records what it was asked to encode, so tests can count
cache misses. Tests reach the class through the ``make_encoder`` fixture rather than importing
this file (several conftest modules share the name ``conftest``).
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import numpy.typing as npt
import pytest

SEED = 20261203


class FakeEncoder:
    """Text -> seeded random unit vector (float32[dimension]); fingerprint ``fake-<dimension>``."""

    def __init__(self, dimension: int = 32, fingerprint: str | None = None, name: str = "fake") -> None:
        self._dimension = dimension
        self._fingerprint = fingerprint or f"fake-{dimension}"
        self._name = name
        self.encoded: list[str] = []  # every text handed to encode_documents, in order
        self.calls = 0  # number of encode_documents calls

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    def vector(self, text: str) -> npt.NDArray[np.float32]:
        """The unit vector of one text (float32[dimension]); the same in every process."""
        seed = int.from_bytes(hashlib.sha256(f"{self._fingerprint}\0{text}".encode()).digest()[:8], "big")
        v = np.random.default_rng(seed).standard_normal(self._dimension)
        return (v / np.linalg.norm(v)).astype(np.float32)

    def _encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self.vector(text)
        return out

    def encode_documents(self, texts: Sequence[str], *, progress: bool = False) -> npt.NDArray[np.float32]:
        self.calls += 1
        self.encoded.extend(texts)
        return self._encode(texts)

    def encode_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._encode(texts)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(SEED)


@pytest.fixture(scope="session")
def make_encoder() -> type[FakeEncoder]:
    """The ``FakeEncoder`` class: ``make_encoder(dimension=64, fingerprint="other")``."""
    return FakeEncoder


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()
