"""Atomic publishing of index versions under an index root.

    indexes/
      current -> v20261203T120000Z     a symlink, switched with one rename
      v20261203T120000Z/               immutable once published
      .staging-*/                      a build in progress (removed if it fails)

A build writes into a staging folder, fsyncs it, renames it to its version name, then swaps
``current``. Until that last rename, readers see the previous version, whole.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from tastebud.errors import PreconditionError

CURRENT = "current"


def new_version_name(root: Path, now: datetime | None = None) -> str:
    """``vYYYYMMDDTHHMMSSZ``, with a ``-N`` suffix when that name is taken."""
    stamp = (now or datetime.now(timezone.utc)).strftime("v%Y%m%dT%H%M%SZ")
    name, n = stamp, 1
    while (root / name).exists():
        n += 1
        name = f"{stamp}-{n}"
    return name


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(directory: Path) -> None:
    for path in directory.iterdir():
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(directory)


@contextlib.contextmanager
def staging_dir(root: Path) -> Iterator[Path]:
    """A fresh folder under ``root`` to build in; removed on any error."""
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        yield path
    finally:
        if path.exists():
            shutil.rmtree(path, ignore_errors=True)


def publish(root: Path, staging: Path, version: str) -> Path:
    """Move a finished staging folder to ``root/version`` and point ``current`` at it."""
    os.chmod(staging, 0o755)  # mkdtemp made it private; a published version is world-readable
    _fsync_tree(staging)
    final = root / version
    os.rename(staging, final)
    link_tmp = root / f".{CURRENT}.{version}.tmp"
    if link_tmp.is_symlink() or link_tmp.exists():
        link_tmp.unlink()
    os.symlink(version, link_tmp)
    os.replace(link_tmp, root / CURRENT)
    _fsync_dir(root)
    return final


def resolve_version_dir(path: Path) -> Path:
    """The version folder to serve: ``path`` itself if it is one, else ``path/current``."""
    path = Path(path)
    if (path / "manifest.json").is_file():
        return path
    current = path / CURRENT
    if current.exists():
        return current.resolve()
    if not path.exists():
        raise PreconditionError(f"index folder {path} does not exist; run `tastebud build --out {path}` first")
    raise PreconditionError(f"{path} has no published index ({CURRENT} is missing); run `tastebud build --out {path}`")
