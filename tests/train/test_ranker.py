"""The learned re-ranker's training: cold groups, its own validation numbers, determinism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tastebud.server.features import FEATURE_NAMES, UserContext, candidate_features
from tastebud.train.ranker import PseudoNewItems, RankerConfig, _without, item_signals, pseudo_new_items, \
    split_in_halves, train_ranker
from tastebud.train import retrieval as retrieval_module
from tastebud.train.item_features import catalog_features
from tastebud.train.retrieval import _tower
from tastebud.train.sequences import without_items
from tastebud.train.two_tower import learned_items, train_two_tower
from tastebud.train.validation import holdout_split

CONFIG = RankerConfig(candidates=40, n_estimators=30, min_child_samples=5, early_stopping=10, cold_fraction=0.1)


@pytest.fixture(scope="module")
def setting(genre_world, tiny_config):
    world = genre_world(seed=0)
    holdout = holdout_split(world.seqs)
    trial = train_two_tower(world.text_vectors, holdout.prefix, tiny_config)
    new = pseudo_new_items(holdout.prefix, CONFIG)
    without = train_two_tower(world.text_vectors, without_items(holdout.prefix, new), tiny_config)
    pseudo_new = PseudoNewItems(new, _tower(without), without.index_vectors, without.query_vectors)
    years = np.full(world.n_items, 2000, dtype=np.int32)
    attributes = {"genres": [(f"g{g}",) for g in world.genre.tolist()]}
    return world, holdout, trial, years, attributes, pseudo_new


def train(setting, config=CONFIG, with_pseudo_new=True):
    world, holdout, trial, years, attributes, pseudo_new = setting
    return train_ranker(holdout, _tower(trial), trial.index_vectors, trial.query_vectors, world.text_vectors, years,
                        attributes, config, pseudo_new if with_pseudo_new else None)


def test_the_trainer_exports_text_only_item_vectors(setting):
    trial = setting[2]
    assert trial.text_index_vectors is not None and trial.text_index_vectors.shape == trial.index_vectors.shape
    assert not np.array_equal(trial.text_index_vectors, trial.index_vectors)  # id parts are off in one of them


def test_pseudo_new_items_are_a_seeded_tenth_of_the_items_with_interactions(setting):
    world, holdout, *_ = setting
    new = pseudo_new_items(holdout.prefix, CONFIG)
    present = np.bincount(holdout.prefix.items, minlength=world.n_items) > 0
    assert not new[~present].any() and new.sum() == round(0.1 * present.sum())
    assert np.array_equal(new, pseudo_new_items(holdout.prefix, CONFIG))
    assert not pseudo_new_items(holdout.prefix, dataclasses.replace(CONFIG, cold_fraction=0.0)).any()


def test_pseudo_new_items_are_scored_by_a_model_that_never_saw_them(setting):
    """The model of the cold groups was trained without the pseudo-new items, so their vectors
    are what a build gives real new items, not vectors fitted to their audience."""
    world, holdout, trial, _, _, pseudo_new = setting
    stripped = without_items(holdout.prefix, pseudo_new.items)
    assert not np.isin(np.flatnonzero(pseudo_new.items), stripped.items).any()
    assert not learned_items(stripped)[pseudo_new.items].any() and learned_items(holdout.prefix)[pseudo_new.items].any()
    assert not np.allclose(pseudo_new.index_vectors[pseudo_new.items], trial.index_vectors[pseudo_new.items])


def test_ranker_training_is_deterministic_and_reports_every_history_regime(setting):
    model, metrics = train(setting)
    again, _ = train(setting)
    assert model == again
    by = metrics["by_history"]
    assert by["full"]["groups"] > 0 and by["short"]["groups"] > 0
    assert by["cold"]["groups"] > 0  # users whose held-out tail holds a pseudo-cold item
    for regime in by.values():
        assert 0.0 <= regime["ranker_ndcg@10"] <= 1.0 and 0.0 <= regime["retrieval_recall@10"] <= 1.0
    # Lists of new items get the ranker only where it beat retrieval order on the pseudo-cold groups.
    assert metrics["new_items"] == (by["cold"]["ranker_ndcg@10"] > by["cold"]["retrieval_ndcg@10"])


def test_without_pseudo_new_items_there_are_no_cold_groups(setting):
    _, metrics = train(setting, with_pseudo_new=False)
    assert metrics["by_history"]["cold"]["groups"] == 0
    assert metrics["new_items"] is False  # never validated on new items: never used on them


def test_pseudo_cold_items_look_like_new_items_to_the_features(setting):
    """An item made pseudo-cold has exactly the features of an item nobody interacted with."""
    world, holdout, trial, years, attributes, pseudo_new = setting
    signals = item_signals(holdout.prefix, years, attributes)
    warm = np.flatnonzero(signals.popularity > 0)
    cold = np.zeros(world.n_items, dtype=bool)
    cold[warm[:10]] = True
    blanked = _without(signals, cold)
    assert np.all(blanked.popularity[cold] == 0) and np.array_equal(blanked.popularity[~cold], signals.popularity[~cold])
    for table in (blanked.cooccurrence, blanked.ease):
        assert not cold[table.ids[table.ids >= 0]].any()
    assert (signals.ease.ids[:, 0] >= 0).any()  # the tables were not empty to begin with
    history = warm[-5:]
    context = UserContext(history, np.ones(5, np.float32), world.text_vectors[history],
                          trial.query_vectors[history].mean(axis=0))
    rows = warm[:10].astype(np.int64)
    f = candidate_features(blanked, context, rows, np.zeros(10, np.float32), pseudo_new.index_vectors[rows],
                           world.text_vectors[rows])
    names = list(FEATURE_NAMES)
    assert np.all(f[:, names.index("has_interactions")] == 0)
    assert np.all(f[:, names.index("knn_mean")] == 0) and np.all(f[:, names.index("knn_max")] == 0)
    assert np.all(f[:, names.index("ease")] == 0) and np.all(f[:, names.index("ease_recency")] == 0)


def test_a_build_scores_its_pseudo_new_items_with_a_model_trained_without_them(genre_world, tiny_config,
                                                                                 monkeypatch):
    """What the build hands the ranker: the validation model retrained on the prefix minus the
    pseudo-new items (the same weights as training that by hand: training is deterministic)."""
    world = genre_world(seed=0)
    handed: list[PseudoNewItems | None] = []

    def recording(*args, **kwargs):
        handed.append(args[8])
        return None, {"used": False}
    monkeypatch.setattr(retrieval_module, "train_ranker", recording)
    catalog = retrieval_module.CatalogSignals(np.arange(world.n_items, dtype=np.int32) % 7 + 1990, {})
    retrieval_module.two_tower_model(world.text_vectors, world.seqs, tiny_config, None, catalog=catalog,
                                     ranker_config=CONFIG)
    pseudo_new = handed[0]
    assert pseudo_new is not None and pseudo_new.items.any()
    prefix = holdout_split(world.seqs).prefix
    np.testing.assert_array_equal(pseudo_new.items, pseudo_new_items(prefix, CONFIG))
    by_hand = train_two_tower(world.text_vectors, without_items(prefix, pseudo_new.items), tiny_config,
                              item_features=catalog_features(catalog.attributes, catalog.years))
    np.testing.assert_array_equal(pseudo_new.index_vectors, by_hand.index_vectors)
    np.testing.assert_array_equal(pseudo_new.query_vectors, by_hand.query_vectors)


def test_split_in_halves_gives_two_disjoint_seeded_halves():
    items = np.zeros(50, dtype=bool)
    items[[1, 4, 9, 16, 25, 36, 49]] = True
    halves = split_in_halves(items, seed=3)
    assert not (halves[False] & halves[True]).any()
    assert np.array_equal(halves[False] | halves[True], items)
    assert halves[True].sum() == 3 and halves[False].sum() == 4
    assert all(np.array_equal(halves[k], split_in_halves(items, seed=3)[k]) for k in (False, True))


def test_training_and_validation_users_rank_disjoint_pseudo_new_items(setting, monkeypatch):
    """Shared items would let the ranker learn which new items the held-out period liked and
    score that lift on its validation users, which no real new release gets."""
    from tastebud.train import ranker as ranker_module

    restricts = []
    real = ranker_module._user_rows

    def recording(*args, restrict=None, **kwargs):
        if restrict is not None:
            restricts.append(restrict.copy())
        return real(*args, restrict=restrict, **kwargs)

    monkeypatch.setattr(ranker_module, "_user_rows", recording)
    train(setting)
    distinct = {m.tobytes(): m for m in restricts}
    assert len(distinct) == 2
    first, second = distinct.values()
    assert not (first & second).any()
    assert np.array_equal(first | second, setting[5].items)


def test_a_ranker_that_loses_on_validation_is_not_published_unless_asked(setting, monkeypatch):
    """The publish rule: beat retrieval order on the validation users, or ``always_publish``."""
    import lightgbm

    # A ranker that reverses retrieval order (scores the worst-ranked candidate highest) loses.
    monkeypatch.setattr(lightgbm.Booster, "predict", lambda self, x, **kw: x[:, FEATURE_NAMES.index("retrieval_rank")])
    model, metrics = train(setting)
    assert model is None and not metrics["beats_retrieval"] and not metrics["used"]
    model, metrics = train(setting, dataclasses.replace(CONFIG, always_publish=True))
    assert model is not None and not metrics["beats_retrieval"] and metrics["used"]
