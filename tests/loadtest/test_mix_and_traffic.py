"""The traffic mix file and the requests made from it."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from tastebud.errors import InvalidInputError
from tastebud.loadtest.mix import DEFAULT_MIX, TrafficMix
from tastebud.loadtest.traffic import Population, make_requests, zipf_picks

POPULATION = Population(user_ids=[f"u{i}" for i in range(500)], item_ids=[f"i{i}" for i in range(300)],
                        titles=[f"Title {i}" for i in range(300)],
                        attribute_values={"genres": ["Drama", "Jazz"]}, years=(1950, 2020))


def test_the_default_mix_file_loads_and_its_shares_sum_to_one():
    mix = TrafficMix.from_toml(DEFAULT_MIX)
    assert set(mix.shares()) == {"recommend", "similar", "search", "record"}
    assert sum(mix.shares().values()) == pytest.approx(1.0)


@pytest.mark.parametrize("text, message", [
    ("[weights]\nrecomend = 1.0\n", "weights.recomend: unknown RPC"),
    ("[weights]\nrecommend = -1\n", "weights.recommend: must be a number >= 0"),
    ("[weights]\nrecommend = 0\n", "at least one RPC"),
    ("[recommend]\nk = 0\n", "recommend.k: must be within 1..1000"),
    ("[recommend]\nfilter_share = 1.5\n", "recommend.filter_share: must be within 0..1"),
    ("[recommend]\nfiltr_share = 0.5\n", "recommend.filtr_share: unknown key"),
    ("[recommend]\nk = \"ten\"\n", "recommend.k: must be int"),
    ("[searchh]\nk = 3\n", "unknown section(s) ['searchh']"),
    ("[weights\n", "mix.toml"),
])
def test_bad_mix_files_are_refused_naming_the_key(tmp_path, text, message):
    path = tmp_path / "mix.toml"
    path.write_text(text)
    with pytest.raises(InvalidInputError) as err:
        TrafficMix.from_toml(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_requests_follow_the_mix_and_are_deterministic():
    mix = TrafficMix.from_dict({"weights": {"recommend": 0.7, "similar": 0.2, "search": 0.1},
                                "recommend": {"filter_share": 0.5, "diversity_share": 0.5, "exclude_share": 0.5}})
    requests = make_requests(mix, POPULATION, 4000, seed=5)
    kinds = Counter(rpc for rpc, _ in requests)
    assert abs(kinds["recommend"] / 4000 - 0.7) < 0.04 and abs(kinds["search"] / 4000 - 0.1) < 0.03
    recommends = [r for rpc, r in requests if rpc == "recommend"]
    assert all(r.user_id in POPULATION.user_ids and r.k == 10 for r in recommends)
    with_filter = sum(r.HasField("filter") for r in recommends) / len(recommends)
    diverse = sum(r.diversity > 0 for r in recommends) / len(recommends)
    excluding = sum(len(r.exclude_items) > 0 for r in recommends) / len(recommends)
    assert all(abs(share - 0.5) < 0.05 for share in (with_filter, diverse, excluding))
    again = make_requests(mix, POPULATION, 4000, seed=5)
    assert [r.SerializeToString() for _, r in again] == [r.SerializeToString() for _, r in requests]


def test_zipf_users_are_skewed_but_reach_the_tail(rng):
    picks = zipf_picks(1000, 50_000, 1.1, rng)
    counts = np.sort(np.bincount(picks, minlength=1000))[::-1]
    assert counts[0] > 20 * np.median(counts)  # heavy users
    assert (counts > 0).sum() > 600  # and a long tail
    flat = np.bincount(zipf_picks(1000, 50_000, 0.0, rng), minlength=1000)
    assert flat.max() < 3 * flat.mean()  # exponent 0 is uniform


def test_a_mix_with_recommend_needs_users():
    empty = Population([], POPULATION.item_ids, POPULATION.titles, {}, None)
    with pytest.raises(InvalidInputError, match="no users"):
        make_requests(TrafficMix(), empty, 10)
    only_similar = TrafficMix.from_dict({"weights": {"similar": 1.0}})
    assert all(rpc == "similar" for rpc, _ in make_requests(only_similar, empty, 10))
