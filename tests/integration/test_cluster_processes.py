"""The cluster as separate processes on loopback, started by the launcher (``tastebud cluster up``):
every replica is its own ``tastebud serve-shard`` process and the router its own ``serve
--cluster``. Failures are real: kill -9 of a replica under load, every replica of a shard
killed, an index swap under load, a corrupt new version. No timing assertions beyond
generous deadlines.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import grpc
import pytest

from tastebud.cluster.launcher import LaunchOptions, LauncherThread
from tastebud.index.publish import resolve_version_dir
from tastebud.v1 import admin_pb2, admin_pb2_grpc
from tastebud.v1 import recommender_pb2 as pb
from tastebud.v1 import recommender_pb2_grpc as pb_grpc

from test_cluster import publish_copy

DEADLINE_S = 2.0


def copy_index(source_root: Path, root: Path) -> Path:
    source = resolve_version_dir(source_root)
    root.mkdir()
    shutil.copytree(source, root / source.name)
    (root / "current").symlink_to(source.name)
    return root


@dataclass
class LoadLoop:
    """Sequential Recommend calls from a few threads until stopped; every outcome is counted."""

    target: str
    users: list[str]
    threads: int = 3
    errors: Counter = field(default_factory=Counter)
    versions: Counter = field(default_factory=Counter)
    degraded: int = 0
    calls: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        with grpc.insecure_channel(self.target) as channel:
            stub = pb_grpc.RecommenderStub(channel)
            while not self._stop.is_set():
                request = pb.RecommendRequest(user_id=rng.choice(self.users), k=10)
                try:
                    answer = stub.Recommend(request, timeout=DEADLINE_S)
                except grpc.RpcError as exc:
                    with self._lock:
                        self.calls += 1
                        self.errors[exc.code().name] += 1
                    continue
                with self._lock:
                    self.calls += 1
                    self.versions[answer.index_version] += 1
                    self.degraded += answer.degraded

    def __enter__(self) -> "LoadLoop":
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)]
        for w in self._workers:
            w.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for w in self._workers:
            w.join(timeout=10)


@pytest.fixture(scope="module")
def process_cluster(demo_index: Path, tmp_path_factory) -> Iterator[LauncherThread]:
    root = copy_index(demo_index, tmp_path_factory.mktemp("cluster") / "indexes")
    with LauncherThread(LaunchOptions(index=root, replicas=2, port=0,
                                      workdir=tmp_path_factory.mktemp("cluster-run"))) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def cluster_stub(process_cluster) -> Iterator[pb_grpc.RecommenderStub]:
    with grpc.insecure_channel(process_cluster.endpoints().router) as channel:
        yield pb_grpc.RecommenderStub(channel)


def test_processes_answer_like_the_single_process(cluster_stub, stub) -> None:
    for user in ("1", "2", "3", "50"):
        request = pb.RecommendRequest(user_id=user, k=10)
        got, want = cluster_stub.Recommend(request, timeout=10), stub.Recommend(request, timeout=10)
        assert [i.item_id for i in got.items] == [i.item_id for i in want.items]
        assert not got.degraded and got.index_version == want.index_version


def test_kill_9_of_a_replica_under_load_fails_no_request(process_cluster, cluster_stub) -> None:
    users = [str(u) for u in range(1, 60)]
    with LoadLoop(process_cluster.endpoints().router, users) as load:
        pid = process_cluster.kill_replica(1, 0)
        time.sleep(1.0)
        process_cluster.wait_replica_back(1, 0, pid)
        time.sleep(0.5)
    assert load.calls > 50 and not load.errors, (load.calls, load.errors)
    assert load.degraded == 0, f"{load.degraded} of {load.calls} answers were degraded"
    assert process_cluster.launcher.restarts(1, 0) >= 1


def test_a_shard_with_every_replica_killed_degrades_within_the_deadline(process_cluster, cluster_stub) -> None:
    pids = [process_cluster.kill_replica(2, r) for r in range(2)]
    started = time.monotonic()
    answer = cluster_stub.Recommend(pb.RecommendRequest(user_id="1", k=10), timeout=DEADLINE_S)
    assert time.monotonic() - started < DEADLINE_S
    assert answer.degraded and list(answer.missing_shards) == [2]
    for r, pid in enumerate(pids):
        process_cluster.wait_replica_back(2, r, pid)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the router's channel reconnects after its backoff
        answer = cluster_stub.Recommend(pb.RecommendRequest(user_id="1", k=10), timeout=DEADLINE_S)
        if not answer.degraded:
            break
        time.sleep(0.2)
    assert not answer.degraded and len(answer.items) == 10


def test_an_index_swap_under_load_fails_nothing_and_never_mixes(process_cluster, cluster_stub) -> None:
    root = process_cluster.launcher.options.index
    old = resolve_version_dir(root).name
    with grpc.insecure_channel(process_cluster.endpoints().router) as channel:
        admin = admin_pb2_grpc.AdminStub(channel)
        with LoadLoop(process_cluster.endpoints().router, [str(u) for u in range(1, 60)]) as load:
            publish_copy(root, "v99991231T000000Z")
            reloaded = admin.Reload(admin_pb2.ReloadRequest(timeout_seconds=60), timeout=70)
            time.sleep(1.0)
        assert reloaded.switched or reloaded.message == "already serving the published version", reloaded
        assert not load.errors and load.degraded == 0, (load.errors, load.degraded, load.calls)
        assert set(load.versions) <= {old, "v99991231T000000Z"} and load.versions["v99991231T000000Z"] > 0
        assert cluster_stub.GetIndexInfo(pb.GetIndexInfoRequest(), timeout=5).version == "v99991231T000000Z"

        publish_copy(root, "v99991231T000001Z", corrupt=True)
        refused = admin.Reload(admin_pb2.ReloadRequest(timeout_seconds=30), timeout=40)
        assert not refused.switched and "sha256" in refused.message, refused
        info = cluster_stub.GetIndexInfo(pb.GetIndexInfoRequest(), timeout=5)
        assert info.version == "v99991231T000000Z" and info.refused_version == "v99991231T000001Z"


def test_a_shard_that_stops_answering_degrades_within_the_callers_deadline(process_cluster, cluster_stub) -> None:
    # SIGSTOP: the replicas' connections stay open but nothing answers (late, not dead).
    pids = [r.pid for r in process_cluster.endpoints().shards[0]]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        answer = cluster_stub.Recommend(pb.RecommendRequest(user_id="1", k=10), timeout=1.0)
        assert time.monotonic() - started < 1.0
        assert answer.degraded and list(answer.missing_shards) == [0] and answer.items
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
