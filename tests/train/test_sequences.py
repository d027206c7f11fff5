"""Training sequences: first occurrence per (user, item), (time, item id) order, an exact fingerprint."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tastebud.ingest.model import InteractionLog, sorted_interaction_log
from tastebud.train.sequences import Sequences, build_sequences, without_items

Event = tuple[str, str, float]  # (user, item id, time)


def log_of(events: list[Event]) -> InteractionLog:
    n = len(events)
    return sorted_interaction_log([e[0] for e in events], [e[1] for e in events], [e[2] for e in events],
                                  np.ones(n), ["view"] * n, np.full(n, np.nan))


def as_dict(seqs: Sequences) -> dict[str, list[int]]:
    return {user: seqs.of(u).tolist() for u, user in enumerate(seqs.user_ids)}


def reference(events: list[Event], item_ids: list[str]) -> dict[str, list[int]]:
    """The rule, in plain Python: per user, events by (time, item id), each item at its first time."""
    out: dict[str, list[int]] = {}
    for user, item, _ in sorted(events, key=lambda e: (e[0], e[2], e[1])):
        rows = out.setdefault(user, [])
        if item_ids.index(item) not in rows:
            rows.append(item_ids.index(item))
    return out


# Rows and ids in different orders, so a tie broken by row instead of by id shows.
ITEMS = ["z", "c", "a", "m"]


def test_first_occurrence_in_time_then_item_id_order():
    events = [("u", "m", 5.0), ("u", "z", 1.0), ("u", "c", 1.0), ("u", "z", 3.0), ("u", "a", 7.0), ("u", "c", 9.0),
              ("v", "a", 2.0)]
    seqs = build_sequences(log_of(events), ITEMS)
    # u: t=1 c then z (ties by id: "c" < "z", although z is row 0), z again at 3 dropped, m, a, c again dropped.
    assert as_dict(seqs) == {"u": [1, 0, 3, 2], "v": [2]}
    assert seqs.user_ids == ["u", "v"] and seqs.offsets.tolist() == [0, 4, 5] and seqs.n_items == 4
    assert len(seqs) == 2 and seqs.items.dtype == np.int64


def test_users_whose_ids_prefix_each_other_keep_their_own_items():
    """("a1", row 2) and ("a", row 12) must not be taken for one (user, item) pair."""
    item_ids = [f"i{k:02d}" for k in range(13)]
    events = [("a1", "i02", 1.0), ("a", "i12", 2.0), ("a", "i03", 3.0), ("a1", "i12", 4.0)]
    assert as_dict(build_sequences(log_of(events), item_ids)) == {"a": [12, 3], "a1": [2, 12]}


def test_no_events_give_no_users():
    seqs = build_sequences(log_of([]), ITEMS)
    assert len(seqs) == 0 and seqs.offsets.tolist() == [0] and len(seqs.items) == 0


events_strategy = st.lists(st.tuples(st.sampled_from(["u1", "u10", "u2", "x"]), st.sampled_from(ITEMS),
                                     st.integers(0, 6).map(float)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(events=events_strategy)
def test_sequences_follow_the_rule(events):
    assert as_dict(build_sequences(log_of(events), ITEMS)) == reference(events, ITEMS)


BASE: list[Event] = [("u1", "z", 1.0), ("u1", "c", 2.0), ("u1", "a", 3.0), ("u2", "m", 1.0), ("u2", "a", 5.0)]


def fingerprint(events: list[Event], item_ids: list[str] = ITEMS) -> str:
    return build_sequences(log_of(events), item_ids).fingerprint()


def test_the_fingerprint_is_of_the_training_data():
    base = fingerprint(BASE)
    assert fingerprint(BASE[::-1]) == base  # the same events, read in another order
    assert fingerprint(BASE + [("u1", "z", 9.0)]) == base  # a re-watch: the sequences do not change
    assert fingerprint(BASE[:2] + [("u1", "a", 3.5)] + BASE[3:]) == base  # a new time that moves nothing
    changed = {
        "one event more": BASE + [("u2", "z", 6.0)],
        "one event less": BASE[:-1],
        "one item changed": BASE[:-1] + [("u2", "c", 5.0)],
        "one event moved before another": BASE[:2] + [("u1", "a", 1.5)] + BASE[3:],
        "one event given to another user": BASE[:3] + [("u1", "m", 1.0)] + BASE[4:],
        "a new user": BASE + [("u3", "z", 1.0)],
    }
    prints = {name: fingerprint(events) for name, events in changed.items()}
    assert base not in prints.values(), prints
    assert len(set(prints.values())) == len(prints)
    assert fingerprint(BASE, ITEMS + ["new"]) != base  # a catalog item more is other training data


def test_without_items_drops_exactly_those_items_and_keeps_every_users_order():
    log = sorted_interaction_log(["a", "a", "a", "b", "b", "c"], ["x", "y", "z", "y", "x", "y"],
                                 [1.0, 2.0, 3.0, 1.0, 2.0, 1.0], np.ones(6), ["view"] * 6, np.full(6, np.nan))
    seqs = build_sequences(log, ["x", "y", "z"])
    stripped = without_items(seqs, np.array([False, True, False]))
    assert stripped.user_ids == seqs.user_ids and stripped.n_items == 3
    assert [stripped.of(u).tolist() for u in range(3)] == [[0, 2], [0], []]
