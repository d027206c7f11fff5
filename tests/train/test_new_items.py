"""New items' vectors: their own id-free vector blended with their neighbours' learned ones."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tastebud.errors import InvalidInputError
from tastebud.train.item_features import catalog_features
from tastebud.train.new_items import neighbour_blended_vectors
from tastebud.train.sequences import Sequences
from tastebud.train.two_tower import TwoTowerConfig, learned_items, train_two_tower


def _case():
    """Rows 0-2 known, row 3 new. Text: row 3 is nearest row 0 (cos 0.8), then row 1 (0.6);
    row 2 points the other way (cos -1 with row 0), so it never counts."""
    text = np.array([[1, 0], [0, 1], [-1, 0], [0.8, 0.6]], dtype=np.float32)
    vectors = np.array([[1, 2, 10], [3, 4, 20], [5, 6, 30], [7, 8, 40]], dtype=np.float32)  # last column: bias
    new = np.array([False, False, False, True])
    return text, vectors, new, ~new


def test_a_new_item_takes_the_similarity_weighted_mean_of_its_neighbours_and_keeps_its_bias():
    text, vectors, new, known = _case()
    out = neighbour_blended_vectors(text, vectors, new, known, neighbours=2, blend=0.5)
    neighbour_mean = (0.8 * vectors[0, :2] + 0.6 * vectors[1, :2]) / 1.4
    np.testing.assert_allclose(out[3, :2], 0.5 * vectors[3, :2] + 0.5 * neighbour_mean, rtol=1e-6)
    assert out[3, 2] == 40  # the bias (popularity prior) stays the item's own
    np.testing.assert_array_equal(out[:3], vectors[:3])  # known items are untouched
    assert out is not vectors and np.array_equal(vectors[3], [7, 8, 40])  # a copy: the input is kept


def test_neighbours_with_negative_similarity_weigh_nothing():
    text, vectors, new, known = _case()
    everyone = neighbour_blended_vectors(text, vectors, new, known, neighbours=3, blend=1.0)
    nearest_two = neighbour_blended_vectors(text, vectors, new, known, neighbours=2, blend=1.0)
    np.testing.assert_allclose(everyone, nearest_two, rtol=1e-6)


def test_nothing_changes_when_it_is_off_or_has_nothing_to_go_by():
    text, vectors, new, known = _case()
    for kwargs in ({"neighbours": 0, "blend": 0.5}, {"neighbours": 2, "blend": 0.0}):
        np.testing.assert_array_equal(neighbour_blended_vectors(text, vectors, new, known, **kwargs), vectors)
    nobody_known = np.zeros(4, dtype=bool)
    np.testing.assert_array_equal(neighbour_blended_vectors(text, vectors, new, nobody_known, 2, 0.5), vectors)
    # A new item is never its own neighbour, even when the caller marks it known too.
    np.testing.assert_array_equal(neighbour_blended_vectors(text, vectors, new, np.ones(4, bool), 1, 1.0)[3, :2],
                                  vectors[0, :2])


def test_each_of_several_new_items_gets_its_own_neighbours_and_one_with_none_keeps_its_vector():
    """Rows 0-1 known; row 2 new near row 0, row 3 new near row 1, row 4 new pointing away from
    both (cosine < 0), row 5 new with an all-zero text vector. Blocks of one row each too."""
    text = np.array([[1, 0], [0, 1], [1, 0.1], [0.1, 1], [-1, -1], [0, 0]], dtype=np.float32)
    vectors = np.arange(18, dtype=np.float32).reshape(6, 3)
    new = np.array([False, False, True, True, True, True])
    for block in (4096, 1):
        out = neighbour_blended_vectors(text, vectors, new, ~new, neighbours=1, blend=1.0, block=block)
        np.testing.assert_array_equal(out[2, :2], vectors[0, :2])
        np.testing.assert_array_equal(out[3, :2], vectors[1, :2])
        np.testing.assert_array_equal(out[4:], vectors[4:])  # nothing close: their own vectors
        np.testing.assert_array_equal(out[:, 2], vectors[:, 2])


def test_an_item_only_ever_first_in_a_history_is_not_learned():
    """Rows: user a watched 0 then 1, user b watched 2 then 1; item 2 is only ever first, item 3
    never watched. Only item 1 was ever a next item."""
    seqs = Sequences(["a", "b"], np.array([0, 2, 4]), np.array([0, 1, 2, 1]), 4)
    np.testing.assert_array_equal(learned_items(seqs), [False, True, False, False])
    empty_user = Sequences(["a", "b", "c"], np.array([0, 0, 2, 2]), np.array([3, 0]), 4)
    np.testing.assert_array_equal(learned_items(empty_user), [True, False, False, False])


def test_learned_items_are_the_ones_that_were_someones_next_item(genre_world):
    world = genre_world(seed=0)
    learned = learned_items(world.seqs)
    firsts = {int(world.seqs.of(u)[0]) for u in range(len(world.seqs))}
    later = {int(i) for u in range(len(world.seqs)) for i in world.seqs.of(u)[1:]}
    assert set(np.flatnonzero(learned).tolist()) == later
    assert not learned[world.cold].any()
    assert firsts - later == set(np.flatnonzero(~learned).tolist()) - set(world.cold.tolist())


def test_training_blends_exactly_the_items_it_has_not_learned(genre_world, tiny_config):
    """The published vectors of never-next items are their text-only vectors blended with their
    neighbours'; blend 0 gives the text-only vectors themselves, and learned items never change."""
    world = genre_world(seed=0)
    blended = train_two_tower(world.text_vectors, world.seqs, tiny_config)
    plain = train_two_tower(world.text_vectors, world.seqs, dataclasses.replace(tiny_config, new_item_blend=0.0))
    learned = learned_items(world.seqs)
    np.testing.assert_array_equal(plain.index_vectors[~learned], plain.text_index_vectors[~learned])
    np.testing.assert_array_equal(blended.index_vectors[learned], plain.index_vectors[learned])
    expected = neighbour_blended_vectors(world.text_vectors, plain.index_vectors, ~learned, learned,
                                         tiny_config.new_item_neighbours, tiny_config.new_item_blend)
    np.testing.assert_allclose(blended.index_vectors, expected, rtol=1e-6, atol=1e-7)
    assert not np.allclose(blended.index_vectors[world.cold], plain.index_vectors[world.cold])


