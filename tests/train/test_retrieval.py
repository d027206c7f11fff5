"""Choosing and fitting the build's retrieval model: kinds, the validation gate, the model cache."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from tastebud.embed.user_tower import content_index_vectors, content_tower
from tastebud.errors import InvalidInputError, ModelValidationError
from tastebud.index.build import BuildOptions, build_index
from tastebud.index.items import years_array
from tastebud.index.load import open_index
from tastebud.index.manifest import read_manifest
from tastebud.ingest.model import Catalog, Dataset, LoadReport, sorted_interaction_log
from tastebud.train import retrieval as retrieval_module
from tastebud.train.item_features import catalog_features
from tastebud.train.retrieval import fit_retrieval
from tastebud.train.sequences import Sequences, build_sequences
from tastebud.train.two_tower import TwoTowerWeights, train_two_tower

ARRAYS = ("index_vectors", "query_vectors")


class TrainingCalled(AssertionError):
    pass


def refuse_training(*args, **kwargs):
    raise TrainingCalled("train_two_tower was called")


def fit(world, config, cache_dir: Path | None, seqs: Sequences | None = None, text=None, kind="two_tower"):
    return fit_retrieval(kind, world.text_vectors if text is None else text, world.seqs if seqs is None else seqs,
                         np.bincount(world.seqs.items, minlength=world.n_items).astype(np.float32), config, cache_dir)


# --- kinds ---------------------------------------------------------------------------------------

def test_an_unknown_kind_is_refused(genre_world, tiny_config):
    with pytest.raises(InvalidInputError, match="--retrieval must be one of auto, two_tower, content, got 'bert'"):
        fit(genre_world(), tiny_config, None, kind="bert")


def test_the_content_model_is_text_with_a_popularity_prior(genre_world, tiny_config, monkeypatch):
    world = genre_world()
    monkeypatch.setattr(retrieval_module, "train_two_tower", refuse_training)
    model = fit(world, tiny_config, None, kind="content")
    popularity = np.bincount(world.seqs.items, minlength=world.n_items).astype(np.float32)
    np.testing.assert_array_equal(model.index_vectors, content_index_vectors(world.text_vectors, popularity))
    np.testing.assert_array_equal(model.query_vectors, world.text_vectors)
    np.testing.assert_array_equal(model.tower.recency_weights, content_tower().recency_weights)
    assert model.kind == "content" and model.info == {"kind": "content", "dimension": world.text_vectors.shape[1] + 1}


@pytest.mark.parametrize("events_short, users_short", [(False, False), (True, False), (False, True)])
def test_auto_learns_only_from_enough_interactions(genre_world, tiny_config, monkeypatch, events_short, users_short):
    world = genre_world()
    monkeypatch.setattr(retrieval_module, "MIN_EVENTS_TO_LEARN", len(world.seqs.items) + events_short)
    monkeypatch.setattr(retrieval_module, "MIN_USERS_TO_LEARN", len(world.seqs) + users_short)
    chosen: list[str] = []
    monkeypatch.setattr(retrieval_module, "two_tower_model", lambda *a, **k: chosen.append("two_tower") or "learned")
    model = fit(world, tiny_config, None, kind="auto")
    if events_short or users_short:
        assert model.kind == "content" and chosen == []
    else:
        assert model == "learned" and chosen == ["two_tower"]


# --- (d) the validation gate ---------------------------------------------------------------------

def test_a_learnable_world_passes_the_gate_and_records_it(genre_world, tiny_config):
    model = fit(genre_world(), tiny_config, None)
    validation = model.info["validation"]
    assert validation["model"]["ndcg@10"] > validation["popularity"]["ndcg@10"]
    assert validation["model"]["users"] == validation["popularity"]["users"] == 100  # every user has >= 6 items
    assert model.info["kind"] == "two_tower" and model.info["dimension"] == tiny_config.members * tiny_config.dim + 1
    assert model.info["config"] == tiny_config.as_dict()


def test_a_model_worse_than_popularity_is_refused(genre_world, tiny_config, monkeypatch):
    """The same learnable world, with a trainer whose model learned the opposite of every taste
    (each user's own genre scores lowest): the gate judges the model, not the data."""
    world = genre_world()
    calls: list[int] = []

    def backwards(text_vectors, seqs, config, progress=False, item_features=None):
        calls.append(1)
        n, d = seqs.n_items, config.dim
        genre = np.zeros((n, d), np.float32)
        genre[np.arange(n), world.genre] = 1.0
        return TwoTowerWeights(np.concatenate([genre, np.zeros((n, 1), np.float32)], axis=1), -genre,
                               np.ones(config.history, np.float32), np.zeros((text_vectors.shape[1], d), np.float32),
                               0.0, 0.0)
    monkeypatch.setattr(retrieval_module, "train_two_tower", backwards)
    message = r"worse than popularity on validation \(NDCG@10 0\.0000 <= [0-9.]+\).*--retrieval content"
    with pytest.raises(ModelValidationError, match=message):
        fit(world, tiny_config, None)
    assert calls == [1]  # refused after the validation model, before the final training


def everyone_watches_the_same(n_items: int = 60, n_users: int = 40, popular: int = 8):
    """Every user watches the same ``popular`` items, in random order: the held-out tail is
    always the popular items not yet seen, which popularity ranks first. No model can beat it."""
    rng = np.random.default_rng(5)
    ids = [f"m{i:02d}" for i in range(n_items)]
    users, items, times = [], [], []
    for u in range(n_users):
        users += [f"u{u:02d}"] * popular
        items += [ids[i] for i in rng.permutation(popular)]
        times += list(np.arange(popular, dtype=np.float64))
    n = len(users)
    log = sorted_interaction_log(users, items, times, np.ones(n), ["view"] * n, np.full(n, np.nan))
    catalog = Catalog(ids, [f"Movie {i}" for i in range(n_items)], [f"movie number {i}" for i in range(n_items)],
                      [2000] * n_items, {"genres": [("drama",)] * n_items})
    return Dataset(catalog, log, LoadReport(n_items, n))


def test_nothing_beats_popularity_when_everyone_watches_the_same(tiny_config, fake_encoder):
    data = everyone_watches_the_same()
    seqs = build_sequences(data.interactions, data.catalog.item_ids)
    text = fake_encoder.encode_documents(data.catalog.texts)  # random text vectors: no signal there either
    popularity = np.bincount(seqs.items, minlength=len(data.catalog)).astype(np.float32)
    with pytest.raises(ModelValidationError, match=r"NDCG@10 [0-9.]+ <= 1\.0000"):
        fit_retrieval("two_tower", text, seqs, popularity, tiny_config, None)


def published_state(root: Path) -> dict[str, str]:
    """Every published entry of an index root (not the caches): path -> sha256 or link target."""
    state = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(".cache"):
            continue
        state[rel] = "-> " + os.readlink(path) if path.is_symlink() else \
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return state


def test_a_refused_model_leaves_the_published_index_untouched(tmp_path, tiny_config, fake_encoder):
    data = everyone_watches_the_same()
    root = tmp_path / "indexes"
    first = build_index(data, fake_encoder, root, BuildOptions(n_shards=2, progress=False, retrieval="content"))
    before = published_state(root)
    with pytest.raises(ModelValidationError):
        build_index(data, fake_encoder, root, BuildOptions(n_shards=2, progress=False, retrieval="two_tower",
                                                           two_tower=tiny_config))
    assert published_state(root) == before
    assert os.readlink(root / "current") == first.version_dir.name
    assert not list(root.glob(".staging-*"))
    assert not list((root / ".cache" / "models").glob("*.npz"))  # a refused model is not cached either


class LookupEncoder:
    """An ``Encoder`` whose text "item-007" embeds as row 7 of fixed text vectors."""

    def __init__(self, vectors: np.ndarray) -> None:
        self._vectors = vectors
        self.name, self.dimension, self.fingerprint = "lookup", vectors.shape[1], f"lookup-{vectors.shape[1]}"

    def encode_documents(self, texts, *, progress: bool = False) -> np.ndarray:
        return self._vectors[[int(t.split("-")[1]) for t in texts]]

    def encode_queries(self, texts) -> np.ndarray:
        return self.encode_documents(texts)


def test_a_learned_build_serves_the_trained_model(genre_world, tiny_config, tmp_path):
    """Published and loaded again, the index holds the trained vectors, and the loaded tower
    over the shards' query vectors gives the user vector the trainer's own pooling gives."""
    world = genre_world()
    catalog = Catalog(world.item_ids, world.item_ids, world.item_ids, [2000] * world.n_items,
                      {"genres": [(f"g{g}",) for g in world.genre]})
    dataset = Dataset(catalog, world.log, LoadReport(world.n_items, len(world.log)))
    encoder = LookupEncoder(world.text_vectors)
    built = build_index(dataset, encoder, tmp_path, BuildOptions(n_shards=3, progress=False, retrieval="two_tower",
                                                                 two_tower=tiny_config))
    assert read_manifest(built.version_dir) == built.manifest  # the model's info survives the JSON round trip
    retrieval = built.manifest.retrieval
    assert (retrieval["kind"], retrieval["dimension"], retrieval["config"]) == \
        ("two_tower", tiny_config.members * tiny_config.dim + 1, tiny_config.as_dict())
    assert retrieval["validation"]["model"]["ndcg@10"] > retrieval["validation"]["popularity"]["ndcg@10"]

    index = open_index(tmp_path, fingerprint=encoder.fingerprint, dimension=encoder.dimension)
    # what the build trained last, again, with the catalog's genres and years as item inputs
    final = train_two_tower(world.text_vectors, world.seqs, tiny_config,
                            item_features=catalog_features(catalog.attributes, years_array(catalog.years)))
    tower = index.tower
    np.testing.assert_array_equal(tower.recency_weights, final.recency_weights)
    np.testing.assert_array_equal(tower.text_projection, final.text_projection)
    assert not tower.normalize

    def by_global_id(kind: str) -> np.ndarray:
        out = {}
        for shard in index.shards:
            ids = np.flatnonzero(index.items.shard == shard.shard).astype(np.int64)
            out.update(zip(ids.tolist(), shard.vectors_sync(ids, kind)))
        return np.stack([out[i] for i in range(world.n_items)])
    np.testing.assert_array_equal(by_global_id("item"), final.index_vectors)
    np.testing.assert_array_equal(by_global_id("query"), final.query_vectors)
    np.testing.assert_array_equal(by_global_id("text"), world.text_vectors)

    query_vectors = by_global_id("query")
    for user in ("user-000", "user-042"):
        history = index.histories.get(user).items
        served = tower.user_vector(query_vectors[history[-tower.history_length:]])
        np.testing.assert_allclose(served, final.torch_user_vector(history), rtol=1e-5, atol=1e-6)


# --- (e) the model cache -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cached(genre_world, tiny_config, tmp_path_factory):
    """A cache folder holding the model of the genre world, and that model."""
    cache_dir = tmp_path_factory.mktemp("models")
    return cache_dir, fit(genre_world(), tiny_config, cache_dir)


def test_a_second_fit_on_identical_data_reuses_the_model(genre_world, tiny_config, cached, monkeypatch):
    cache_dir, first = cached
    assert len(list(cache_dir.glob("*.npz"))) == 1 and len(list(cache_dir.glob("*.json"))) == 1
    world = genre_world()  # built again from scratch: equal data, not the same objects
    monkeypatch.setattr(retrieval_module, "train_two_tower", refuse_training)
    again = fit(world, tiny_config, cache_dir, seqs=build_sequences(world.log, world.item_ids))
    for name in ARRAYS:
        assert np.array_equal(getattr(again, name), getattr(first, name)), name
    assert np.array_equal(again.tower.recency_weights, first.tower.recency_weights)
    assert np.array_equal(again.tower.text_projection, first.tower.text_projection)
    assert again.info == first.info  # validation numbers and training key included


def _events(world) -> list[tuple[str, str, float]]:
    log = world.log
    return list(zip(log.user_ids.tolist(), log.item_ids.tolist(), log.timestamps.tolist()))


def _changed(world, change: str) -> Sequences:
    events = _events(world)
    user, item, time = events[0]  # the first event of the first user
    watched = {i for u, i, _ in events if u == user}
    other = next(i for i in world.item_ids if i not in watched)
    if change == "item":
        events[0] = (user, other, time)
    elif change == "removed":
        events = events[1:]
    elif change == "added":
        events.append((user, other, time + 0.5))
    elif change == "reordered":
        events[0] = (user, item, events[1][2] + 0.5)  # the first event now comes after the second
    else:  # "timestamp only": a new time that moves nothing is the same training data
        events[0] = (user, item, time - 100.0)
    n = len(events)
    log = sorted_interaction_log([e[0] for e in events], [e[1] for e in events], [e[2] for e in events],
                                 np.ones(n), ["view"] * n, np.full(n, np.nan))
    return build_sequences(log, world.item_ids)


@pytest.mark.parametrize("change", ["item", "removed", "added", "reordered"])
def test_one_interaction_changed_misses_the_cache(genre_world, tiny_config, cached, monkeypatch, change):
    cache_dir, _ = cached
    world = genre_world()
    monkeypatch.setattr(retrieval_module, "train_two_tower", refuse_training)
    with pytest.raises(TrainingCalled):
        fit(world, tiny_config, cache_dir, seqs=_changed(world, change))


def test_the_key_is_the_training_data_not_the_raw_log(genre_world, tiny_config, cached, monkeypatch):
    cache_dir, first = cached
    world = genre_world()
    monkeypatch.setattr(retrieval_module, "train_two_tower", refuse_training)
    same = fit(world, tiny_config, cache_dir, seqs=_changed(world, "timestamp only"))
    assert np.array_equal(same.index_vectors, first.index_vectors)


@pytest.mark.parametrize("change", ["config", "text"])
def test_other_settings_or_texts_miss_the_cache(genre_world, tiny_config, cached, monkeypatch, change):
    cache_dir, _ = cached
    world = genre_world()
    monkeypatch.setattr(retrieval_module, "train_two_tower", refuse_training)
    text = world.text_vectors.copy()
    if change == "text":
        text[7] = text[8]  # one item's text changed
    config = dataclasses.replace(tiny_config, seed=1) if change == "config" else tiny_config
    with pytest.raises(TrainingCalled):
        fit(world, config, cache_dir, text=text)


@pytest.fixture
def training_keys(monkeypatch) -> list[str]:
    """The model cache keys a build asks for; each build stops (TrainingCalled) once it has one."""
    keys: list[str] = []
    real_key = retrieval_module.training_key

    def recording_key(*args):
        keys.append(real_key(*args))
        raise TrainingCalled("stop once the key is known")
    monkeypatch.setattr(retrieval_module, "training_key", recording_key)
    return keys


def test_the_rankers_feature_names_are_part_of_the_key(genre_world, tiny_config, monkeypatch, training_keys):
    """A cached re-ranker is only reused by code that computes the same features."""
    world = genre_world()
    catalog = retrieval_module.CatalogSignals(np.full(world.n_items, 2000, np.int32), {})
    for names in (retrieval_module.FEATURE_NAMES, (*retrieval_module.FEATURE_NAMES, "one_more")):
        monkeypatch.setattr(retrieval_module, "FEATURE_NAMES", names)
        with pytest.raises(TrainingCalled):
            retrieval_module.two_tower_model(world.text_vectors, world.seqs, tiny_config, None, catalog=catalog,
                                             ranker_config=retrieval_module.RankerConfig())
    assert len(training_keys) == 2 and training_keys[0] != training_keys[1]


def test_the_catalogs_item_inputs_are_part_of_the_key(genre_world, tiny_config, training_keys):
    """A model trained on other genres or years (item-tower inputs) is never reused, nor one
    trained without them; without them, the years still count (the re-ranker's features use them)."""
    world = genre_world()
    years = np.arange(world.n_items, dtype=np.int32) % 9 + 1990
    genres = [(f"g{g}",) for g in world.genre]
    catalogs = [retrieval_module.CatalogSignals(years, {"genres": genres}),
                retrieval_module.CatalogSignals(years, {"genres": genres[::-1]}),
                retrieval_module.CatalogSignals(years[::-1].copy(), {"genres": genres})]
    without = dataclasses.replace(tiny_config, catalog_features=False)
    configs = [tiny_config] * 3 + [without] * 2
    for catalog, config in zip([*catalogs, catalogs[0], catalogs[2]], configs):
        with pytest.raises(TrainingCalled):
            retrieval_module.two_tower_model(world.text_vectors, world.seqs, config, None, catalog=catalog)
    assert len(training_keys) == 5 and len(set(training_keys)) == 5


def test_a_damaged_cache_entry_is_retrained_not_fatal(genre_world, tiny_config, tmp_path, monkeypatch, caplog):
    world = genre_world()
    first = fit(world, tiny_config, tmp_path)
    (entry,) = tmp_path.glob("*.npz")
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])  # a truncated archive
    calls: list[int] = []

    def counting(*args, **kwargs):
        calls.append(1)
        return train_two_tower(*args, **kwargs)
    monkeypatch.setattr(retrieval_module, "train_two_tower", counting)
    again = fit(world, tiny_config, tmp_path)
    assert calls == [1, 1] and "damaged model cache entry" in caplog.text
    assert np.array_equal(again.index_vectors, first.index_vectors)  # retrained, deterministically
