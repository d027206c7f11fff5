"""The router over shard services, on one event loop in a background thread: real gRPC on
loopback, real FAISS, the real model. Answers through the router must equal the single
process's on the same index; a shard with no live replica degrades the answer; a corrupt new
version is refused while the old one keeps serving.

(Separate processes, kill -9 and swaps under load: tests/integration/test_cluster_processes.py.)
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from pathlib import Path
from typing import Iterator

import grpc
import numpy as np
import pytest

from tastebud.cluster.config import ClusterConfig, RouterSettings, ShardTarget
from tastebud.cluster.router import RunningRouter, start_router
from tastebud.cluster.shard_server import RunningShard, start_shard_server
from tastebud.index.manifest import read_manifest
from tastebud.index.publish import resolve_version_dir
from tastebud.server.config import ServerConfig
from tastebud.v1 import admin_pb2, admin_pb2_grpc
from tastebud.v1 import recommender_pb2 as pb
from tastebud.v1 import recommender_pb2_grpc as pb_grpc
from tastebud.v1 import shard_pb2 as spb
from tastebud.v1 import shard_pb2_grpc as spb_grpc

USERS = ["1", "2", "3", "17", "42", "99"]


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coroutine, timeout: float = 120):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


class Cluster:
    """Every shard of ``index`` with ``replicas`` replicas, and a router, on one loop."""

    def __init__(self, index: Path, encoder, store: Path, replicas: int = 1, shard_timeout_ms: float = 2000) -> None:
        self.loop = LoopThread()
        n = len(read_manifest(resolve_version_dir(index)).shards)
        self.shards: dict[int, list[RunningShard]] = {
            s: [self.loop.call(start_shard_server(index, s, watch_seconds=0.2, linger_seconds=5))
                for _ in range(replicas)] for s in range(n)}
        targets = tuple(ShardTarget(s, "ipv4:" + ",".join(f"127.0.0.1:{r.port}" for r in reps))
                        for s, reps in self.shards.items())
        self.config = ClusterConfig(index, targets, watch_seconds=0.2,
                                    router=RouterSettings(shard_timeout_ms=shard_timeout_ms))
        self.router: RunningRouter = self.loop.call(start_router(
            self.config, ServerConfig(index=index, port=0, store=store, workers=2), encoder))
        self.target = f"127.0.0.1:{self.router.port}"

    def stop_replica(self, shard: int, replica: int) -> None:
        self.loop.call(self.shards[shard][replica].stop(0))

    def close(self) -> None:
        self.loop.call(self.router.stop(0))
        for replicas in self.shards.values():
            for r in replicas:
                self.loop.call(r.stop(0))
        self.loop.close()


@pytest.fixture(scope="module")
def cluster(demo_index: Path, encoder, tmp_path_factory) -> Iterator[Cluster]:
    c = Cluster(demo_index, encoder, tmp_path_factory.mktemp("router-store") / "interactions.sqlite", replicas=2)
    yield c
    c.close()


@pytest.fixture(scope="module")
def router_stub(cluster: Cluster) -> Iterator[pb_grpc.RecommenderStub]:
    with grpc.insecure_channel(cluster.target) as channel:
        yield pb_grpc.RecommenderStub(channel)


def same_items(a: pb.RecommendResponse, b: pb.RecommendResponse) -> None:
    assert [i.item_id for i in a.items] == [i.item_id for i in b.items]
    assert [i.reason for i in a.items] == [i.reason for i in b.items]
    assert [i.score for i in a.items] == pytest.approx([i.score for i in b.items], abs=1e-5)
    assert a.index_version == b.index_version


def test_router_answers_equal_the_single_process(router_stub, stub) -> None:
    for user in USERS:
        for request in (pb.RecommendRequest(user_id=user, k=10),
                        pb.RecommendRequest(user_id=user, k=5, diversity=0.5),
                        pb.RecommendRequest(user_id=user, k=7, filter=pb.Filter(year_min=1990))):
            same_items(router_stub.Recommend(request, timeout=10), stub.Recommend(request, timeout=10))
    similar = pb.SimilarItemsRequest(item_id=stub.Recommend(pb.RecommendRequest(user_id="1", k=1)).items[0].item_id, k=8)
    same_items(router_stub.SimilarItems(similar, timeout=10), stub.SimilarItems(similar, timeout=10))
    search = pb.SearchItemsRequest(text="space adventure with robots", k=6)
    same_items(router_stub.SearchItems(search, timeout=10), stub.SearchItems(search, timeout=10))
    info = router_stub.GetIndexInfo(pb.GetIndexInfoRequest(), timeout=10)
    assert info.version == stub.GetIndexInfo(pb.GetIndexInfoRequest()).version and info.refused_version == ""


def test_router_rejects_bad_requests_like_the_single_process(router_stub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        router_stub.Recommend(pb.RecommendRequest(user_id="1", k=0), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "k" in caught.value.details()
    with pytest.raises(grpc.RpcError) as caught:
        router_stub.Recommend(pb.RecommendRequest(user_id="1", k=5, history=["no-such-item"]), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "history[0]" in caught.value.details()


def test_a_shard_with_no_live_replica_degrades_the_answer(demo_index, encoder, tmp_path) -> None:
    c = Cluster(demo_index, encoder, tmp_path / "store.sqlite", replicas=1, shard_timeout_ms=500)
    try:
        with grpc.insecure_channel(c.target) as channel:
            stub = pb_grpc.RecommenderStub(channel)
            assert not stub.Recommend(pb.RecommendRequest(user_id="1", k=10), timeout=10).degraded
            c.stop_replica(1, 0)
            answer = stub.Recommend(pb.RecommendRequest(user_id="1", k=10), timeout=3)
            assert answer.degraded and list(answer.missing_shards) == [1] and len(answer.items) == 10
            for s in (0, 2):
                c.stop_replica(s, 0)
            with pytest.raises(grpc.RpcError) as caught:
                stub.Recommend(pb.RecommendRequest(user_id="1", k=10), timeout=3)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        c.loop.call(c.router.stop(0))
        c.loop.close()


def publish_copy(root: Path, version: str, corrupt: bool = False) -> None:
    """Publish a copy of the current version under a new name (optionally with a corrupt shard file)."""
    publish_copy_of(root, resolve_version_dir(root).name, version, corrupt)


def publish_copy_of(root: Path, source_version: str, version: str, corrupt: bool = False) -> None:
    source = root / source_version
    target = root / version
    shutil.copytree(source, target)
    manifest = (target / "manifest.json").read_text()
    (target / "manifest.json").write_text(manifest.replace(source.name, version))
    if corrupt:
        victim = next(p for p in sorted(target.iterdir()) if p.name.startswith("shard-") and p.suffix == ".npy")
        data = bytearray(victim.read_bytes())
        data[-1] ^= 0xFF
        victim.write_bytes(bytes(data))
    link = root / ".current.tmp"
    link.symlink_to(version)
    link.replace(root / "current")


def test_reload_swaps_and_a_corrupt_version_is_refused(demo_index, encoder, tmp_path) -> None:
    root = tmp_path / "indexes"
    source = resolve_version_dir(demo_index)
    root.mkdir()
    shutil.copytree(source, root / source.name)
    (root / "current").symlink_to(source.name)
    c = Cluster(root, encoder, tmp_path / "store.sqlite", replicas=2)
    try:
        with grpc.insecure_channel(c.target) as channel:
            stub = pb_grpc.RecommenderStub(channel)
            admin = admin_pb2_grpc.AdminStub(channel)
            before = stub.Recommend(pb.RecommendRequest(user_id="2", k=10), timeout=10)
            publish_copy(root, "v99990101T000000Z")
            reloaded = admin.Reload(admin_pb2.ReloadRequest(timeout_seconds=30), timeout=40)
            assert reloaded.switched and reloaded.version == "v99990101T000000Z", reloaded
            after = stub.Recommend(pb.RecommendRequest(user_id="2", k=10), timeout=10)
            assert after.index_version == "v99990101T000000Z"
            assert [i.item_id for i in after.items] == [i.item_id for i in before.items]

            publish_copy(root, "v99990102T000000Z", corrupt=True)
            refused = admin.Reload(admin_pb2.ReloadRequest(timeout_seconds=30), timeout=40)
            assert not refused.switched and "refused by shard" in refused.message, refused
            assert "sha256" in refused.message
            info = stub.GetIndexInfo(pb.GetIndexInfoRequest(), timeout=10)
            assert info.version == "v99990101T000000Z" and info.refused_version == "v99990102T000000Z"
            assert "sha256" in info.refused_reason
            assert stub.Recommend(pb.RecommendRequest(user_id="2", k=10), timeout=10).index_version == \
                "v99990101T000000Z"

            # No Reload this time: shards and router follow the published pointer on their own.
            publish_copy_of(root, "v99990101T000000Z", "v99990103T000000Z")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and \
                    stub.GetIndexInfo(pb.GetIndexInfoRequest(), timeout=10).version != "v99990103T000000Z":
                time.sleep(0.2)
            info = stub.GetIndexInfo(pb.GetIndexInfoRequest(), timeout=10)
            assert info.version == "v99990103T000000Z" and info.refused_version == ""
    finally:
        c.close()


def test_the_shard_service_refuses_bad_requests_naming_the_field(cluster: Cluster) -> None:
    replica = cluster.shards[0][0]
    with grpc.insecure_channel(f"127.0.0.1:{replica.port}") as channel:
        shard = spb_grpc.ShardStub(channel)
        good = dict(queries=np.zeros(9, np.float32).tobytes(), dimension=9, k=5, space="item")
        for change, field in ((dict(queries=b"\0" * 7), "queries"), (dict(space="pictures"), "space"),
                              (dict(k=0), "k"), (dict(dimension=3, queries=np.zeros(3, np.float32).tobytes()),
                                                 "dimension"),
                              (dict(exclude=b"\0" * 5), "exclude")):
            with pytest.raises(grpc.RpcError) as caught:
                shard.Search(spb.ShardSearchRequest(**{**good, **change}), timeout=5)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, change
            assert field in caught.value.details()
        with pytest.raises(grpc.RpcError) as caught:
            shard.Search(spb.ShardSearchRequest(**good, index_version="v-no-such-version"), timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE and "not loaded" in caught.value.details()
        info = shard.Info(spb.ShardInfoRequest(), timeout=5)
        assert info.shard == 0 and info.shards == 3 and len(info.versions) == 1
        assert info.replica.endswith(f":{replica.port}")  # how the router counts the replicas it reached
