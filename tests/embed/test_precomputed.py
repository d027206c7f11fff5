"""Precomputed item vectors (``tastebud build --vectors``): read in catalog order, refused when wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tastebud.embed.precomputed import load_precomputed_vectors
from tastebud.errors import InvalidInputError


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def write(path: Path, ids: list[str], vectors: np.ndarray) -> Path:
    np.savez(path, ids=np.array(ids), vectors=vectors)
    return path


def test_rows_come_back_in_catalog_order_and_extra_ids_are_ignored(tmp_path, rng):
    vectors = unit(rng, 4, 8)
    path = write(tmp_path / "v.npz", ["a", "b", "c", "extra"], vectors)
    out = load_precomputed_vectors(path, ["c", "a", "b"], 8)
    np.testing.assert_array_equal(out, vectors[[2, 0, 1]])
    assert out.dtype == np.float32 and out.flags.c_contiguous


@pytest.mark.parametrize("case, message", [
    ("missing", "no vector for 1 catalog item(s), first 'c'"),
    ("dimension", "vectors are 4-d, the model encodes 8-d"),
    ("norm", "the vector of item 'b' (row 1) has norm"),
    ("nan", "the vector of item 'a' (row 0) has norm nan"),
    ("duplicate", "item id 'a' appears twice (rows 0 and 2)"),
    ("arrays", "needs arrays 'ids' and 'vectors'"),
])
def test_bad_vector_files_are_refused_naming_the_problem(tmp_path, rng, case, message):
    path = tmp_path / "v.npz"
    vectors, ids, dim = unit(rng, 3, 8), ["a", "b", "c"], 8
    if case == "missing":
        ids = ["a", "b", "x"]
    elif case == "dimension":
        vectors = unit(rng, 3, 4)
    elif case == "norm":
        vectors[1] *= 2.0
    elif case == "nan":
        vectors[0, 0] = np.nan
    elif case == "duplicate":
        ids = ["a", "b", "a"]
    if case == "arrays":
        np.savez(path, vectors=vectors)
    else:
        write(path, ids, vectors)
    with pytest.raises(InvalidInputError) as err:
        load_precomputed_vectors(path, ["a", "b", "c"], dim)
    assert message in str(err.value) and str(path) in str(err.value)


def test_a_file_that_is_not_an_npz_is_refused(tmp_path):
    path = tmp_path / "v.npz"
    path.write_text("item_id,vector\n")
    with pytest.raises(InvalidInputError, match="not a readable .npz"):
        load_precomputed_vectors(path, ["a"], 8)
