"""``tastebud cluster ...``: run a sharded deployment on this machine (``up``); adopt a new index (``reload``).

``cluster up`` is a thin wrapper over :mod:`tastebud.cluster.launcher`; everything it does is
there, where tests drive it directly.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tastebud.cli.argtypes import port, positive, seconds


def add_cluster(sub: argparse._SubParsersAction) -> None:
    """Add ``tastebud cluster`` and its subcommands to the top-level parser's subcommands."""
    fmt = argparse.ArgumentDefaultsHelpFormatter
    cluster = sub.add_parser("cluster", help="run shard replicas and a router on this machine",
                             description="Local cluster management: `up` runs every shard replica and the router "
                                         "as child processes (the topology Kubernetes runs, on one machine).")
    actions = cluster.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    _add_up(actions, fmt)
    _add_reload(actions, fmt)


def _add_reload(actions: argparse._SubParsersAction, fmt: type[argparse.HelpFormatter]) -> None:
    p = actions.add_parser("reload", help="make the router adopt the newest published index now",
                           formatter_class=fmt,
                           description="Calls tastebud.v1.Admin/Reload on the router: it waits until every shard "
                                       "has loaded the version `current` points at, then switches whole. A version "
                                       "the shards refuse (it does not verify) is not adopted; the reason is "
                                       "printed and the command exits 1.")
    p.add_argument("--target", default="localhost:50051", help="host:port of the router")
    p.add_argument("--timeout", type=seconds, default=120.0, help="seconds to wait for every shard")
    p.set_defaults(run=run_reload)


def run_reload(args: argparse.Namespace) -> int:
    import grpc

    from tastebud.errors import TastebudError
    from tastebud.v1 import admin_pb2, admin_pb2_grpc

    with grpc.insecure_channel(args.target) as channel:
        try:
            answer = admin_pb2_grpc.AdminStub(channel).Reload(
                admin_pb2.ReloadRequest(timeout_seconds=args.timeout), timeout=args.timeout + 10)
        except grpc.RpcError as exc:
            raise TastebudError(f"{args.target}: {exc.code().name}: {exc.details()}") from None
    if answer.switched:
        print(f"switched from {answer.previous_version} to {answer.version}")
        return 0
    print(f"still serving {answer.version}: {answer.message}")
    return 0 if answer.message == "already serving the published version" else 1


def _add_up(actions: argparse._SubParsersAction, fmt: type[argparse.HelpFormatter]) -> None:
    p = actions.add_parser("up", help="start all shards x replicas and the router; supervise until Ctrl-C",
                           formatter_class=fmt,
                           description="Start each replica as its own `tastebud serve-shard` process, wait until "
                                       "every one is SERVING, write cluster.toml, start `tastebud serve --cluster` "
                                       "and print the endpoints. A process that dies is restarted with backoff "
                                       "(0.5 s doubling to 30 s). Ctrl-C or SIGTERM stops the router, then the "
                                       "shards. Each process logs to its own file in --workdir.")
    p.add_argument("--index", type=Path, default=Path("indexes"), help="index root (serves `current`)")
    p.add_argument("--replicas", type=positive, default=2, help="processes per shard")
    p.add_argument("--port", type=port, default=50051, help="the router's port (0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address every process binds")
    p.add_argument("--workdir", type=Path, help="where cluster.toml, logs/ and pids.txt go; None: a new "
                                                "temporary folder, kept after exit")
    p.add_argument("--shard-base-port", type=port, help="shard I replica R listens on BASE + I*replicas + R; "
                                                         "None: free ports")
    p.add_argument("--start-timeout", type=seconds, default=300.0,
                   help="seconds each process may take to report SERVING")
    p.add_argument("--stop-timeout", type=seconds, default=10.0,
                   help="seconds the router, then the shards, get after SIGTERM before SIGKILL")
    p.set_defaults(run=run_up)


def run_up(args: argparse.Namespace) -> int:
    from tastebud.cluster.launcher import LaunchOptions, run_cluster

    # Restarts are WARNINGs; "restarted" / "SERVING again" are INFO and belong on the console too.
    logging.getLogger("tastebud.cluster").setLevel(logging.INFO)
    options = LaunchOptions(index=args.index, replicas=args.replicas, port=args.port, host=args.host,
                            workdir=args.workdir, shard_base_port=args.shard_base_port or None,
                            start_timeout=args.start_timeout, stop_timeout=args.stop_timeout)
    return run_cluster(options, print_line=lambda line: print(line, flush=True))
