"""Shard assignment: a stable hash of the external id, the same in every process and build."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tastebud.index.sharding import assign_shards, shard_of

IDS = ["tt0111161", "movie-42", "Amélie (2001)", "", "42", "spotify:track:4uLU6hMCjMI75M1A2tKUQC"]


def reference_shard(item_id: str, n_shards: int) -> int:
    """The documented rule, computed here by hand: blake2b-64 of the UTF-8 id, big-endian, mod n."""
    digest = hashlib.blake2b(item_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_shards


@pytest.mark.parametrize("n_shards", [1, 2, 3, 4, 7, 16, 256])
def test_shard_of_is_blake2b_of_the_id(n_shards):
    assert [shard_of(i, n_shards) for i in IDS] == [reference_shard(i, n_shards) for i in IDS]


def test_pinned_values_catch_a_change_of_hash():
    # Literal numbers, so that changing the hash (or its byte order or digest size) fails here
    # even if the reference above is changed with it: published indexes depend on them.
    assert shard_of("tt0111161", 1_000_003) == 145386
    assert shard_of("movie-42", 1_000_003) == 88401
    assert shard_of("Amélie (2001)", 1_000_003) == 168204
    assert (shard_of("tt0111161", 4), shard_of("movie-42", 16), shard_of("Amélie (2001)", 7)) == (3, 13, 4)


def test_same_shards_in_another_process_with_another_hash_seed():
    code = ("import sys; from tastebud.index.sharding import shard_of; "
            "print(','.join(str(shard_of(i, 16)) for i in sys.argv[1:]))")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code, *IDS], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ",".join(str(shard_of(i, 16)) for i in IDS)


def test_distribution_is_roughly_uniform():
    n_shards, n = 8, 10_000
    counts = np.bincount(assign_shards([f"item-{i}" for i in range(n)], n_shards), minlength=n_shards)
    expected = n / n_shards
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert counts.sum() == n
    assert counts.min() > 0.85 * expected and counts.max() < 1.15 * expected, counts
    assert chi2 < 30.0, (chi2, counts)  # df=7: P(chi2 > 30) is about 1e-4 for a uniform hash


@pytest.mark.parametrize("n_shards", [0, -1])
def test_fewer_than_one_shard_is_an_error(n_shards):
    with pytest.raises(ValueError, match="n_shards must be >= 1"):
        shard_of("x", n_shards)
    with pytest.raises(ValueError):
        assign_shards(["x"], n_shards)


def test_assign_shards_matches_shard_of():
    ids = [f"id-{i}" for i in range(50)]
    shards = assign_shards(ids, 5)
    assert shards.dtype == np.int32 and shards.shape == (50,)
    assert shards.tolist() == [shard_of(i, 5) for i in ids]
    assert assign_shards([], 5).shape == (0,)
    assert set(assign_shards(ids, 1).tolist()) == {0}


@settings(max_examples=50, deadline=None)
@given(ids=st.lists(st.text(max_size=12), max_size=20, unique=True),
       extra=st.lists(st.text(max_size=12), max_size=20), n_shards=st.integers(1, 64))
def test_an_item_keeps_its_shard_when_others_are_added(ids, extra, n_shards):
    before = assign_shards(ids, n_shards)
    after = assign_shards(extra + ids, n_shards)
    np.testing.assert_array_equal(after[len(extra):], before)
    assert np.all((0 <= before) & (before < n_shards))
