"""``tastebud eval``: the offline protocol run through the serving code path.

For each view an index is built from the view's training data with the same ``build_index``
as production, then every test user's list comes from the recommender core the server runs
(user vector -> sharded ANN -> exclusions -> re-rank), in process or, with ``via``, from a live
server over gRPC (which must serve the ``<work>/main`` index an earlier run built: the
interactions fingerprint in its manifest is checked). The lists are scored by ``metrics.score_lists`` (identical to the reference
scorer). Baselines, when asked, are computed on the same splits in the same run.

Views: ``main`` (full train history), ``short`` (only the last 3 train items are given; the
list still excludes the whole train set, as the protocol's list rule says), ``cold``
(an index built without any interaction of the cold items; only cold items are ranked).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tastebud.embed.encoder import Encoder
from tastebud.errors import InvalidInputError, PreconditionError
from tastebud.evaluate import baselines
from tastebud.evaluate.metrics import ann_recall, score_lists
from tastebud.evaluate.protocol import short_history, split_cold, split_main
from tastebud.index.build import BuildOptions, build_index
from tastebud.index.merge import brute_force_topk
from tastebud.index.publish import resolve_version_dir
from tastebud.ingest.model import Dataset
from tastebud.server.domain import RecommendQuery
from tastebud.server.recommender import Recommender

log = logging.getLogger(__name__)

VIEWS = ("main", "short", "cold")
K = 10


@dataclass(frozen=True, slots=True)
class EvalOptions:
    work_dir: Path
    views: tuple[str, ...] = VIEWS
    build: BuildOptions = field(default_factory=BuildOptions)
    via: str | None = None
    baselines: bool = False
    ann_sample: int = 200

    def __post_init__(self) -> None:
        unknown = sorted(set(self.views) - set(VIEWS))
        if unknown or not self.views:
            raise InvalidInputError(f"--views must name some of {', '.join(VIEWS)}, got {list(self.views)}")


Lists = dict[str, list[str]]


def _queries_main(test: dict[str, list[str]]) -> dict[str, RecommendQuery]:
    return {u: RecommendQuery(user_id=u, k=K) for u in test}


def _queries_short(test: dict[str, list[str]], histories: dict[str, list[str]],
                   train_items: dict[str, list[str]]) -> dict[str, RecommendQuery]:
    return {u: RecommendQuery(user_id="", k=K, history=tuple(histories.get(u, ())),
                              exclude_items=tuple(train_items.get(u, ()))) for u in test}


def _queries_cold(test: dict[str, list[str]], cold: list[str]) -> dict[str, RecommendQuery]:
    return {u: RecommendQuery(user_id=u, k=K, restrict_to=tuple(cold)) for u in test}


def lists_in_process(recommender: Recommender, queries: dict[str, RecommendQuery]) -> Lists:
    """Each query through the recommender core, one at a time, as the server would run it."""
    async def run() -> Lists:
        out: Lists = {}
        for user, query in queries.items():
            result = await recommender.recommend(query)
            out[user] = [i.item_id for i in result.items]
        return out
    return asyncio.run(run())


def lists_via_grpc(target: str, queries: dict[str, RecommendQuery], expected_version: str,
                   timeout: float = 10.0) -> Lists:
    """The same queries sent to a live server; it must serve the index this run built."""
    import grpc

    from tastebud.v1 import recommender_pb2 as pb
    from tastebud.v1 import recommender_pb2_grpc as pb_grpc

    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.RecommenderStub(channel)
        served = stub.GetIndexInfo(pb.GetIndexInfoRequest(), timeout=timeout).version
        if served != expected_version:
            raise PreconditionError(f"{target} serves index {served}, this evaluation built {expected_version}; "
                                    f"start it with the evaluation's index (tastebud serve --index <work>/main)")
        out: Lists = {}
        for user, q in queries.items():
            request = pb.RecommendRequest(user_id=q.user_id, k=q.k, history=list(q.history),
                                          restrict_to=list(q.restrict_to), exclude_items=list(q.exclude_items))
            out[user] = [i.item_id for i in stub.Recommend(request, timeout=timeout).items]
    return out


def open_for_eval(index_root: Path, encoder: Encoder, executor: ThreadPoolExecutor) -> Recommender:
    from tastebud.server.app import open_recommender

    return open_recommender(index_root, encoder, executor, store=None)


def served_ann_recall(recommender: Recommender, queries: dict[str, RecommendQuery], sample: int, seed: int = 0
                      ) -> float:
    """recall@10 of the served (sharded, possibly approximate) search against exact search."""
    users = sorted(queries)
    rng = np.random.default_rng(seed)
    picked = [users[i] for i in rng.choice(len(users), size=min(sample, len(users)), replace=False)]
    index = recommender.index

    async def run() -> tuple[list, list]:
        from tastebud.index.shards import ShardQuery
        from tastebud.server.retrieval import retrieve

        vectors = np.zeros((len(index.items), int(index.manifest.retrieval["dimension"])), dtype=np.float32)
        for shard in index.shards:
            rows = np.flatnonzero(index.items.shard == shard.shard)
            vectors[rows] = shard.vectors_sync(rows)
        approx, exact = [], []
        for user in picked:
            vector, history, _ = await recommender.user_query(queries[user])
            drop = recommender.excluded(queries[user], history)
            got = await retrieve(index.shards, vector, ShardQuery(K, exclude=drop), None)
            allowed = np.ones(len(vectors), dtype=bool)
            allowed[drop] = False
            approx.append(np.pad(got.candidates.ids, (0, K - len(got.candidates.ids)), constant_values=-1))
            exact.append(brute_force_topk(vector[None, :], vectors, K, allowed)[1][0])
        return approx, exact
    approx, exact = asyncio.run(run())
    return ann_recall(np.array(approx), np.array(exact))


def _build(dataset: Dataset, encoder: Encoder, root: Path, options: BuildOptions) -> tuple[str, dict, float]:
    started = time.perf_counter()
    result = build_index(dataset, encoder, root, options)
    return result.manifest.version, result.manifest.retrieval, time.perf_counter() - started


def _existing(train: Dataset, root: Path) -> tuple[str, dict, float]:
    """The index a live server serves for ``--via``: it must hold exactly this train split."""
    from tastebud.index.manifest import read_manifest
    from tastebud.train.sequences import build_sequences

    manifest = read_manifest(resolve_version_dir(root))
    expected = build_sequences(train.interactions, train.catalog.item_ids).fingerprint()
    if manifest.build.get("interactions_fingerprint") != expected:
        raise PreconditionError(f"{root} was not built from this data's train split; run `tastebud eval` without "
                                f"--via first, then serve {root}")
    return manifest.version, manifest.retrieval, 0.0


def run_eval(dataset: Dataset, encoder: Encoder, options: EvalOptions,
             on_view: Callable[[str, dict], None] | None = None) -> dict[str, Any]:
    """Evaluate every requested view; returns the report (and calls ``on_view`` as each ends)."""
    report: dict[str, Any] = {"items": len(dataset.catalog), "views": {}, "builds": {}}
    split = split_main(dataset)
    n_items = len(dataset.catalog)
    train_items: dict[str, list[str]] = {}
    for u, i in zip(split.train.interactions.user_ids.tolist(), split.train.interactions.item_ids.tolist()):
        train_items.setdefault(u, []).append(i)
    with ThreadPoolExecutor(max_workers=2) as executor:
        if {"main", "short"} & set(options.views):
            root = options.work_dir / "main"
            if options.via:
                version, retrieval, seconds = _existing(split.train, root)
            else:
                version, retrieval, seconds = _build(split.train, encoder, root, options.build)
            report["builds"]["main"] = {"index": str(resolve_version_dir(root)), "version": version,
                                        "seconds": round(seconds, 1), "retrieval": retrieval}
            recommender = open_for_eval(root, encoder, executor)
            views = []
            if "main" in options.views:
                views.append(("main", _queries_main(split.test)))
            if "short" in options.views:
                views.append(("short", _queries_short(split.test, short_history(split), train_items)))
            for name, queries in views:
                started = time.perf_counter()
                lists = lists_via_grpc(options.via, queries, version) if options.via else \
                    lists_in_process(recommender, queries)
                result = {"tastebud": score_lists(split.test, lists, n_items), "seconds": 0.0}
                result["seconds"] = round(time.perf_counter() - started, 1)
                if name == "main":
                    report["ann_recall@10"] = served_ann_recall(recommender, queries, options.ann_sample)
                if options.baselines:
                    histories = short_history(split) if name == "short" else None
                    result.update(_baselines(split.train, split.test, n_items, histories=histories))
                result["lists"] = lists
                report["views"][name] = result
                if on_view:
                    on_view(name, result)
        if "cold" in options.views:
            cold = split_cold(split)
            root = options.work_dir / "cold"
            version, retrieval, seconds = _build(cold.train, encoder, root, options.build)
            report["builds"]["cold"] = {"index": str(resolve_version_dir(root)), "version": version,
                                        "seconds": round(seconds, 1), "retrieval": retrieval}
            recommender = open_for_eval(root, encoder, executor)
            started = time.perf_counter()
            lists = lists_in_process(recommender, _queries_cold(cold.test, cold.items))
            result = {"tastebud": score_lists(cold.test, lists, None), "seconds": round(time.perf_counter() - started, 1),
                      "cold_items": len(cold.items)}
            if options.baselines:
                result.update(_baselines(cold.train, cold.test, None, candidates=cold.items))
            result["lists"] = lists
            report["views"]["cold"] = result
            if on_view:
                on_view("cold", result)
    return report


def _baselines(train: Dataset, test: dict[str, list[str]], n_items: int | None, *,
               histories: dict[str, list[str]] | None = None, candidates: list[str] | None = None) -> dict[str, dict]:
    users = sorted(test)
    out: dict[str, dict] = {}
    makers = {"MostPop": baselines.most_popular,
              "item-kNN": lambda *a, **kw: baselines.item_knn(*a, half_life=20.0, **kw)}
    if candidates is not None:
        makers = {"random": baselines.random_items, **makers}
    for name, make in makers.items():
        try:
            lists = make(train, users, K, histories=histories, candidates=candidates)
        except InvalidInputError as exc:
            log.warning("baseline %s skipped: %s", name, exc)
            continue
        out[name] = score_lists(test, lists, n_items)
    return out


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{'view':<7} {'model':<10} {'Recall@10':>9} {'NDCG@10':>8} {'Cov@10':>7} {'users':>6}"]
    for view, result in report["views"].items():
        for model, scores in result.items():
            if not isinstance(scores, dict) or "ndcg@10" not in scores:
                continue
            cov = scores.get("coverage@10")
            lines.append(f"{view:<7} {model:<10} {scores['recall@10']:>9.4f} {scores['ndcg@10']:>8.4f} "
                         f"{'' if cov is None else f'{cov:.4f}':>7} {scores['users']:>6}")
    if "ann_recall@10" in report:
        lines.append(f"ANN recall@10 of the served index vs exact search: {report['ann_recall@10']:.4f}")
    for view, build in report["builds"].items():
        r = build["retrieval"]
        validation = r.get("validation", {})
        val = validation.get("model", {}).get("ndcg@10")
        training = (f"validation model {validation.get('seconds')}s, re-ranker {validation.get('ranker_seconds')}s, "
                    f"published model {r.get('training_seconds')}s")
        lines.append(f"build {view}: {build['seconds']}s, retrieval {r['kind']}"
                     + (f"; training: {training}; validation NDCG@10 {val:.4f}" if val else ""))
    return "\n".join(lines)
