"""Recommend latency over N sequential calls against a running server (one call in flight).

    python bench/sequential_latency.py --target localhost:50051 --calls 1000

Users are drawn (seeded) from the served index's users; prints p50/p90/p99/max in
milliseconds, measured at the client around each blocking call, and writes JSON with --out.
This is the foundation's simple measurement; the load-testing tool comes with its own issue.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import grpc
import numpy as np

from tastebud.index.histories import UserHistories
from tastebud.index.publish import resolve_version_dir
from tastebud.v1 import recommender_pb2 as pb
from tastebud.v1 import recommender_pb2_grpc as pb_grpc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default="localhost:50051")
    p.add_argument("--index", type=Path, required=True, help="index root the server serves (for user ids)")
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    users = UserHistories.read(resolve_version_dir(args.index) / "users.parquet").user_ids
    rng = np.random.default_rng(args.seed)
    picks = [users[i] for i in rng.integers(0, len(users), args.calls + args.warmup)]
    latencies = []
    with grpc.insecure_channel(args.target) as channel:
        stub = pb_grpc.RecommenderStub(channel)
        for n, user in enumerate(picks):
            start = time.perf_counter()
            stub.Recommend(pb.RecommendRequest(user_id=user, k=args.k), timeout=5.0)
            if n >= args.warmup:
                latencies.append((time.perf_counter() - start) * 1000)
    ms = np.array(latencies)
    result = {"calls": len(ms), "k": args.k, **{f"p{q:g}_ms": round(float(np.percentile(ms, q)), 3)
                                               for q in (50, 90, 99)}, "max_ms": round(float(ms.max()), 3)}
    print(json.dumps(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
