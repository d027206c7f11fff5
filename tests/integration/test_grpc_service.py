"""Every RPC of a real server over a real demo index, checked against exact references."""

from __future__ import annotations

import collections

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tastebud.index.load import open_index
from tastebud.index.merge import brute_force_topk
from tastebud.v1 import recommender_pb2 as pb

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def index(demo_index, encoder):
    return open_index(demo_index, fingerprint=encoder.fingerprint, dimension=encoder.dimension)


def space(index, kind: str) -> np.ndarray:
    """float32[n_items, d] of one kind of vector of the served index, by global id."""
    parts = {shard.shard: shard for shard in index.shards}
    first = parts[0].vectors_sync(np.flatnonzero(index.items.shard == 0)[:1], kind)
    out = np.zeros((index.manifest.n_items, first.shape[1]), dtype=np.float32)
    for s, shard in parts.items():
        rows = np.flatnonzero(index.items.shard == s)
        out[rows] = shard.vectors_sync(rows, kind)
    return out


@pytest.fixture(scope="module")
def vectors(index) -> np.ndarray:
    return space(index, "item")


@pytest.fixture(scope="module")
def query_vectors(index) -> np.ndarray:
    return space(index, "query")


@pytest.fixture(scope="module")
def text_vectors(index) -> np.ndarray:
    return space(index, "text")


def ids_of(response: pb.RecommendResponse) -> list[str]:
    return [i.item_id for i in response.items]


def main_genre(index, item_id: str) -> str:
    return index.items.attributes["genres"][index.items.row_of(item_id)][0]


def test_health_is_serving(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "tastebud.v1.Recommender"):
        status = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT).status
        assert status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_service(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                          timeout=TIMEOUT)
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert "tastebud.v1.Recommender" in names
    assert "grpc.health.v1.Health" in names


def test_index_info(stub, index):
    info = stub.GetIndexInfo(pb.GetIndexInfoRequest(), timeout=TIMEOUT)
    assert info.version == index.manifest.version
    assert info.items == len(index.items) and info.shards == 3 and info.dimension == 384
    assert info.users == len(index.histories) and info.index_type == "Flat"
    assert "genres" in info.filter_attributes


def test_similar_items_equal_brute_force_and_never_the_item(stub, index, vectors, query_vectors):
    for item_id in ("1", "17", "250"):
        response = stub.SimilarItems(pb.SimilarItemsRequest(item_id=item_id, k=10), timeout=TIMEOUT)
        row = index.items.row_of(item_id)
        allowed = np.ones(len(vectors), dtype=bool)
        allowed[row] = False
        query = index.tower.query(index.tower.user_vector(query_vectors[[row]]))
        scores, rows = brute_force_topk(query[None, :], vectors, 10, allowed)
        expected = [index.items.item_ids[r] for r in rows[0]]
        assert item_id not in ids_of(response)
        assert ids_of(response) == expected
        np.testing.assert_allclose([i.score for i in response.items], scores[0], atol=1e-5)
        assert all(i.because_item_id == item_id for i in response.items)


def test_search_equals_brute_force_of_the_encoded_query(stub, index, text_vectors, encoder):
    text = "a lonely astronaut drifting between the stars"
    response = stub.SearchItems(pb.SearchItemsRequest(text=text, k=10), timeout=TIMEOUT)
    _, rows = brute_force_topk(encoder.encode_queries([text]), text_vectors, 10)
    assert ids_of(response) == [index.items.item_ids[r] for r in rows[0]]


def test_search_by_title_finds_the_item_first(stub, index):
    for row in (3, 42, 333):
        title = index.items.titles[row]
        response = stub.SearchItems(pb.SearchItemsRequest(text=title, k=5), timeout=TIMEOUT)
        assert index.items.item_ids[row] in ids_of(response)[:3], title


