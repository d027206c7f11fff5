"""`tastebud eval` on the demo data: its numbers equal the reference scorer's on the same lists,
the lists obey the protocol, and a live server over gRPC gives the very same lists."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

from tastebud.evaluate.protocol import split_cold, split_main
from tastebud.evaluate.runner import EvalOptions, run_eval
from tastebud.index.build import BuildOptions
from tastebud.server.config import ServerConfig
from tastebud.train.ranker import RankerConfig

from conftest import SHIPPED_TWO_TOWER  # noqa: E402
from live_server import ServerThread
from shared_data import SCORER



def reference_scorer():
    if not SCORER.exists():
        pytest.skip(f"reference scorer not found at {SCORER}")
    spec = importlib.util.spec_from_file_location("reference_score", SCORER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report(demo_dataset, encoder, tmp_path_factory):
    work = tmp_path_factory.mktemp("eval")
    # The ranker is published whatever its validation says (on 150 test users that can go either
    # way), so the serving path with a ranker is always the one tested here.
    build = BuildOptions(n_shards=2, progress=False, two_tower=SHIPPED_TWO_TOWER,
                         ranker=RankerConfig(always_publish=True))
    options = EvalOptions(work_dir=work, build=build, baselines=True, ann_sample=50)
    return run_eval(demo_dataset, encoder, options), work


def test_eval_agrees_with_the_reference_scorer(report, demo_dataset, tmp_path):
    ref = reference_scorer()
    result, _ = report
    log = demo_dataset.interactions
    path = tmp_path / "interactions.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["user_id", "item_id", "timestamp"])
        writer.writerows(zip(log.user_ids.tolist(), log.item_ids.tolist(), [repr(t) for t in log.timestamps.tolist()]))
    train, test = ref.split(ref.read_interactions(path))
    by_user: dict[str, set[str]] = {}
    for u, i, _ in test:
        by_user.setdefault(u, set()).add(i)
    main = result["views"]["main"]
    expected = ref.score(by_user, main["lists"], len(demo_dataset.catalog))
    for metric in ("recall@10", "ndcg@10", "coverage@10"):
        assert abs(main["tastebud"][metric] - expected[metric]) < 1e-6
    cold = set(ref.cold_items(ref.read_interactions(path)))
    cold_test = {u: {i for i in items if i in cold} for u, items in by_user.items()}
    cold_test = {u: items for u, items in cold_test.items() if items}
    expected_cold = ref.score(cold_test, result["views"]["cold"]["lists"], None)
    assert abs(result["views"]["cold"]["tastebud"]["recall@10"] - expected_cold["recall@10"]) < 1e-6


def test_lists_follow_the_protocol(report, demo_dataset):
    result, _ = report
    split = split_main(demo_dataset)
    train_items: dict[str, set[str]] = {}
    for u, i in zip(split.train.interactions.user_ids.tolist(), split.train.interactions.item_ids.tolist()):
        train_items.setdefault(u, set()).add(i)
    for view in ("main", "short"):
        lists = result["views"][view]["lists"]
        assert set(lists) == set(split.test)
        for user, items in lists.items():
            assert len(items) == 10 and len(set(items)) == 10
            assert not set(items) & train_items.get(user, set()), (view, user)
    cold = split_cold(split)
    for user, items in result["views"]["cold"]["lists"].items():
        assert set(items) <= set(cold.items)
    assert result["ann_recall@10"] == 1.0  # exact (Flat) index
    main = result["views"]["main"]
    assert main["tastebud"]["ndcg@10"] > main["MostPop"]["ndcg@10"]
    assert result["views"]["cold"]["tastebud"]["recall@10"] > result["views"]["cold"]["random"]["recall@10"]


def test_eval_via_a_live_server_gives_the_same_lists(report, demo_dataset, encoder):
    result, work = report
    server = ServerThread(ServerConfig(index=work / "main", port=0, workers=2, store=work / "via.sqlite"), encoder)
    try:
        via = run_eval(demo_dataset, encoder, EvalOptions(work_dir=work, views=("main", "short"), via=server.target,
                                                          ann_sample=10))
    finally:
        server.stop()
    for view in ("main", "short"):
        assert via["views"][view]["lists"] == result["views"][view]["lists"]
        assert via["views"][view]["tastebud"] == result["views"][view]["tastebud"]


def test_via_refuses_an_index_of_other_data(report, demo_dataset, encoder, tmp_path):
    from tastebud.errors import PreconditionError
    from tastebud.ingest.model import Dataset

    _, work = report
    fewer = demo_dataset.interactions
    keep = fewer.user_ids != "7"
    other = Dataset(demo_dataset.catalog, type(fewer)(fewer.user_ids[keep], fewer.item_ids[keep],
                                                      fewer.timestamps[keep], fewer.weights[keep],
                                                      fewer.events[keep], fewer.ratings[keep]), demo_dataset.report)
    with pytest.raises(PreconditionError, match="not built from this data"):
        run_eval(other, encoder, EvalOptions(work_dir=work, views=("main",), via="127.0.0.1:1"))


def test_the_learned_ranker_respects_k_filters_seen_and_falls_back_on_short_deadlines(report, encoder):
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from tastebud.index.filters import ItemFilter
    from tastebud.server.domain import Deadline, RecommendQuery

    _, work = report
    with ThreadPoolExecutor(2) as executor:
        # hurried: a deadline shorter than the ranker's reserve; same index, ranker skipped.
        core, hurried = served_with_ranker(work / "main", encoder, executor)
        comedy = ItemFilter(include=(("genres", frozenset({"Comedy"})),))
        changed = 0
        for user in ("4", "9", "21", "30", "44"):
            seen = set(core.items.item_ids[r] for r in core.index.histories.get(user).items.tolist())
            for k in (1, 7, 25):
                result = asyncio.run(core.recommend(RecommendQuery(user_id=user, k=k, item_filter=comedy)))
                ids = [i.item_id for i in result.items]
                assert len(ids) == k and len(set(ids)) == k and not seen & set(ids)
                assert all("Comedy" in core.items.attributes["genres"][core.items.row_of(i)] for i in ids)
                assert not result.degraded
            ranked = asyncio.run(core.recommend(RecommendQuery(user_id=user, k=10)))
            rushed = asyncio.run(hurried.recommend(RecommendQuery(user_id=user, k=10), Deadline.after(30.0)))
            assert rushed.degraded and any("learned re-ranking skipped" in n for n in rushed.notes)
            assert len(rushed.items) == 10 and not seen & {i.item_id for i in rushed.items}
            # Retrieval order: the raw [u, 1] . [p_j, b_j] scores, best first.
            raw = retrieval_scores(core, RecommendQuery(user_id=user, k=10), rushed)
            np.testing.assert_allclose([i.score for i in rushed.items], raw, atol=1e-4)
            assert raw == sorted(raw, reverse=True)
            changed += [i.item_id for i in ranked.items] != [i.item_id for i in rushed.items]
        assert changed >= 1  # the ranker does re-order somebody's list


def served_with_ranker(index: Path, encoder, executor):
    """``index`` served twice: as built (its learned ranker must be there), and with a ranker
    reserve longer than any test deadline, so the ranker is always skipped for lack of time."""
    from tastebud.server.app import open_recommender
    from tastebud.server.recommender import RecommenderConfig

    core = open_recommender(index, encoder, executor, None)
    assert core.index.ranker is not None, core.index.manifest.retrieval["validation"].get("ranker")
    return core, open_recommender(index, encoder, executor, None, RecommenderConfig(ranker_reserve_seconds=60.0))


def retrieval_scores(core, query, result) -> list[float]:
    """The raw [u, 1] . [p_j, b_j] retrieval score of each item of ``result`` for ``query``."""
    import asyncio

    import numpy as np

    vector, _, _ = asyncio.run(core.user_query(query))
    by_shard = {s.shard: s for s in core.index.shards}
    rows = [core.items.row_of(i.item_id) for i in result.items]
    return [float(by_shard[int(core.items.shard[r])].vectors_sync(np.array([r]), "item")[0] @ vector) for r in rows]


def test_requests_without_a_history_keep_retrieval_order_under_a_learned_ranker(report, encoder):
    """A taste alone, or nothing at all: the ranker never trained on a list without a history,
    so the server does not apply it there (and says nothing: it is not a degraded answer)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from tastebud.server.domain import Deadline, RecommendQuery

    _, work = report
    with ThreadPoolExecutor(2) as executor:
        # With no time for the ranker, such a request is not degraded either: nothing was skipped.
        core, hurried = served_with_ranker(work / "main", encoder, executor)
        queries = [RecommendQuery(user_id="", k=10, taste="I love jazz"),
                   RecommendQuery(user_id="somebody-new", k=10, taste="dark thrillers"),
                   RecommendQuery(user_id="somebody-new", k=10)]
        for query in queries:
            for server, deadline in ((core, Deadline()), (hurried, Deadline.after(30.0))):
                result = asyncio.run(server.recommend(query, deadline))
                raw = retrieval_scores(core, query, result)
                assert len(result.items) == 10 and not result.degraded, result.notes
                np.testing.assert_allclose([i.score for i in result.items], raw, atol=1e-4)
                assert raw == sorted(raw, reverse=True)
        # A history makes the ranker run, the stored one or one the request brings.
        brought = tuple(core.items.item_ids[r] for r in core.index.histories.get("4").items.tolist())
        for query in (RecommendQuery(user_id="4", k=10), RecommendQuery(user_id="somebody-new", k=10, history=brought)):
            result = asyncio.run(core.recommend(query))
            assert not np.allclose([i.score for i in result.items], retrieval_scores(core, query, result), atol=1e-4)


