"""The user-facing read RPCs of issue 6 on a live server: profiles, paging, subscriptions,
impressions kept apart from history, and answers that carry what a card shows."""

from __future__ import annotations

import time

import grpc
import pytest

from tastebud.v1 import recommender_pb2 as pb

from live_server import all_user_ids

WEEK = 7 * 24 * 3600.0


def test_get_user_tells_known_from_new_and_lists_history_newest_first(stub, served) -> None:
    known = stub.GetUser(pb.GetUserRequest(user_id="1", history_limit=5), timeout=5)
    history = served.histories.get("1")
    assert known.known and known.history_length == len(history) and known.subscribed
    assert [h.item_id for h in known.history] == [served.items.item_ids[r] for r in history.items[::-1][:5]]
    assert all(a.timestamp >= b.timestamp for a, b in zip(known.history, known.history[1:]))
    new = stub.GetUser(pb.GetUserRequest(user_id="nobody-yet", history_limit=5), timeout=5)
    assert not new.known and new.history_length == 0 and not new.history


def test_list_users_pages_through_everyone_once(stub, served) -> None:
    seen = all_user_ids(stub, page_size=40, timeout=5)
    assert len(seen) == len(set(seen)) and set(served.histories.user_ids()) == set(seen) and len(seen) >= 150


def test_subscriptions_are_kept(stub) -> None:
    assert stub.SetSubscription(pb.SetSubscriptionRequest(user_id="5", subscribed=False), timeout=5).subscribed is False
    assert not stub.GetUser(pb.GetUserRequest(user_id="5"), timeout=5).subscribed
    stub.SetSubscription(pb.SetSubscriptionRequest(user_id="5", subscribed=True), timeout=5)
    assert stub.GetUser(pb.GetUserRequest(user_id="5"), timeout=5).subscribed


def test_impressions_are_left_out_when_asked_and_are_not_history(stub) -> None:
    user = "impression-user"
    first = stub.Recommend(pb.RecommendRequest(user_id=user, k=10), timeout=5)
    shown = [i.item_id for i in first.items[:4]]
    stub.RecordInteractions(pb.RecordInteractionsRequest(interactions=[
        pb.Interaction(user_id=user, item_id=i, event="impression") for i in shown]), timeout=5)
    assert not stub.GetUser(pb.GetUserRequest(user_id=user), timeout=5).known  # shown is not watched
    again = stub.Recommend(pb.RecommendRequest(user_id=user, k=10), timeout=5)
    assert [i.item_id for i in again.items] == [i.item_id for i in first.items]
    fresh = stub.Recommend(pb.RecommendRequest(user_id=user, k=10, exclude_shown_within_seconds=WEEK), timeout=5)
    assert not set(shown) & {i.item_id for i in fresh.items} and len(fresh.items) == 10
    old = pb.Interaction(user_id=user, item_id=first.items[5].item_id, event="impression",
                         timestamp=time.time() - 2 * WEEK)
    stub.RecordInteractions(pb.RecordInteractionsRequest(interactions=[old]), timeout=5)
    lately = stub.Recommend(pb.RecommendRequest(user_id=user, k=10, exclude_shown_within_seconds=WEEK), timeout=5)
    assert first.items[5].item_id in {i.item_id for i in lately.items}  # shown two weeks ago: allowed again


def test_answers_carry_year_and_attributes_and_info_the_newest_year(stub, served) -> None:
    answer = stub.Recommend(pb.RecommendRequest(user_id="1", k=5), timeout=5)
    for item in answer.items:
        row = served.items.row_of(item.item_id)
        assert item.year == max(0, int(served.items.years[row]))
        genres = {a.attribute: list(a.values) for a in item.attributes}.get("genres")
        assert genres == list(served.items.attributes["genres"][row])
    info = stub.GetIndexInfo(pb.GetIndexInfoRequest(), timeout=5)
    assert info.newest_year == int(served.items.years.max())


@pytest.mark.parametrize("call, field", [
    (lambda s: s.GetUser(pb.GetUserRequest(user_id=""), timeout=5), "user_id"),
    (lambda s: s.GetUser(pb.GetUserRequest(user_id="1", history_limit=5000), timeout=5), "history_limit"),
    (lambda s: s.ListUsers(pb.ListUsersRequest(page_size=-1), timeout=5), "page_size"),
    (lambda s: s.ListUsers(pb.ListUsersRequest(page_token="abc"), timeout=5), "page_token"),
    (lambda s: s.SetSubscription(pb.SetSubscriptionRequest(user_id=" "), timeout=5), "user_id"),
    (lambda s: s.Recommend(pb.RecommendRequest(user_id="1", k=5, exclude_shown_within_seconds=-1), timeout=5),
     "exclude_shown_within_seconds"),
])
def test_bad_values_are_invalid_argument_naming_the_field(stub, call, field) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        call(stub)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in caught.value.details()