def test_recommend_equals_the_reference_ranking(stub, index, vectors, query_vectors):
    """The served list is the exact ranking of [u, 1] . [p_j, b_j] over all unseen items."""
    assert index.manifest.retrieval["kind"] == "two_tower"
    tower = index.tower
    for user in ("3", "10", "77"):
        history = index.histories.get(user)
        recent = history.items[-tower.history_length:]
        query = tower.query(tower.user_vector(query_vectors[recent], history.weights[-tower.history_length:]))
        scores = vectors @ query
        scores[np.unique(history.items)] = -np.inf
        expected = [index.items.item_ids[r] for r in np.lexsort((np.arange(len(scores)), -scores))[:10]]
        response = stub.Recommend(pb.RecommendRequest(user_id=user, k=10), timeout=TIMEOUT)
        assert ids_of(response) == expected
        seen = {index.items.item_ids[r] for r in history.items.tolist()}
        assert not seen & set(ids_of(response))
        assert all(i.reason.startswith("because you watched ") for i in response.items)


def test_single_genre_user_gets_mostly_that_genre(stub, index):
    history = index.histories.get("1")
    genres = collections.Counter(index.items.attributes["genres"][r][0] for r in history.items.tolist())
    favourite, count = genres.most_common(1)[0]
    assert count / len(history) >= 0.9
    response = stub.Recommend(pb.RecommendRequest(user_id="1", k=10), timeout=TIMEOUT)
    got = [main_genre(index, i) for i in ids_of(response)]
    # "Mostly": a majority, and more than any other genre (the learned model also brings in
    # what this user's co-watchers like, e.g. space documentaries for a sci-fi fan).
    assert sum(g == favourite for g in got) > len(got) // 2, got
    assert collections.Counter(got).most_common(1)[0][0] == favourite


def test_reason_names_the_history_item_that_adds_most(stub, index, vectors, query_vectors):
    response = stub.Recommend(pb.RecommendRequest(user_id="5", k=5), timeout=TIMEOUT)
    history = index.histories.get("5").items[-index.tower.history_length:]
    for item in response.items:
        because = index.items.row_of(item.because_item_id)
        assert because in history.tolist()
        share = index.tower.contributions(query_vectors[history], vectors[[index.items.row_of(item.item_id)], :-1])[0]
        assert history[int(np.argmax(share))] == because
        assert item.reason == f"because you watched {index.items.titles[because]}"


def test_filters_and_restrict_to_are_honoured(stub, index):
    f = pb.Filter(include=[pb.AttributeValues(attribute="genres", values=["Comedy", "Drama"])], year_min=1990,
                  year_max=2010)
    response = stub.Recommend(pb.RecommendRequest(user_id="2", k=20, filter=f), timeout=TIMEOUT)
    assert response.items
    for item in response.items:
        row = index.items.row_of(item.item_id)
        assert {"Comedy", "Drama"} & set(index.items.attributes["genres"][row])
        assert 1990 <= index.items.years[row] <= 2010
    only = ["5", "6", "7", "8", "9"]
    response = stub.Recommend(pb.RecommendRequest(user_id="2", k=3, restrict_to=only, include_seen=True),
                              timeout=TIMEOUT)
    assert len(response.items) == 3 and set(ids_of(response)) <= set(only)


def test_diversity_changes_the_list_and_keeps_k(stub):
    plain = stub.Recommend(pb.RecommendRequest(user_id="1", k=10), timeout=TIMEOUT)
    diverse = stub.Recommend(pb.RecommendRequest(user_id="1", k=10, diversity=0.9), timeout=TIMEOUT)
    assert len(diverse.items) == 10 and len(set(ids_of(diverse))) == 10
    assert ids_of(plain) != ids_of(diverse)


