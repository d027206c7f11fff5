"""Forgetting and exporting a user: everything tastebud keeps of a person, removed or handed over.

Where a user lives, and what forgetting does there:
- the interaction store (SQLite): their events, impressions and email choice are deleted with
  ``secure_delete``, the file is vacuumed and the WAL truncated, so no page still holds them;
  a salted hash of the id stays, so the next ``tastebud build`` leaves them out even when its
  input files still name them;
- the loaded index: their build-time history is dropped from memory at once, so their next
  Recommend is the cold-start answer;
- every index version on disk: ``users.parquet`` is rewritten without them and the manifest's
  checksum updated (each file replaced atomically);
- the trained-model cache of the index root: emptied, since a cached model was fitted on their
  events (the next build retrains). The models themselves hold no per-user parameters: the user
  tower pools item vectors, and the ranker's features are item-level, so nothing else needs
  removing from a model.
Shard processes hold only item vectors, nothing of users.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tastebud.errors import PreconditionError
from tastebud.index.histories import UserHistories
from tastebud.ingest.interaction_store import FORGOTTEN_FILE, InteractionStore
from tastebud.index.manifest import MANIFEST_NAME, read_manifest, sha256_file
from tastebud.server.recommender import Recommender, check_user_id

USERS_FILE = "users.parquet"
MODEL_CACHE = Path(".cache") / "models"


@dataclass(frozen=True, slots=True)
class ForgetReceipt:
    user_id: str
    interactions_removed: int = 0
    impressions_removed: int = 0
    subscription_removed: bool = False
    history_items_removed: int = 0
    index_versions_rewritten: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def _replace_file(path: Path, data: bytes) -> None:
    """Write ``data`` beside ``path`` and rename over it: readers see the old file or the new."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def forget_in_version(version_dir: Path, histories: UserHistories, user_id: str) -> None:
    """Rewrite one version's users file (``histories``, as read from it) without the user, and its
    manifest's checksum."""
    path = version_dir / USERS_FILE
    remaining = histories.without(user_id)
    fd, tmp = tempfile.mkstemp(dir=version_dir, prefix=f".{USERS_FILE}.")
    os.close(fd)
    try:
        remaining.write(Path(tmp))
        data = Path(tmp).read_bytes()
    finally:
        Path(tmp).unlink(missing_ok=True)
    _replace_file(path, data)
    manifest_path = version_dir / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["files"][USERS_FILE] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    manifest["n_users"] = len(remaining)
    _replace_file(manifest_path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())


def index_versions(root: Path) -> list[Path]:
    """The version folders of an index root (not the ``current`` link to one of them)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and (p / MANIFEST_NAME).is_file())


def versions_holding(root: Path, user_id: str) -> list[tuple[Path, UserHistories]]:
    """The version folders whose users file has the user, each with that file as read (once)."""
    holding = []
    for version_dir in index_versions(root):
        histories = UserHistories.read(version_dir / USERS_FILE)
        if user_id in histories:
            holding.append((version_dir, histories))
    return holding


def forget_user(recommender: Recommender, user_id: str) -> ForgetReceipt:
    """Remove the user everywhere (see the module's docstring). Blocking. Unknown: empty receipt."""
    check_user_id(user_id)
    histories = recommender.histories
    store = histories.store
    root = recommender.index.version_dir.parent
    holding = versions_holding(root, user_id)
    versions = [version_dir for version_dir, _ in holding]
    in_store = store is not None and (store.history(user_id, impressions=True) or
                                      store.subscription(user_id) is not None)
    if not versions and not in_store and not histories.known(user_id):
        return ForgetReceipt(user_id)
    unwritable = [v.name for v in versions if not os.access(v, os.W_OK) or not os.access(v / USERS_FILE, os.W_OK)]
    if unwritable:
        # Refuse before touching anything: a half-done forget that reports success is worse.
        raise PreconditionError(f"cannot forget {user_id!r}: index versions {unwritable} are read-only here; "
                                "forget where the index root is writable")
    counts = store.forget(user_id) if store is not None else None
    if store is not None:
        # For builds that cannot see this store (another host, a Kubernetes job): hashes only.
        _replace_file(root / FORGOTTEN_FILE, store.forgotten_filter().to_json().encode())
    held = histories.forget(user_id)
    for version_dir, version_histories in holding:
        forget_in_version(version_dir, version_histories, user_id)
    notes = []
    cache = root / MODEL_CACHE
    if cache.exists():
        shutil.rmtree(cache)
        notes.append("the trained-model cache was emptied: the next build retrains without this user")
    if store is None:
        notes.append("this server has no interaction store")
    return ForgetReceipt(user_id, counts.interactions if counts else 0, counts.impressions if counts else 0,
                         counts.subscription if counts else False, held, tuple(v.name for v in versions),
                         tuple(notes))


def without_forgotten(histories: UserHistories, store: InteractionStore | None) -> UserHistories:
    """Build-time histories minus users the store says were forgotten: a version built (or
    loaded) while a forget ran cannot bring them back into memory."""
    if store is None:
        return histories
    forgotten = store.forgotten_filter()
    if not forgotten.hashes:
        return histories
    for user_id in [u for u in histories.user_ids if u in forgotten]:
        histories = histories.without(user_id)
    return histories


def export_user(recommender: Recommender, user_id: str) -> dict[str, Any]:
    """Everything tastebud holds about the user, as JSON-ready data. Blocking."""
    check_user_id(user_id)
    items = recommender.items
    history = recommender.histories.get(user_id)
    store = recommender.histories.store
    events = store.history(user_id, impressions=True) if store is not None else []
    profile = recommender.user(user_id)
    return {
        "user_id": user_id,
        "known": profile.known,
        "subscribed": profile.subscribed,
        "subscription_choice": store.subscription(user_id) if store is not None else None,
        "history": [{"item_id": items.item_ids[row], "title": items.titles[row], "timestamp": float(ts),
                     "weight": float(w)}
                    for row, ts, w in zip(history.items.tolist(), history.timestamps.tolist(),
                                          history.weights.tolist())],
        "recorded_events": [{k: v for k, v in asdict(e).items() if k != "user_id"} for e in events],
        "index_versions_with_history": [v.name for v, _ in versions_holding(recommender.index.version_dir.parent,
                                                                            user_id)],
    }
