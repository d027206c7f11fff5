"""The two-tower trainer: seeded determinism, the same pooling as serving, cold items from text."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tastebud.errors import InvalidInputError
from tastebud.train import retrieval as retrieval_module
from tastebud.train.item_features import catalog_features
from tastebud.train.retrieval import RetrievalModel, fit_retrieval
from tastebud.train.sequences import Sequences
from tastebud.train.two_tower import TwoTowerConfig, TwoTowerWeights, train_two_tower

ARRAYS = ("index_vectors", "query_vectors", "recency_weights", "text_projection")


@pytest.fixture(scope="module")
def world(genre_world):
    return genre_world(seed=0)


@pytest.fixture(scope="module")
def trained(world, tiny_config) -> TwoTowerWeights:
    return train_two_tower(world.text_vectors, world.seqs, tiny_config)


@pytest.fixture(scope="module")
def fitted(world, tiny_config) -> tuple[RetrievalModel, TwoTowerWeights]:
    """The model a build would publish, with the trainer's own weights of it (the last call:
    the first one trains the validation model)."""
    produced: list[TwoTowerWeights] = []

    def recording(*args, **kwargs):
        produced.append(train_two_tower(*args, **kwargs))
        return produced[-1]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(retrieval_module, "train_two_tower", recording)
        model = fit_retrieval("two_tower", world.text_vectors, world.seqs, np.zeros(world.n_items, np.float32),
                              tiny_config, cache_dir=None)
    assert len(produced) == 2
    return model, produced[-1]


def test_weights_have_the_documented_shapes(world, trained, tiny_config):
    n, text_dim, k = world.n_items, world.text_vectors.shape[1], tiny_config.members
    d = k * tiny_config.dim
    assert k > 1  # the default: an ensemble (the single model's shapes are checked below)
    shapes = [getattr(trained, name).shape for name in ARRAYS]
    assert shapes == [(n, d + 1), (n, d), (k, tiny_config.history), (text_dim, d)]
    assert all(getattr(trained, name).dtype == np.float32 for name in ARRAYS)
    assert np.all(trained.recency_weights > 0)  # softplus: every position counts, none negatively
    assert np.isfinite(trained.final_loss) and all(np.isfinite(getattr(trained, a)).all() for a in ARRAYS)


def test_one_member_has_the_single_model_shapes(world, tiny_config):
    one = train_two_tower(world.text_vectors, world.seqs, dataclasses.replace(tiny_config, members=1))
    n, d, text_dim = world.n_items, tiny_config.dim, world.text_vectors.shape[1]
    assert [getattr(one, name).shape for name in ARRAYS] == [(n, d + 1), (n, d), (tiny_config.history,), (text_dim, d)]


def test_an_ensemble_serves_the_mean_of_its_members_scores(world, trained, tiny_config):
    """One search over the ensemble's vectors ranks by the members' mean score: each member is
    the model trained alone with seed + k, pooled by its own recency weights."""
    members = [train_two_tower(world.text_vectors, world.seqs, dataclasses.replace(tiny_config, members=1, seed=k))
               for k in range(tiny_config.members)]
    assert not np.allclose(members[0].recency_weights, members[1].recency_weights)
    history = world.seqs.of(3)
    served = _tower(trained)
    ensemble_scores = trained.index_vectors @ served.query(served.user_vector(trained.query_vectors[history[-10:]]))
    alone = []
    for m in members:
        tower = _tower(m)
        alone.append(m.index_vectors @ tower.query(tower.user_vector(m.query_vectors[history[-10:]])))
    np.testing.assert_allclose(ensemble_scores, np.mean(alone, axis=0), rtol=1e-4, atol=1e-5)


def _tower(weights: TwoTowerWeights):
    from tastebud.embed.user_tower import UserTower

    return UserTower(weights.recency_weights, weights.text_projection, normalize=False, taste_weight=1.0)


# --- (a) determinism ------------------------------------------------------------------------

def test_the_same_seed_and_data_give_identical_weights(world, trained, tiny_config):
    again = train_two_tower(world.text_vectors, world.seqs, tiny_config)
    for name in ARRAYS:
        assert np.array_equal(getattr(again, name), getattr(trained, name)), name
    assert again.final_loss == trained.final_loss


def test_another_seed_gives_other_weights(world, trained, tiny_config):
    other = train_two_tower(world.text_vectors, world.seqs, dataclasses.replace(tiny_config, seed=1))
    for name in ("index_vectors", "query_vectors", "text_projection"):
        assert not np.array_equal(getattr(other, name), getattr(trained, name)), name


# --- (b) training pools users exactly as serving does ----------------------------------------

def test_the_served_user_vector_is_the_trained_one(world, fitted, tiny_config):
    """The torch model's pooling (what the loss saw) equals the serving tower over the exported
    query-side vectors, for histories shorter than, as long as, and longer than ``history``."""
    model, final = fitted
    assert model.kind == "two_tower" and np.array_equal(model.query_vectors, final.query_vectors)
    assert np.array_equal(model.index_vectors, final.index_vectors)
    L = model.tower.history_length
    assert L == tiny_config.history
    # Learned weights differ by position, so pooling in the wrong order or window would show.
    assert np.ptp(model.tower.recency_weights) > 0.05 and np.array_equal(model.tower.recency_weights,
                                                                         final.recency_weights)
    rng = np.random.default_rng(3)
    histories = [world.seqs.of(0)[:1], world.seqs.of(1), rng.choice(world.n_items, L, replace=False),
                 rng.choice(world.n_items, 3 * L, replace=False), np.zeros(0, np.int64)]
    for history in histories:
        recent = history[-L:]  # the server keeps the last history_length items
        served = model.tower.user_vector(model.query_vectors[recent])
        np.testing.assert_allclose(served, final.torch_user_vector(history), rtol=1e-5, atol=1e-6)
        scores = model.index_vectors @ model.tower.query(served)  # [u, 1] . [p_j, b_j] = u . p_j + b_j
        np.testing.assert_allclose(scores, model.index_vectors[:, :-1] @ served + model.index_vectors[:, -1],
                                   rtol=1e-5, atol=1e-5)


# --- (c) items nobody interacted with get their vectors from text ----------------------------

def test_cold_items_come_from_their_text(genre_world, tiny_config):
    """Items 0 and 1 are cold and share one text; so do warm items 10 and 11. The cold pair must
    get identical vectors (nothing but text to go by), the warm pair not (their ids count)."""
    world = genre_world(seed=0, duplicate_texts=((0, 1), (10, 11)))
    assert {0, 1} <= set(world.cold.tolist()) and not {10, 11} & set(world.cold.tolist())
    assert not np.isin(world.cold, world.seqs.items).any()
    weights = train_two_tower(world.text_vectors, world.seqs, tiny_config)
    assert np.array_equal(weights.index_vectors[0], weights.index_vectors[1])
    assert np.array_equal(weights.query_vectors[0], weights.query_vectors[1])
    assert not np.array_equal(weights.index_vectors[10], weights.index_vectors[11])


def test_cold_items_rank_for_users_of_their_genre(world, fitted):
    """Served as a build publishes it: for each user, the unwatched items of their genre fill the
    first k places (k = how many there are), cold ones included, above items of other genres."""
    model, _ = fitted
    tower = model.tower
    recall, above, precision = [], [], []
    for u in range(len(world.seqs)):
        history, genre = world.seqs.of(u), world.user_genre[u]
        query = tower.query(tower.user_vector(model.query_vectors[history[-tower.history_length:]]))
        scores = model.index_vectors @ query
        own_cold = world.cold[world.genre[world.cold] == genre]
        other = np.flatnonzero(world.genre != genre)
        above.append(np.mean(scores[own_cold][:, None] > scores[other][None, :]))
        top_cold = world.cold[np.argsort(-scores[world.cold])[: len(own_cold)]]
        precision.append(np.mean(world.genre[top_cold] == genre))  # among cold items only
        scores[history] = -np.inf
        k = int(np.sum(world.genre == genre)) - len(history)
        recall.append(np.mean(np.isin(own_cold, np.argsort(-scores)[:k])))
    # Random ranking: recall ~ k / 110 ~ 0.2, above ~ 0.5, precision ~ 0.25.
    assert np.mean(recall) >= 0.9, np.mean(recall)
    assert np.mean(above) >= 0.98, np.mean(above)
    assert np.mean(precision) >= 0.9, np.mean(precision)


def _cold_genre_precision(world, weights: TwoTowerWeights) -> float:
    """Among cold items only, the share of each user's top picks that are of the user's genre."""
    tower = _tower(weights)
    precision = []
    for u in range(len(world.seqs)):
        history, genre = world.seqs.of(u), world.user_genre[u]
        recent = history[-tower.history_length:]
        scores = weights.index_vectors @ tower.query(tower.user_vector(weights.query_vectors[recent]))
        own = int(np.sum(world.genre[world.cold] == genre))
        top_cold = world.cold[np.argsort(-scores[world.cold])[:own]]
        precision.append(np.mean(world.genre[top_cold] == genre))
    return float(np.mean(precision))


def test_catalog_attributes_place_cold_items_whose_text_says_nothing(genre_world, tiny_config):
    """With text vectors that carry no genre (random), a cold item's genre attribute alone,
    given as an item-tower input, ranks it for users of its genre; without it, chance (0.25).
    A free-text taste has no attributes: the taste projection stays text-sized."""
    world = genre_world(seed=0)
    noise = np.random.default_rng(7).standard_normal(world.text_vectors.shape).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    attributes = {"genres": [(f"g{g}",) for g in world.genre]}
    features = catalog_features(attributes, np.full(world.n_items, 2000, np.int32), min_items=1)
    with_genres = train_two_tower(noise, world.seqs, tiny_config, item_features=features)
    text_only = train_two_tower(noise, world.seqs, tiny_config)
    assert with_genres.text_projection.shape == (noise.shape[1], tiny_config.members * tiny_config.dim)
    assert _cold_genre_precision(world, with_genres) >= 0.9
    assert _cold_genre_precision(world, text_only) <= 0.5
    with pytest.raises(InvalidInputError, match="item features have 3 rows, the catalog 120"):
        train_two_tower(noise, world.seqs, tiny_config, item_features=features[:3])


# --- configuration and input errors ----------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"dim": 0}, "two-tower dim must be within 1..4096, got 0"),
    ({"history": 10_001}, "two-tower history must be within 1..10000, got 10001"),
    ({"threads": -1}, "two-tower threads must be within 0..256, got -1"),
    ({"id_dropout": 1.0}, r"two-tower id_dropout must be within \[0, 1\), got 1.0"),
    ({"learning_rate": 0.0}, "learning_rate must be > 0"),
])
def test_bad_configs_are_refused(kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        TwoTowerConfig(**kwargs)


def test_nothing_to_learn_from_is_refused(tiny_config):
    one_each = Sequences(["a", "b"], np.array([0, 1, 2]), np.array([0, 1]), n_items=3)
    with pytest.raises(InvalidInputError, match="no user has two or more interactions"):
        train_two_tower(np.eye(3, dtype=np.float32), one_each, tiny_config)
