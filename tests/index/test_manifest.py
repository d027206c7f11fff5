"""Index versions on disk: the manifest, atomic publishing, and a loader that believes nothing else."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from tastebud.embed.user_tower import content_tower
from tastebud.errors import IndexIntegrityError, InvalidInputError, PreconditionError
from tastebud.index import build as build_module
from tastebud.index.build import BuildOptions, build_index
from tastebud.index.load import open_index
from tastebud.index.manifest import FORMAT_VERSION, MANIFEST_NAME, SPACES, read_manifest
from tastebud.index.publish import CURRENT, new_version_name, resolve_version_dir
from tastebud.index.sharding import assign_shards
from tastebud.ingest.model import Catalog, Dataset, LoadReport, sorted_interaction_log

FORMATS = Path(__file__).parent / "formats"  # one small index of each old format
N_ITEMS = 30
N_SHARDS = 3
GENRES = ["drama", "comedy", "horror"]


def tiny_dataset(n_items: int = N_ITEMS, changed: dict[int, str] | None = None, duplicate_id: bool = False) -> Dataset:
    """A catalog of ``n_items`` movies and 5 users with 4 events each; ``changed`` replaces texts."""
    ids = [f"m{i:02d}" for i in range(n_items)]
    if duplicate_id:
        ids[-1] = ids[0]
    texts = [f"Movie {i}: a {GENRES[i % 3]} film" for i in range(n_items)]
    for i, text in (changed or {}).items():
        texts[i] = text
    catalog = Catalog(
        item_ids=ids, titles=[f"Movie {i}" for i in range(n_items)], texts=texts,
        years=[None if i % 7 == 0 else 1980 + i for i in range(n_items)],
        attributes={"genres": [(GENRES[i % 3],) for i in range(n_items)]},
    )
    users = [f"u{u}" for u in range(5) for _ in range(4)]
    items = [ids[(3 * u + j) % n_items] for u in range(5) for j in range(4)]
    log = sorted_interaction_log(users, items, np.arange(20, dtype=np.float64) * 60.0, np.ones(20), ["view"] * 20,
                                 np.full(20, np.nan))
    return Dataset(catalog, log, LoadReport(items_read=n_items, interactions_read=20))


# The content model: these tests are about building and publishing, not about learning from 20 events.
OPTIONS = BuildOptions(n_shards=N_SHARDS, progress=False, retrieval="content")
# A content index stores one space per shard: its text space is read from the item space.
SHARD_FILES = {"item_index": "item.faiss", "item_vectors": "item.npy", "query_vectors": "query.npy", "ids": "ids.npy"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "indexes"


@pytest.fixture
def built(root: Path, fake_encoder):
    return build_index(tiny_dataset(), fake_encoder, root, OPTIONS)


def published_state(root: Path) -> dict[str, str]:
    """Every published entry of an index root (not the embedding cache): path -> sha256 or link target."""
    state: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(".cache"):
            continue
        if path.is_symlink():
            state[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            state[rel] = "dir"
    return state


def open_fake(path: Path, fingerprint: str = "fake-32", dimension: int = 32):
    return open_index(path, fingerprint=fingerprint, dimension=dimension)


# --- a good build -------------------------------------------------------------------------

def test_build_publishes_a_version_that_loads(root, built):
    assert (root / CURRENT).is_symlink()
    assert (root / CURRENT).resolve() == built.version_dir.resolve()
    index = open_fake(root)
    manifest = index.manifest
    assert manifest.model.fingerprint == "fake-32" and manifest.model.dimension == 32 and manifest.model.normalized
    assert manifest.format_version == FORMAT_VERSION
    assert manifest.metric == "inner_product" and manifest.factory == "Flat"
    assert (manifest.n_items, manifest.n_users, manifest.n_events) == (N_ITEMS, 5, 20)
    assert manifest.filter_attributes == ("genres",)
    assert len(index.shards) == N_SHARDS and len(index.items) == N_ITEMS
    expected_counts = np.bincount(assign_shards(tiny_dataset().catalog.item_ids, N_SHARDS), minlength=N_SHARDS)
    assert [s.count for s in manifest.shards] == expected_counts.tolist()
    assert [s.info().count for s in index.shards] == expected_counts.tolist()
    assert index.items.item_ids == tiny_dataset().catalog.item_ids
    assert len(index.histories.get("u0")) == 4 and len(index.histories.get("nobody")) == 0
    assert manifest.retrieval == {"kind": "content", "dimension": 33, "user_tower": "user_tower.npz",
                                  "text_space": "item"}
    tower, expected = index.tower, content_tower()  # the content model's tower, saved and loaded
    np.testing.assert_array_equal(tower.recency_weights, expected.recency_weights)
    assert (tower.text_projection, tower.normalize, tower.taste_weight) == (None, True, expected.taste_weight)
    for shard in index.shards:  # both spaces load with their own dimensions, and the query-side vectors
        ids = np.flatnonzero(index.items.shard == shard.shard).astype(np.int64)
        assert [shard.vectors_sync(ids, kind).shape for kind in ("item", "text", "query")] == \
            [(len(ids), 33), (len(ids), 32), (len(ids), 32)]
        np.testing.assert_array_equal(shard.vectors_sync(ids, "text"), shard.vectors_sync(ids, "item")[:, :-1])


def test_manifest_records_every_file_with_its_sha256(built):
    manifest = read_manifest(built.version_dir)
    assert manifest == built.manifest  # survives the JSON round trip unchanged
    names = {"items.parquet", "users.parquet", "user_tower.npz"} | {
        f"shard-{s:03d}.{suffix}" for s in range(N_SHARDS) for suffix in SHARD_FILES.values()}
    assert set(manifest.files) == names
    for entry in manifest.shards:  # every role of every shard, each with its checksum
        assert entry.files == {role: f"shard-{entry.shard:03d}.{suffix}" for role, suffix in SHARD_FILES.items()}
    assert set(SHARD_FILES) == {f"{space}_{part}" for space in SPACES[:1] for part in ("index", "vectors")} | \
        {"query_vectors", "ids"}
    for name, meta in manifest.files.items():
        data = (built.version_dir / name).read_bytes()
        assert meta == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def test_new_version_name_adds_a_suffix_when_taken(tmp_path):
    now = datetime(2026, 12, 3, 12, 0, 0, tzinfo=timezone.utc)
    assert new_version_name(tmp_path, now) == "v20261203T120000Z"
    (tmp_path / "v20261203T120000Z").mkdir()
    assert new_version_name(tmp_path, now) == "v20261203T120000Z-2"
    (tmp_path / "v20261203T120000Z-2").mkdir()
    assert new_version_name(tmp_path, now) == "v20261203T120000Z-3"


def test_resolve_version_dir(root, built, tmp_path):
    assert resolve_version_dir(root) == built.version_dir.resolve()
    assert resolve_version_dir(built.version_dir) == built.version_dir
    with pytest.raises(PreconditionError, match="does not exist"):
        resolve_version_dir(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PreconditionError, match="no published index"):
        resolve_version_dir(tmp_path / "empty")


# --- the loader refuses anything that does not match -------------------------------------

@pytest.mark.parametrize("name", ["shard-001.item.faiss", "shard-001.ids.npy", "user_tower.npz"])
def test_a_corrupted_byte_is_refused(built, name):
    path = built.version_dir / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexIntegrityError) as info:
        open_fake(built.version_dir)
    assert name in str(info.value) and "sha256" in str(info.value)


@pytest.mark.parametrize("name", ["shard-002.item.npy", "shard-002.ids.npy", "shard-002.query.npy"])
def test_a_truncated_file_is_refused(built, name):
    path = built.version_dir / name
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(IndexIntegrityError, match=rf"{name.replace('.', '[.]')}: \d+ bytes, the manifest says \d+"):
        open_fake(built.version_dir)


@pytest.mark.parametrize("name", ["shard-000.ids.npy", "items.parquet", "user_tower.npz", "shard-000.query.npy"])
def test_a_missing_file_is_refused(built, name):
    (built.version_dir / name).unlink()
    with pytest.raises(IndexIntegrityError, match=f"{name}: listed in the manifest but missing"):
        open_fake(built.version_dir)


def test_a_missing_manifest_is_refused(built):
    (built.version_dir / MANIFEST_NAME).unlink()
    with pytest.raises(IndexIntegrityError, match="manifest.json is missing"):
        read_manifest(built.version_dir)


def test_a_wrong_fingerprint_names_both_models(built):
    with pytest.raises(IndexIntegrityError) as info:
        open_fake(built.version_dir, fingerprint="other-model-weights")
    message = str(info.value)
    assert "fake-32" in message and "other-model-" in message and "'fake'" in message


def test_a_wrong_dimension_names_both(built):
    with pytest.raises(IndexIntegrityError, match="index has 32 dimensions, the model produces 64"):
        open_fake(built.version_dir, dimension=64)


def rewrite_manifest(version_dir: Path, change) -> None:
    path = version_dir / MANIFEST_NAME
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_an_unknown_format_version_is_refused(built):
    rewrite_manifest(built.version_dir, lambda d: d.update(format_version=999))
    with pytest.raises(IndexIntegrityError, match=f"format version 999, this tastebud reads version {FORMAT_VERSION}"):
        open_fake(built.version_dir)


def test_an_index_of_the_previous_format_is_refused_by_its_version(built):
    """formats/v1 was written by the build before shards had two spaces: one FAISS file per shard,
    no retrieval model. It must be refused as an old format, not half-read as a malformed one."""
    assert built.manifest.format_version == FORMAT_VERSION > 1
    assert json.loads((FORMATS / "v1" / MANIFEST_NAME).read_text())["format_version"] == 1
    message = f"index format version 1, this tastebud reads version {FORMAT_VERSION}; rebuild the index"
    with pytest.raises(IndexIntegrityError, match=message):
        open_index(FORMATS / "v1", fingerprint="fake-8", dimension=8)


def test_a_malformed_manifest_is_refused(built):
    rewrite_manifest(built.version_dir, lambda d: d.pop("shards"))
    with pytest.raises(IndexIntegrityError, match="malformed manifest"):
        open_fake(built.version_dir)


def test_an_unreadable_manifest_is_refused(built):
    (built.version_dir / MANIFEST_NAME).write_text("{not json")
    with pytest.raises(IndexIntegrityError, match="unreadable manifest"):
        open_fake(built.version_dir)


@pytest.mark.parametrize("name", ["shard-001.ids.npy", "shard-001.item.npy", "shard-001.query.npy"])
def test_a_shard_file_without_a_checksum_is_refused(built, name):
    rewrite_manifest(built.version_dir, lambda d: d["files"].pop(name))
    with pytest.raises(IndexIntegrityError, match=f"without checksums.*{name}"):
        open_fake(built.version_dir)


def test_a_retrieval_dimension_that_disagrees_is_refused(built):
    rewrite_manifest(built.version_dir, lambda d: d["retrieval"].update(dimension=34))
    with pytest.raises(IndexIntegrityError, match="shard 0 item space: 33-d index, 33-d vectors, the manifest says 34"):
        open_fake(built.version_dir)


def test_a_shard_count_that_disagrees_is_refused(built):
    def bump(d):
        d["shards"][0]["count"] += 1
    rewrite_manifest(built.version_dir, bump)
    with pytest.raises(IndexIntegrityError, match="shard 0: .* the manifest says"):
        open_fake(built.version_dir)


# --- publishing is atomic -----------------------------------------------------------------

def assert_unchanged(root: Path, before: dict[str, str]) -> None:
    assert published_state(root) == before
    assert not list(root.glob(".staging-*")) and not list(root.glob(f".{CURRENT}.*"))


def test_an_encoder_failure_leaves_the_published_version(root, built, make_encoder):
    before = published_state(root)
    encoder = make_encoder()

    def boom(texts, *, progress=False):
        raise RuntimeError("encoder crashed")
    encoder.encode_documents = boom
    with pytest.raises(RuntimeError, match="encoder crashed"):
        build_index(tiny_dataset(changed={3: "a new text"}), encoder, root, OPTIONS)
    assert_unchanged(root, before)
    assert open_fake(root).manifest.version == built.manifest.version


def test_a_failure_while_writing_leaves_the_published_version(root, built, fake_encoder, monkeypatch):
    before = published_state(root)
    seen: list[Path] = []

    def disk_full(directory, names):
        seen.extend(directory.iterdir())  # the shard files were already written into staging
        raise OSError("No space left on device")
    monkeypatch.setattr(build_module, "describe_files", disk_full)
    with pytest.raises(OSError, match="No space left"):
        build_index(tiny_dataset(n_items=31), fake_encoder, root, OPTIONS)
    written = {p.name for p in seen}
    assert {"shard-000.item.faiss", "shard-000.item.npy", "user_tower.npz"} <= written
    assert all(".staging-" in str(p) for p in seen)
    assert_unchanged(root, before)
    assert open_fake(root).manifest.n_items == N_ITEMS


def test_a_bad_dataset_leaves_the_published_version(root, built, fake_encoder):
    before = published_state(root)
    with pytest.raises(IndexIntegrityError, match="duplicate item ids"):
        build_index(tiny_dataset(duplicate_id=True), fake_encoder, root, OPTIONS)
    assert_unchanged(root, before)


def test_a_second_build_becomes_current_and_keeps_the_first(root, built, fake_encoder):
    first_state = {k: v for k, v in published_state(root).items() if k.startswith(built.version_dir.name + "/")}
    second = build_index(tiny_dataset(n_items=31), fake_encoder, root, OPTIONS)
    assert second.version_dir.name != built.version_dir.name
    assert sorted([built.version_dir.name, second.version_dir.name])[-1] == second.version_dir.name
    assert os.readlink(root / CURRENT) == second.version_dir.name
    assert open_fake(root).manifest.n_items == 31
    assert open_fake(built.version_dir).manifest.n_items == N_ITEMS  # still whole, still verifies
    after = published_state(root)
    assert {k: v for k, v in after.items() if k in first_state} == first_state
    versions = sorted(p.name for p in root.iterdir() if p.name.startswith("v"))
    assert versions == sorted([built.version_dir.name, second.version_dir.name])


# --- the embedding cache across builds ----------------------------------------------------

def test_a_rebuild_embeds_only_new_or_changed_texts(root, built, make_encoder):
    assert built.newly_embedded == N_ITEMS
    again_encoder = make_encoder()
    again = build_index(tiny_dataset(), again_encoder, root, OPTIONS)
    assert again.newly_embedded == 0 and again_encoder.encoded == []
    for name in (f"shard-{s:03d}.{kind}.npy" for s in range(N_SHARDS) for kind in ("item", "query")):
        assert again.manifest.files[name] == built.manifest.files[name]  # cached vectors are the same vectors

    changed_encoder = make_encoder()
    changed = build_index(tiny_dataset(changed={7: "Movie 7: now a western"}), changed_encoder, root, OPTIONS)
    assert changed.newly_embedded == 1 and changed_encoder.encoded == ["Movie 7: now a western"]


# --- build options --------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"n_shards": 0}, "--shards must be within 1..256, got 0"),
    ({"n_shards": 257}, "--shards must be within 1..256, got 257"),
    ({"exact_threshold": -1}, "--exact-threshold must be >= 0, got -1"),
])
def test_bad_build_options_are_refused(kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        BuildOptions(**kwargs)


def test_an_empty_catalog_is_refused(root, fake_encoder):
    empty = Dataset(Catalog([], [], [], []), tiny_dataset().interactions, LoadReport(0, 0))
    with pytest.raises(InvalidInputError, match="no items"):
        build_index(empty, fake_encoder, root, OPTIONS)
    assert not (root / CURRENT).exists()


def test_query_vectors_of_the_wrong_width_are_refused_even_with_valid_checksums(built):
    """Shapes are checked, not only bytes: a consistent but wrong file is still refused."""
    from tastebud.index.manifest import describe_files

    version_dir = built.version_dir
    name = built.manifest.shards[0].files["query_vectors"]
    vectors = np.load(version_dir / name)
    np.save(version_dir / name, np.ascontiguousarray(vectors[:, :-1]), allow_pickle=False)
    rewrite_manifest(version_dir, lambda data: data["files"].update(describe_files(version_dir, [name])))
    with pytest.raises(IndexIntegrityError, match="query vectors"):
        open_fake(version_dir)


def test_precomputed_vectors_are_indexed_as_given_without_encoding(root: Path, fake_encoder, rng):
    dataset = tiny_dataset()
    vectors = rng.standard_normal((N_ITEMS, fake_encoder.dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    result = build_index(dataset, fake_encoder, root, OPTIONS, text_vectors=vectors)
    assert result.newly_embedded == 0
    loaded_rows = []
    for shard in open_fake(result.version_dir).shards:
        np.testing.assert_array_equal(shard.vectors_sync(shard.global_ids, "text"), vectors[shard.global_ids])
        loaded_rows.extend(shard.global_ids.tolist())
    assert sorted(loaded_rows) == list(range(N_ITEMS))
    with pytest.raises(InvalidInputError, match="precomputed vectors are"):
        build_index(dataset, fake_encoder, root, OPTIONS, text_vectors=vectors[:-1])


def test_serve_time_tuning_overrides_the_built_one(built):
    from tastebud.index.faiss_index import SearchTuning

    index = open_index(built.version_dir, fingerprint="fake-32", dimension=32, tuning_overrides={"ef_search": 333})
    assert all(shard.tuning.ef_search == 333 for shard in index.shards)
    assert all(shard.tuning.nprobe == SearchTuning().nprobe for shard in index.shards)
    assert all(shard.tuning == SearchTuning() for shard in open_fake(built.version_dir).shards)
