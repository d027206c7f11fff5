"""The ONNX backends of ``SentenceTransformerEncoder`` against the torch float32 reference.

Real bundled model, real export (into a temporary cache folder, once per module); no timing
assertions. Skipped when onnxruntime/onnx are not installed.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tastebud.embed import encoder as encoder_module  # noqa: E402
from tastebud.embed.cache import EmbeddingCache  # noqa: E402
from tastebud.embed.encoder import (  # noqa: E402
    INT8_RECIPE,
    SentenceTransformerEncoder,
    backend_for_fingerprint,
    variant_fingerprint,
)
from tastebud.errors import InvalidInputError  # noqa: E402
from tastebud.ingest.config import DatasetConfig  # noqa: E402
from tastebud.ingest.demo import write_demo_data  # noqa: E402
from tastebud.ingest.readers import load_dataset  # noqa: E402

# Lengths from one word to a paragraph, so length sorting really reorders them.
EXTRA = [
    "jazz",
    "late night jazz piano for a rainy evening",
    "Toy Story (1995). Genres: Animation, Children's, Comedy.",
    " ".join(["a long rambling description of a film about a lighthouse keeper and the sea"] * 6),
]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def texts(tmp_path_factory) -> list[str]:
    """40 demo catalogue texts spread over the catalogue, plus a few of other lengths."""
    files = write_demo_data(tmp_path_factory.mktemp("demo"), n_items=400, n_users=5)
    catalog = load_dataset(files.items, files.interactions, DatasetConfig.from_toml(files.config)).catalog
    picked = [catalog.texts[i] for i in range(0, len(catalog.texts), 10)]
    return picked + EXTRA


@pytest.fixture(scope="module")
def torch_encoder() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(backend="torch")


@pytest.fixture(scope="module")
def reference(torch_encoder, texts) -> np.ndarray:
    return torch_encoder.encode_documents(texts)


@pytest.fixture(scope="module")
def onnx_encoder(onnx_cache) -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(backend="onnx", cache_dir=onnx_cache, batch_size=8)


@pytest.fixture(scope="module")
def int8_encoder(onnx_cache) -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(backend="onnx-int8", cache_dir=onnx_cache, batch_size=8)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def test_onnx_float32_reproduces_the_reference_row_by_row(onnx_encoder, texts, reference):
    vectors = onnx_encoder.encode_documents(texts)
    assert vectors.dtype == np.float32 and vectors.shape == reference.shape
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Row i is text i: any mix-up of the length sorting would pair unrelated texts (cosine << 0.99).
    assert cosines(vectors, reference).min() >= 0.9999


def test_int8_agrees_with_the_reference(int8_encoder, texts, reference):
    vectors = int8_encoder.encode_documents(texts)
    assert vectors.dtype == np.float32 and vectors.shape == reference.shape
    agreement = cosines(vectors, reference)
    # int8 kernels differ by CPU (VNNI or not): the minimum over these texts was 0.9914 on one
    # machine and 0.9888 on another. int8 is opt-in for that reason; float32 ONNX, the default,
    # is what holds >= 0.9999 (the test above).
    assert agreement.min() >= 0.985, f"min {agreement.min():.4f}"
    assert agreement.mean() >= 0.993, f"mean {agreement.mean():.4f}"


@pytest.mark.parametrize("which", ["onnx_encoder", "int8_encoder"])
def test_output_order_is_input_order(request, which, texts):
    encoder = request.getfixturevalue(which)
    forward = encoder.encode_documents(texts)
    rng = np.random.default_rng(0)
    permutation = rng.permutation(len(texts))
    shuffled = encoder.encode_documents([texts[i] for i in permutation])
    # float32: the same rows up to rounding. int8: activations are scaled per batch, so a text's
    # vector moves a little with its batch neighbours (measured ~0.995), never to another text's.
    floor = 0.9999 if encoder.backend == "onnx" else 0.99
    assert cosines(shuffled, forward[permutation]).min() >= floor
    # One at a time (no padding, no sorting) gives the same rows as well.
    singles = np.concatenate([encoder.encode_documents([t]) for t in texts[:5]])
    assert cosines(singles, forward[:5]).min() >= floor


def test_chunks_and_duplicates_keep_their_positions(onnx_encoder, texts, monkeypatch):
    monkeypatch.setattr(encoder_module, "_ONNX_CHUNK", 7)  # several chunks, a short last one
    doubled = texts + texts[:3]
    vectors = onnx_encoder.encode_documents(doubled, progress=True)
    np.testing.assert_allclose(vectors[len(texts):], vectors[:3], atol=1e-5)
    whole = onnx_encoder.encode_documents(texts)
    assert cosines(vectors[:len(texts)], whole).min() >= 0.9999


def test_empty_input(onnx_encoder, int8_encoder):
    for encoder in (onnx_encoder, int8_encoder):
        assert encoder.encode_documents([]).shape == (0, encoder.dimension)
        assert encoder.encode_queries([]).shape == (0, encoder.dimension)


def test_float32_backends_share_the_weights_fingerprint(torch_encoder, onnx_encoder):
    assert torch_encoder.backend == "torch" and onnx_encoder.backend == "onnx"
    assert torch_encoder.fingerprint == onnx_encoder.fingerprint == onnx_encoder.weights_fingerprint
    assert len(torch_encoder.fingerprint) == 64  # unchanged: indexes and caches built before still match


def test_int8_has_its_own_fingerprint_and_cache_folder(tmp_path, torch_encoder, int8_encoder):
    assert int8_encoder.fingerprint == f"{torch_encoder.fingerprint}+{INT8_RECIPE}"
    assert int8_encoder.weights_fingerprint == torch_encoder.fingerprint
    float_cache = EmbeddingCache(tmp_path, torch_encoder.fingerprint)
    int8_cache = EmbeddingCache(tmp_path, int8_encoder.fingerprint)
    float_cache.embed(["a quiet drama"], torch_encoder)
    _, new = int8_cache.embed(["a quiet drama"], int8_encoder)
    assert new == 1  # int8 never reads float32 vectors (or the other way round)
    assert len({p.parent for p in tmp_path.rglob("keys.npy")}) == 2


def test_query_encoding_follows_the_index_fingerprint(torch_encoder, int8_encoder):
    assert backend_for_fingerprint(int8_encoder.fingerprint) == "onnx-int8"
    assert backend_for_fingerprint(torch_encoder.fingerprint) == "auto"
    assert backend_for_fingerprint("name:some-model") == "auto"
    for backend in ("auto", "torch", "onnx", "onnx-int8"):
        fingerprint = variant_fingerprint(torch_encoder.fingerprint, backend)
        assert variant_fingerprint(torch_encoder.fingerprint, backend_for_fingerprint(fingerprint)) == fingerprint
    # An int8 encoder encodes queries with the same int8 model as its documents.
    text = ["space opera with a lonely robot"]
    np.testing.assert_allclose(int8_encoder.encode_queries(text), int8_encoder.encode_documents(text), atol=1e-6)


def test_unknown_backend_and_bad_threads_are_refused():
    with pytest.raises(InvalidInputError, match="backend"):
        SentenceTransformerEncoder(backend="tensorrt")
    with pytest.raises(InvalidInputError, match="threads"):
        SentenceTransformerEncoder(threads=0)
    with pytest.raises(InvalidInputError, match="backend"):
        variant_fingerprint("abc", "tensorrt")


def test_auto_falls_back_to_torch_without_onnxruntime(monkeypatch, torch_encoder):
    monkeypatch.setattr(encoder_module, "onnx_available", lambda: False)
    fallback = SentenceTransformerEncoder()
    assert fallback.backend == "torch" and fallback.fingerprint == torch_encoder.fingerprint
    with pytest.raises(InvalidInputError, match="not available"):
        SentenceTransformerEncoder(backend="onnx-int8")


def test_a_bad_cached_onnx_file_is_exported_again(tmp_path, onnx_encoder, int8_encoder, texts):
    folder = tmp_path / "onnx" / onnx_encoder.weights_fingerprint[:32]
    folder.mkdir(parents=True)
    # A valid ONNX model of the wrong weights: the int8 graph where the float32 one belongs.
    int8_file = onnx_encoder._onnx_dir() / encoder_module.ONNX_FILES["onnx-int8"]
    (folder / encoder_module.ONNX_FILES["onnx"]).write_bytes(int8_file.read_bytes())
    again = SentenceTransformerEncoder(backend="onnx", cache_dir=tmp_path)
    assert cosines(again.encode_documents(texts[:5]), onnx_encoder.encode_documents(texts[:5])).min() >= 0.9999


def test_an_unreadable_cached_onnx_file_is_exported_again(tmp_path, monkeypatch, onnx_encoder, texts):
    torn = tmp_path / "torn.onnx"
    torn.write_bytes(b"torn")
    real = encoder_module._ensure_onnx_files
    calls = []

    def first_torn(model_dir, folder, st_model, backend, *, force):
        calls.append(force)
        return torn if not force else real(model_dir, onnx_encoder._onnx_dir(), st_model, backend, force=False)

    monkeypatch.setattr(encoder_module, "_ensure_onnx_files", first_torn)
    again = SentenceTransformerEncoder(backend="onnx", cache_dir=tmp_path)
    assert calls == [False, True]  # refused, then made again
    assert cosines(again.encode_documents(texts[:5]), onnx_encoder.encode_documents(texts[:5])).min() >= 0.9999


def test_queries_from_several_threads_at_once(onnx_encoder, texts):
    from concurrent.futures import ThreadPoolExecutor

    queries = [t[:40] for t in texts[:16]]
    expected = np.concatenate([onnx_encoder.encode_queries([q]) for q in queries])
    with ThreadPoolExecutor(4) as pool:
        got = np.concatenate(list(pool.map(lambda q: onnx_encoder.encode_queries([q]), queries)))
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_auto_falls_back_to_torch_when_the_export_fails(monkeypatch, tmp_path, torch_encoder):
    def broken(*args, **kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(encoder_module, "_export_fp32", broken)
    fallback = SentenceTransformerEncoder(cache_dir=tmp_path)
    assert fallback.backend == "torch" and fallback.fingerprint == torch_encoder.fingerprint
    with pytest.raises(RuntimeError, match="exploded"):
        SentenceTransformerEncoder(backend="onnx", cache_dir=tmp_path)