def test_lists_of_new_items_only_get_the_ranker_only_when_it_won_on_pseudo_new_items(report, encoder):
    """The cold view's index: a list restricted to items nobody has interacted with keeps its
    retrieval order unless the build's ranker beat that order on pseudo-new items."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from tastebud.server.app import open_recommender
    from tastebud.server.domain import RecommendQuery

    _, work = report
    with ThreadPoolExecutor(2) as executor:
        core = open_recommender(work / "cold", encoder, executor, None)
        ranker = core.index.ranker
        assert ranker is not None, core.index.manifest.retrieval["validation"].get("ranker")
        assert ranker.for_new_items == core.index.manifest.retrieval["validation"]["ranker"]["new_items"]
        assert core.index.manifest.retrieval["validation"]["ranker"]["by_history"]["cold"]["groups"] > 0
        new = [core.items.item_ids[r] for r in np.flatnonzero(core.items.popularity == 0).tolist()]
        assert len(new) >= 20
        for flag in (True, False):
            ranker.for_new_items = flag
            reordered = 0
            for user in ("4", "9", "21"):
                query = RecommendQuery(user_id=user, k=10, restrict_to=tuple(new))
                result = asyncio.run(core.recommend(query))
                assert len(result.items) == 10 and {i.item_id for i in result.items} <= set(new)
                raw = retrieval_scores(core, query, result)
                reordered += not np.allclose([i.score for i in result.items], raw, atol=1e-4)
            assert (reordered > 0) == flag
