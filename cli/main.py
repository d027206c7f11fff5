"""The ``tastebud`` command: one entry point, a subcommand per job.

Exit codes: 0 success, 1 the job failed (bad data, unreachable server, refused request...),
2 usage error (bad flags). Errors print one line on stderr; ``-v`` adds the log.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

from tastebud.cli.argtypes import non_negative, positive, seconds
from tastebud.errors import TastebudError
from tastebud.train.two_tower import TwoTowerConfig

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _add_members(p: argparse.ArgumentParser) -> None:
    p.add_argument("--members", type=positive, default=TwoTowerConfig().members,
                   help="two-tower models trained with different seeds and served as one ensemble; "
                        "each costs one more training and widens the index")


def _add_build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="build and publish a new index version",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Read a catalog and interactions, embed, shard, and publish an index version "
                                   "atomically under --out. Events recorded through the API (the store) are included.")
    _add_inputs(p)
    p.add_argument("--retrieval", choices=("auto", "two_tower", "content"), default="auto",
                   help="retrieval model: learned two-tower, text content only, or auto (two-tower when there are "
                        "enough interactions)")
    _add_members(p)
    p.add_argument("--out", type=Path, default=Path("indexes"), help="index root to publish into")
    p.add_argument("--shards", type=positive, default=4, help="number of shards")
    p.add_argument("--factory", help="FAISS factory string (default: Flat below --exact-threshold items, else HNSW32,Flat)")
    p.add_argument("--exact-threshold", type=int, default=200_000, help="catalog size from which HNSW is used")
    p.add_argument("--ef-search", type=positive, help="HNSW search depth the index is served with (default 128)")
    p.add_argument("--nprobe", type=positive, help="IVF lists probed per search (default 32)")
    p.add_argument("--vectors", type=Path, help="precomputed item vectors (.npz with 'ids' and 'vectors', "
                                                "L2-normalised, from --model): skips embedding the catalog")
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="sentence-transformers model name or path")
    p.add_argument("--batch-size", type=positive, default=64, help="embedding batch size")
    p.add_argument("--store", type=Path, help="interaction store to include (default: <out>/interactions.sqlite)")
    p.add_argument("--seed", type=int, default=0, help="seed for anything random (index training samples)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=_run_build)


def _run_build(args: argparse.Namespace) -> int:
    from tastebud.cli.build import run_build

    return run_build(args)


def _add_serve(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the published index over gRPC",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--index", type=Path, default=Path("indexes"), help="index root (serves `current`) or version folder")
    p.add_argument("--port", type=int, default=50051, help="port (0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind ([::] for all)")
    p.add_argument("--store", type=Path, help="interaction store (default: <index root>/interactions.sqlite)")
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="embedding model; must match the index")
    p.add_argument("--workers", type=positive, default=None, help="threads for search and encoding (default: cores)")
    p.add_argument("--max-concurrent-rpcs", type=positive, default=256, help="admission limit")
    p.add_argument("--ef-search", type=positive, help="HNSW search depth (default: what the index was built with)")
    p.add_argument("--nprobe", type=positive, help="IVF lists probed (default: what the index was built with)")
    p.add_argument("--event-loop", choices=("uvloop", "asyncio"), help="event loop (default uvloop when installed)")
    p.add_argument("--no-batching", dest="batch_search", action="store_const", const=False, default=argparse.SUPPRESS,
                   help="search each request on its own (default: concurrent searches share FAISS calls)")
    p.add_argument("--config", type=Path, help="server TOML; flags given explicitly override it")
    p.add_argument("--cluster", type=Path, help="be the router of a cluster: its TOML lists the shard processes "
                                                "(the index root comes from it)")
    p.set_defaults(run=_run_serve)


def _add_serve_shard(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve-shard", help="serve one shard of the index (one replica) for a router",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--index", type=Path, default=Path("indexes"), help="index root (follows `current`) or version folder")
    p.add_argument("--shard", type=non_negative, required=True, help="which shard, 0..N-1")
    p.add_argument("--port", type=int, default=50061, help="port (0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind ([::] or 0.0.0.0 for all)")
    p.add_argument("--workers", type=positive, default=2, help="search threads")
    p.add_argument("--watch-seconds", type=seconds, default=2.0, help="how often to look for a newly published version")
    p.add_argument("--linger-seconds", type=seconds, default=30.0,
                   help="keep a replaced version searchable until nobody asked for it this long")
    p.add_argument("--ef-search", type=positive, help="HNSW search depth (default: what the index was built with)")
    p.add_argument("--nprobe", type=positive, help="IVF lists probed (default: what the index was built with)")
    p.add_argument("--no-batching", dest="batching", action="store_false",
                   help="search each request on its own (default: concurrent searches share FAISS calls)")
    p.set_defaults(run=_run_serve_shard)


def _run_serve_shard(args: argparse.Namespace) -> int:
    import asyncio

    from tastebud.cluster.shard_server import serve_shard
    from tastebud.server.app import event_loop_factory

    tuning = {name: getattr(args, name) for name in ("ef_search", "nprobe") if getattr(args, name) is not None}
    with asyncio.Runner(loop_factory=event_loop_factory("uvloop")) as runner:
        runner.run(serve_shard(args.index, args.shard, args.host, args.port, watch_seconds=args.watch_seconds,
                               linger_seconds=args.linger_seconds, workers=args.workers, tuning_overrides=tuning,
                               batching=args.batching))
    return EXIT_OK


def _run_serve(args: argparse.Namespace) -> int:
    import asyncio

    from tastebud.server.app import event_loop_factory, serve
    from tastebud.server.config import ServerConfig

    values = {"index": args.index, "host": args.host, "port": args.port, "store": args.store, "model": args.model,
              "max_concurrent_rpcs": args.max_concurrent_rpcs}
    if args.workers:
        values["workers"] = args.workers
    for name in ("ef_search", "nprobe", "event_loop", "batch_search"):
        if getattr(args, name, None) is not None:
            values[name] = getattr(args, name)
    cluster = None
    if args.cluster:
        from tastebud.cluster.config import read_cluster_config

        cluster = read_cluster_config(args.cluster)
        values["index"] = cluster.index
    config = ServerConfig.from_toml(args.config, **values) if args.config else ServerConfig(**values)
    with asyncio.Runner(loop_factory=event_loop_factory(config.event_loop)) as runner:
        if cluster is None:
            runner.run(serve(config))
        else:
            from tastebud.cluster.router import serve_router

            runner.run(serve_router(cluster, config))
    return EXIT_OK


def _add_client(sub: argparse._SubParsersAction) -> None:
    from tastebud.cli import client

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--target", default="localhost:50051", help="host:port of a tastebud server")
        p.add_argument("--timeout", type=float, default=5.0, help="deadline of the call, seconds")
        p.add_argument("--json", action="store_true", help="print the response as JSON")

    def with_filter(p: argparse.ArgumentParser) -> None:
        p.add_argument("--k", type=int, default=10, help="number of items (1..1000)")
        p.add_argument("--include", action="append", default=[], metavar="ATTR=V1,V2",
                       help="only items with one of these values (repeatable)")
        p.add_argument("--exclude", action="append", default=[], metavar="ATTR=V1,V2",
                       help="no items with any of these values (repeatable)")
        p.add_argument("--year-min", type=int)
        p.add_argument("--year-max", type=int)

    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = sub.add_parser("recommend", help="recommendations for a user", formatter_class=fmt)
    common(p), with_filter(p)
    p.add_argument("--user", default="", help="user id (unknown or empty: cold start)")
    p.add_argument("--history", default="", help="comma-separated item ids, most recent last")
    p.add_argument("--taste", default="", help="free-text taste, e.g. 'slow-burn sci-fi'")
    p.add_argument("--diversity", type=float, default=0.0, help="0..1, MMR trade-off")
    p.add_argument("--include-seen", action="store_true")
    p.add_argument("--restrict-to", default="", help="comma-separated item ids to rank")
    p.set_defaults(run=client.run_recommend)

    p = sub.add_parser("similar", help="items similar to an item", formatter_class=fmt)
    common(p), with_filter(p)
    p.add_argument("--item", required=True, help="item id")
    p.set_defaults(run=client.run_similar)

    p = sub.add_parser("search", help="items matching a text", formatter_class=fmt)
    common(p), with_filter(p)
    p.add_argument("--text", required=True, help="what to look for, or a title")
    p.set_defaults(run=client.run_search)

    p = sub.add_parser("record", help="record one interaction", formatter_class=fmt)
    common(p)
    p.add_argument("--user", required=True)
    p.add_argument("--item", required=True)
    p.add_argument("--event", default="view")
    p.add_argument("--weight", type=float, default=1.0)
    p.set_defaults(run=client.run_record)

    p = sub.add_parser("info", help="describe the served index", formatter_class=fmt)
    common(p)
    p.set_defaults(run=client.run_info)

    p = sub.add_parser("forget", help="forget a user everywhere (Admin.ForgetUser); prints the receipt",
                       formatter_class=fmt)
    common(p)
    p.add_argument("--user", required=True, help="the user id to forget")
    p.add_argument("--outbox", type=Path, help="also delete the digest's messages to this user from this folder")
    p.set_defaults(run=client.run_forget)

    p = sub.add_parser("export", help="everything held about a user, as JSON (Admin.ExportUser)", formatter_class=fmt)
    common(p)
    p.add_argument("--user", required=True, help="the user id to export")
    p.set_defaults(run=client.run_export)


def _add_inputs(p: argparse.ArgumentParser) -> None:
    """The input flags shared by build and eval."""
    p.add_argument("--items", type=Path, help="items file (.csv .tsv .jsonl .parquet) with an item_id column")
    p.add_argument("--interactions", type=Path, help="interactions file: user_id,item_id,timestamp[,rating,weight,event]")
    p.add_argument("--config", type=Path, help="dataset TOML (text template, filter attributes, on_error)")
    p.add_argument("--format", choices=("files", "movielens"), default="files", help="input layout")
    p.add_argument("--data", type=Path, help="folder of a MovieLens data set (with --format movielens)")


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="offline evaluation (shared/eval protocol) through the serving path",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Split the data by the protocol (main, short-history, cold items), build an index "
                                   "of each view's training data, rank every test user's list with the server's own "
                                   "code, and score Recall@10, NDCG@10, Coverage@10.")
    _add_inputs(p)
    p.add_argument("--views", default="main,short,cold", help="comma-separated views")
    p.add_argument("--work", type=Path, default=Path(".eval"), help="where the views' indexes are built")
    p.add_argument("--shards", type=positive, default=4)
    p.add_argument("--factory", help="FAISS factory string (default: by catalog size)")
    p.add_argument("--retrieval", choices=("auto", "two_tower", "content"), default="auto", help="retrieval model")
    _add_members(p)
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="sentence-transformers model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--via", metavar="HOST:PORT", help="get main/short lists from a live server serving <work>/main")
    p.add_argument("--baselines", action="store_true", help="also score MostPop and item-kNN on the same splits")
    p.add_argument("--json", type=Path, help="write the full report as JSON")
    p.add_argument("--lists", type=Path, help="write each view's lists as JSONL (score.py's RECS format)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=_run_eval)


def _run_eval(args: argparse.Namespace) -> int:
    from tastebud.cli.eval import run_eval_command

    return run_eval_command(args)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="demo data -> index -> server -> sample calls -> stop",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--workdir", type=Path, default=Path(".demo"), help="where demo data and indexes go")
    p.add_argument("--items", type=positive, default=3000, help="demo catalog size")
    p.add_argument("--users", type=positive, default=600, help="demo users")
    p.add_argument("--no-cluster", dest="cluster", action="store_false",
                   help="skip step 5, the same index served by shard processes behind a router")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from tastebud.cli.demo import run_demo

    return run_demo(args)


def _add_loadtest(sub: argparse._SubParsersAction) -> None:
    from tastebud.cli.loadtest import add_loadtest

    add_loadtest(sub, positive)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tastebud", description="Personalised recommendations: build, serve, query.")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO) to stderr")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_build(sub)
    _add_serve(sub)
    _add_serve_shard(sub)
    _add_client(sub)
    _add_eval(sub)
    _add_demo(sub)
    _add_loadtest(sub)
    from tastebud.cli.cluster import add_cluster
    from tastebud.digest.cli import add_digest
    from tastebud.web.cli import add_web

    add_cluster(sub)
    add_digest(sub)
    add_web(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose or args.command in ("build", "serve", "serve-shard") else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except TastebudError as exc:
        print(f"tastebud {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
