"""``tastebud loadtest`` and ``tastebud loadtest-merge``: drive a live server, report, merge.

With ``--processes N`` the command starts N generator processes (each ``tastebud loadtest``
with 1/N of the rate or of the callers, its own seed and a shared start time), then merges
their result files exactly, as ``loadtest-merge`` does for generators on several machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from tastebud.errors import InvalidInputError
from tastebud.loadtest.mix import DEFAULT_MIX, TrafficMix
from tastebud.loadtest.report import (format_table, merge_results, read_result, stats_to_result, with_summary,
                                      write_plots)
from tastebud.loadtest.runner import RunOptions, run_load
from tastebud.loadtest.schedule import split_for_workers
from tastebud.loadtest.traffic import Population, make_requests

REQUEST_POOL = 50_000  # distinct requests prepared before the run, then cycled


def _default_out() -> Path:
    return Path("loadtest-results") / f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"


def _options(args: argparse.Namespace, **changes) -> RunOptions:
    values = dict(target=args.target, mode=args.mode, rate=args.rate, concurrency=args.concurrency,
                  duration=args.duration, warmup=args.warmup, deadline=args.deadline_ms / 1000.0, seed=args.seed,
                  arrivals=args.arrivals, start_at=args.start_at, progress=not args.no_progress)
    values.update(changes)
    return RunOptions(**values)


def run_loadtest(args: argparse.Namespace) -> int:
    mix = TrafficMix.from_toml(args.mix)
    options = _options(args)  # validates the flags before anything starts
    out: Path = args.out or _default_out()
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.processes > 1:
        result = _run_processes(args, args.processes)
    else:
        population = Population.from_index(args.index)
        count = REQUEST_POOL if options.mode == "closed" else min(
            REQUEST_POOL, int(options.rate * (options.duration + options.warmup)) + 1)
        requests = make_requests(mix, population, count, seed=options.seed)
        if options.progress:
            load = f"{options.rate:g}/s open loop" if options.mode == "open" else f"{options.concurrency} callers"
            print(f"load-testing {options.target} with {load} for {options.warmup:g}s warm-up + "
                  f"{options.duration:g}s; mix {mix.shares()}", file=sys.stderr)
        stats = asyncio.run(run_load(options, requests))
        result = stats_to_result(stats, options, mix.shares())
    return _finish(result, out, args.plot, args.no_plot, quiet=args.quiet)


def _run_processes(args: argparse.Namespace, n: int) -> dict:
    """N child generators with a common start time; their results merged."""
    if args.mode == "closed" and args.concurrency < n:
        raise InvalidInputError(f"--concurrency {args.concurrency} is less than --processes {n}")
    rates = split_for_workers(args.rate, n)
    start_at = time.time() + 3.0 + 0.5 * n  # time for every child to import and connect
    with tempfile.TemporaryDirectory(prefix="tastebud-loadtest-") as tmp:
        children, parts = [], []
        for i in range(n):
            part = Path(tmp) / f"part-{i}.json"
            share = ["--rate", str(rates[i])] if args.mode == "open" else \
                ["--concurrency", str(args.concurrency // n + (1 if i < args.concurrency % n else 0))]
            cmd = [sys.executable, "-m", "tastebud.cli.main", "loadtest", "--target", args.target,
                   "--index", str(args.index), "--mix", str(args.mix), "--mode", args.mode, *share,
                   "--duration", str(args.duration), "--warmup", str(args.warmup),
                   "--deadline-ms", str(args.deadline_ms), "--seed", str(args.seed + 1000 * i),
                   "--arrivals", args.arrivals, "--start-at", str(start_at), "--processes", "1",
                   "--out", str(part), "--no-plot", "--quiet", *(["--no-progress"] if i or args.no_progress else [])]
            children.append(subprocess.Popen(cmd))
            parts.append(part)
        failed = [i for i, child in enumerate(children) if child.wait() != 0]
        if failed:
            raise InvalidInputError(f"load generator process(es) {failed} failed; see their messages above")
        return merge_results(read_result(p) for p in parts)


def _finish(result: dict, out: Path, plot: Path | None, no_plot: bool, quiet: bool = False) -> int:
    result = with_summary(result)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    if not quiet:
        print(format_table(result))
        print(f"result: {out}")
    if not no_plot:
        png = write_plots(result, plot or out.with_suffix(".png"))
        if not quiet:
            print(f"plots: {png}")
    return 0


def run_merge(args: argparse.Namespace) -> int:
    merged = merge_results(read_result(p) for p in args.results)
    return _finish(merged, args.out, args.plot, args.no_plot)


def add_loadtest(sub: argparse._SubParsersAction, positive) -> None:
    p = sub.add_parser("loadtest", help="load-test a running server (open or closed loop)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                       description="Send a traffic mix (Recommend with Zipf users, filters, exclusions, diversity; "
                                   "SimilarItems; SearchItems; RecordInteractions) to a server and report latency "
                                   "per RPC from HDR histograms: a table, a JSON result and PNG plots.")
    p.add_argument("--target", default="localhost:50051", help="server address")
    p.add_argument("--index", type=Path, default=Path("indexes"),
                   help="the index root the server serves: user and item ids for requests are read from it")
    p.add_argument("--mix", type=Path, default=DEFAULT_MIX, help="traffic mix TOML")
    p.add_argument("--mode", choices=("open", "closed"), default="closed",
                   help="open: send on a schedule at --rate; closed: --concurrency callers back to back")
    p.add_argument("--rate", type=float, default=100.0, help="open loop: calls per second (all processes)")
    p.add_argument("--arrivals", choices=("poisson", "uniform"), default="poisson", help="open loop schedule")
    p.add_argument("--concurrency", type=positive, default=8, help="closed loop: calls in flight (all processes)")
    p.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds sent before measuring")
    p.add_argument("--deadline-ms", type=float, default=1000.0, help="deadline of each call")
    p.add_argument("--seed", type=int, default=0, help="seed of the requests and the schedule")
    p.add_argument("--processes", type=positive, default=1, help="load generator processes, results merged")
    p.add_argument("--start-at", type=float, help=argparse.SUPPRESS)  # set by the parent for its children
    p.add_argument("--out", type=Path, help="result JSON (default: loadtest-results/<time>.json)")
    p.add_argument("--plot", type=Path, help="PNG (default: beside --out)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(run=run_loadtest)

    m = sub.add_parser("loadtest-merge", help="merge load-test results of generators that ran together",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    m.add_argument("results", type=Path, nargs="+", help="result JSON files")
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--plot", type=Path)
    m.add_argument("--no-plot", action="store_true")
    m.set_defaults(run=run_merge)