def test_cold_user_gets_the_learned_prior_not_an_error(stub, index, vectors):
    response = stub.Recommend(pb.RecommendRequest(user_id="never-seen", k=10), timeout=TIMEOUT)
    prior = vectors[:, -1]
    expected = [index.items.item_ids[r] for r in np.lexsort((np.arange(len(prior)), -prior))[:10]]
    assert ids_of(response) == expected
    assert all(i.reason == "popular right now" for i in response.items)
    # The learned prior is a popularity prior: most of these are among the 15% most watched.
    popular = {index.items.item_ids[r] for r in index.items.popularity_order()[: len(prior) * 15 // 100]}
    assert len(set(expected) & popular) >= 6
    anonymous = stub.Recommend(pb.RecommendRequest(k=5), timeout=TIMEOUT)
    assert len(anonymous.items) == 5


def test_request_history_personalises_a_cold_user(stub, index):
    sci = [i for i, g in zip(index.items.item_ids, index.items.attributes["genres"]) if g[0] == main_genre(index, "1")]
    response = stub.Recommend(pb.RecommendRequest(user_id="nobody", history=sci[:5], k=10), timeout=TIMEOUT)
    assert not set(sci[:5]) & set(ids_of(response))
    assert sum(main_genre(index, i) == main_genre(index, "1") for i in ids_of(response)) >= 6


def test_recorded_interactions_change_the_next_answer(stub, index):
    user = "recorder-1"
    before = stub.Recommend(pb.RecommendRequest(user_id=user, k=10), timeout=TIMEOUT)
    genre = main_genre(index, "1")
    picks = [i for i, g in zip(index.items.item_ids, index.items.attributes["genres"]) if g[0] == genre][:4]
    reply = stub.RecordInteractions(pb.RecordInteractionsRequest(
        interactions=[pb.Interaction(user_id=user, item_id=i, event="view") for i in picks]), timeout=TIMEOUT)
    assert reply.recorded == 4
    after = stub.Recommend(pb.RecommendRequest(user_id=user, k=10), timeout=TIMEOUT)
    assert ids_of(after) != ids_of(before)
    assert not set(picks) & set(ids_of(after))
    assert all(i.because_item_id in picks for i in after.items)


@pytest.mark.parametrize("request_, field", [
    (pb.RecommendRequest(user_id="1", k=0), "k"),
    (pb.RecommendRequest(user_id="1", k=1001), "k"),
    (pb.RecommendRequest(user_id="1", k=5, history=["1", "no-such-item"]), "history[1]"),
    (pb.RecommendRequest(user_id="1", k=5, restrict_to=["nope"]), "restrict_to[0]"),
    (pb.RecommendRequest(user_id="1", k=5, diversity=1.5), "diversity"),
    (pb.RecommendRequest(user_id="1", k=5, filter=pb.Filter(
        include=[pb.AttributeValues(attribute="colour", values=["red"])])), "filter.include[0].attribute"),
    (pb.RecommendRequest(user_id="1", k=5, filter=pb.Filter(
        exclude=[pb.AttributeValues(attribute="genres")])), "filter.exclude[0].values"),
    (pb.RecommendRequest(user_id="1", k=5, filter=pb.Filter(year_min=2000, year_max=1990)), "filter.year_min"),
])
def test_bad_recommend_requests_are_invalid_argument(stub, request_, field):
    with pytest.raises(grpc.RpcError) as err:
        stub.Recommend(request_, timeout=TIMEOUT)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in err.value.details()


@pytest.mark.parametrize("method, request_, field", [
    ("SimilarItems", pb.SimilarItemsRequest(item_id="no-such-item", k=5), "item_id"),
    ("SimilarItems", pb.SimilarItemsRequest(item_id="1", k=-1), "k"),
    ("SearchItems", pb.SearchItemsRequest(text="   ", k=5), "text"),
    ("SearchItems", pb.SearchItemsRequest(text="x", k=0), "k"),
    ("RecordInteractions", pb.RecordInteractionsRequest(), "interactions"),
    ("RecordInteractions", pb.RecordInteractionsRequest(
        interactions=[pb.Interaction(user_id="u", item_id="nope")]), "interactions[0].item_id"),
    ("RecordInteractions", pb.RecordInteractionsRequest(
        interactions=[pb.Interaction(user_id="", item_id="1")]), "interactions[0].user_id"),
    ("RecordInteractions", pb.RecordInteractionsRequest(
        interactions=[pb.Interaction(user_id="u", item_id="1", weight=-2)]), "interactions[0].weight"),
])
def test_bad_requests_are_invalid_argument(stub, method, request_, field):
    with pytest.raises(grpc.RpcError) as err:
        getattr(stub, method)(request_, timeout=TIMEOUT)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in err.value.details()


def test_a_rejected_batch_stores_nothing(stub):
    user = "all-or-nothing"
    bad = pb.RecordInteractionsRequest(interactions=[pb.Interaction(user_id=user, item_id="1"),
                                                     pb.Interaction(user_id=user, item_id="missing")])
    with pytest.raises(grpc.RpcError):
        stub.RecordInteractions(bad, timeout=TIMEOUT)
    cold = stub.Recommend(pb.RecommendRequest(user_id=user, k=3), timeout=TIMEOUT)
    assert all(i.reason == "popular right now" for i in cold.items)
