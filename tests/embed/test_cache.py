"""The embedding cache: re-embed only what changed, one folder per model, never crash on a bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tastebud.embed.cache import EmbeddingCache

TEXTS = ["a quiet drama", "a loud comedy", "space horror", "jazz for rainy days"]


def cache_for(root: Path, encoder) -> EmbeddingCache:
    return EmbeddingCache(root, encoder.fingerprint)


def cache_folders(root: Path) -> list[Path]:
    """The folders holding a keys.npy, wherever the cache nests them."""
    return sorted(p.parent for p in root.rglob("keys.npy"))


def expected_vectors(encoder, texts) -> np.ndarray:
    return np.stack([encoder.vector(t) for t in texts])


def test_first_embed_encodes_every_text(tmp_path, fake_encoder):
    vectors, new = cache_for(tmp_path, fake_encoder).embed(TEXTS, fake_encoder)
    assert new == len(TEXTS) and fake_encoder.encoded == TEXTS
    np.testing.assert_array_equal(vectors, expected_vectors(fake_encoder, TEXTS))
    assert vectors.dtype == np.float32


def test_second_embed_of_the_same_texts_encodes_nothing(tmp_path, make_encoder):
    first = make_encoder()
    vectors, _ = cache_for(tmp_path, first).embed(TEXTS, first)
    second = make_encoder()
    again, new = cache_for(tmp_path, second).embed(TEXTS[::-1], second)  # another order, same texts
    assert new == 0 and second.calls == 0
    np.testing.assert_array_equal(again, vectors[::-1])


def test_a_changed_text_encodes_just_that_one(tmp_path, make_encoder):
    first = make_encoder()
    cache_for(tmp_path, first).embed(TEXTS, first)
    changed = [TEXTS[0], "a loud comedy, remastered", TEXTS[2], TEXTS[3]]
    second = make_encoder()
    vectors, new = cache_for(tmp_path, second).embed(changed, second)
    assert new == 1 and second.encoded == ["a loud comedy, remastered"]
    np.testing.assert_array_equal(vectors, expected_vectors(second, changed))
    third = make_encoder()  # both versions are now cached
    _, new = cache_for(tmp_path, third).embed(TEXTS + changed, third)
    assert new == 0 and third.calls == 0


def test_identical_texts_share_one_encoding(tmp_path, fake_encoder):
    vectors, new = cache_for(tmp_path, fake_encoder).embed(["x", "y", "x", "x"], fake_encoder)
    assert new == 2 and fake_encoder.encoded == ["x", "y"]
    np.testing.assert_array_equal(vectors[0], vectors[2])


def test_no_texts(tmp_path, fake_encoder):
    vectors, new = cache_for(tmp_path, fake_encoder).embed([], fake_encoder)
    assert vectors.shape == (0, 32) and new == 0 and fake_encoder.calls == 0


@pytest.mark.parametrize("fingerprint, other_fingerprint", [
    ("fake-32", "fake-32-other-weights"),
    # Models found by name rather than in a folder are fingerprinted by name: two names that share
    # a long prefix are still two models (and the same 384 dimensions would hide a mix-up).
    ("name:sentence-transformers/all-MiniLM-L6-v2", "name:sentence-transformers/all-MiniLM-L12-v2"),
])
def test_another_fingerprint_uses_another_folder(tmp_path, make_encoder, fingerprint, other_fingerprint):
    base = make_encoder(fingerprint=fingerprint)
    cache_for(tmp_path, base).embed(TEXTS, base)
    other = make_encoder(fingerprint=other_fingerprint)
    vectors, new = cache_for(tmp_path, other).embed(TEXTS, other)
    assert new == len(TEXTS) and other.encoded == TEXTS
    np.testing.assert_array_equal(vectors, expected_vectors(other, TEXTS))
    assert len(cache_folders(tmp_path)) == 2
    again = make_encoder(fingerprint=fingerprint)  # and the first model's cache is still its own
    vectors, new = cache_for(tmp_path, again).embed(TEXTS, again)
    assert new == 0
    np.testing.assert_array_equal(vectors, expected_vectors(base, TEXTS))


def test_same_weights_under_another_name_share_the_cache(tmp_path, make_encoder):
    first = make_encoder(name="minilm")
    cache_for(tmp_path, first).embed(TEXTS, first)
    renamed = make_encoder(name="renamed-folder")  # same fingerprint
    _, new = cache_for(tmp_path, renamed).embed(TEXTS, renamed)
    assert new == 0


def cache_files(root: Path) -> tuple[Path, Path]:
    (folder,) = cache_folders(root)
    return folder / "keys.npy", folder / "vectors.npy"


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_dimension", "fewer_vectors", "wrong_key_dtype"])
def test_a_damaged_cache_is_ignored_not_fatal(tmp_path, make_encoder, damage):
    first = make_encoder()
    cache_for(tmp_path, first).embed(TEXTS, first)
    keys_path, vectors_path = cache_files(tmp_path)
    if damage == "garbage":
        vectors_path.write_bytes(b"\x00not a numpy file" * 10)
    elif damage == "truncated":
        vectors_path.write_bytes(vectors_path.read_bytes()[:-16])
    elif damage == "wrong_dimension":
        np.save(vectors_path, np.zeros((len(TEXTS), 16), np.float32), allow_pickle=False)
    elif damage == "fewer_vectors":
        np.save(vectors_path, np.zeros((len(TEXTS) - 1, 32), np.float32), allow_pickle=False)
    elif damage == "wrong_key_dtype":
        np.save(keys_path, np.arange(len(TEXTS)), allow_pickle=False)

    second = make_encoder()
    vectors, new = cache_for(tmp_path, second).embed(TEXTS, second)
    assert new == len(TEXTS) and second.encoded == TEXTS
    np.testing.assert_array_equal(vectors, expected_vectors(second, TEXTS))
    third = make_encoder()  # the cache was rewritten whole, and works again
    _, new = cache_for(tmp_path, third).embed(TEXTS, third)
    assert new == 0