def _noise_text_with_genre_columns(world):
    """Text vectors that say nothing (random unit vectors) and one catalog column per genre."""
    noise = np.random.default_rng(7).standard_normal(world.text_vectors.shape).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    attributes = {"genres": [(f"g{g}",) for g in world.genre]}
    return noise, catalog_features(attributes, np.full(world.n_items, 2000, np.int32), min_items=1)


def test_neighbours_are_found_by_the_item_towers_inputs_or_by_text_alone(genre_world, tiny_config):
    """By default a new item's neighbours are its nearest items by text *and* catalog columns;
    ``new_item_neighbour_space="text"`` uses the text alone. Training wires each to
    ``neighbour_blended_vectors`` with that space."""
    assert TwoTowerConfig().new_item_neighbour_space == "inputs"
    world = genre_world(seed=0)
    noise, features = _noise_text_with_genre_columns(world)
    learned = learned_items(world.seqs)
    plain = train_two_tower(noise, world.seqs, dataclasses.replace(tiny_config, new_item_blend=0.0),
                            item_features=features)
    for space, rows in (("inputs", np.concatenate([noise, features], axis=1)), ("text", noise)):
        config = dataclasses.replace(tiny_config, new_item_neighbour_space=space)
        blended = train_two_tower(noise, world.seqs, config, item_features=features)
        expected = neighbour_blended_vectors(rows, plain.index_vectors, ~learned, learned,
                                             config.new_item_neighbours, config.new_item_blend)
        np.testing.assert_allclose(blended.index_vectors, expected, rtol=1e-6, atol=1e-7)


def test_with_catalog_columns_a_new_item_borrows_from_its_own_genre_even_when_its_text_says_nothing(
        genre_world, tiny_config):
    """Blend 1 (the new items' vectors are their neighbours' mean alone): by the item tower's
    inputs each cold item is nearest the learned mean of its own genre; by noise text it is not."""
    world = genre_world(seed=0)
    noise, features = _noise_text_with_genre_columns(world)
    learned = learned_items(world.seqs)

    def own_genre_share(space: str) -> float:
        config = dataclasses.replace(tiny_config, new_item_blend=1.0, new_item_neighbour_space=space)
        vectors = train_two_tower(noise, world.seqs, config, item_features=features).index_vectors[:, :-1]
        means = np.stack([vectors[learned & (world.genre == g)].mean(axis=0) for g in range(world.genre.max() + 1)])
        nearest = np.argmax(vectors[world.cold] @ means.T / np.linalg.norm(means, axis=1), axis=1)
        return float(np.mean(nearest == world.genre[world.cold]))

    assert own_genre_share("inputs") == 1.0
    assert own_genre_share("text") <= 0.6


def test_an_unknown_neighbour_space_is_refused():
    with pytest.raises(InvalidInputError, match="new_item_neighbour_space must be one of inputs, text, got 'ids'"):
        TwoTowerConfig(new_item_neighbour_space="ids")
