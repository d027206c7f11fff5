"""Which shard an item lives in: a stable hash of its external id.

blake2b rather than Python's ``hash`` (salted per process) so every build, process and host
agrees, and an item keeps its shard when others are added or removed.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
import numpy.typing as npt


def shard_of(item_id: str, n_shards: int) -> int:
    """The shard (0..n_shards-1) of one item id."""
    if n_shards < 1:
        raise ValueError(f"n_shards must be >= 1, got {n_shards}")
    digest = hashlib.blake2b(item_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n_shards


def assign_shards(item_ids: Sequence[str], n_shards: int) -> npt.NDArray[np.int32]:
    """int32[n]: the shard of every item id."""
    return np.fromiter((shard_of(i, n_shards) for i in item_ids), dtype=np.int32, count=len(item_ids))
