"""A shard on "another host": its own network namespace with its own address, reached over a
veth link, made by the test and removed after. Needs root and iproute2 (skipped otherwise).

The router must answer as the single process does through that link, and when the link goes
down (a network partition, not a dead process: no connection reset, packets just vanish) it
must still answer within the deadline, degraded, naming the shard; when the link is back, whole.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tastebud.cluster.config import ClusterConfig, RouterSettings, ShardTarget
from tastebud.cluster.router import start_router
from tastebud.cluster.shard_server import start_shard_server
from tastebud.server.config import ServerConfig
from tastebud.v1 import recommender_pb2 as pb
from tastebud.v1 import recommender_pb2_grpc as pb_grpc

from test_cluster import LoopThread

REMOTE_SHARD = 1
PORT = 50061


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _netns_possible() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = f"tbprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
        _ip("netns", "del", probe)
        return True
    except (subprocess.CalledProcessError, OSError):
        return False


pytestmark = pytest.mark.skipif(not _netns_possible(), reason="needs root and `ip netns` (iproute2)")


class Host:
    """A network namespace joined to this one by a veth pair: 10.213.X.1 here, 10.213.X.2 there."""

    def __init__(self, tag: int) -> None:
        self.name = f"tb{os.getpid()}n{tag}"
        self.outside, self.inside = f"tbh{os.getpid() % 10000}{tag}", f"tbn{os.getpid() % 10000}{tag}"
        subnet = 200 + tag
        self.address = f"10.213.{subnet}.2"
        _ip("netns", "add", self.name)
        try:
            _ip("link", "add", self.outside, "type", "veth", "peer", "name", self.inside)
            _ip("link", "set", self.inside, "netns", self.name)
            _ip("addr", "add", f"10.213.{subnet}.1/24", "dev", self.outside)
            _ip("link", "set", self.outside, "up")
            _ip("-n", self.name, "addr", "add", f"{self.address}/24", "dev", self.inside)
            _ip("-n", self.name, "link", "set", self.inside, "up")
            _ip("-n", self.name, "link", "set", "lo", "up")
        except BaseException:
            self.remove()
            raise

    def link(self, up: bool) -> None:
        _ip("link", "set", self.outside, "up" if up else "down")

    def run(self, argv: list[str], log: Path) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], stdout=log.open("w"),
                                stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})

    def remove(self) -> None:
        subprocess.run(["ip", "link", "del", self.outside], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


def wait_serving(target: str, process: subprocess.Popen, log: Path, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            assert process.poll() is None, f"the shard in the namespace exited: {log.read_text()[-2000:]}"
            try:
                if stub.Check(health_pb2.HealthCheckRequest(service="tastebud.v1.Shard"), timeout=1).status == \
                        health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.3)
    raise AssertionError(f"the shard in the namespace never served: {log.read_text()[-2000:]}")


@pytest.fixture()
def remote_host() -> Iterator[Host]:
    host = Host(1)
    yield host
    host.remove()
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.count(host.name) == 0


def test_a_shard_in_another_network_namespace(remote_host: Host, demo_index: Path, encoder, stub, tmp_path) -> None:
    log = tmp_path / "remote-shard.log"
    process = remote_host.run([sys.executable, "-m", "tastebud.cli.main", "serve-shard", "--index", str(demo_index),
                               "--shard", str(REMOTE_SHARD), "--host", remote_host.address, "--port", str(PORT)], log)
    loop = LoopThread()
    local = []
    router = None
    try:
        wait_serving(f"{remote_host.address}:{PORT}", process, log)
        local = [loop.call(start_shard_server(demo_index, s)) for s in (0, 2)]
        targets = (ShardTarget(0, f"ipv4:127.0.0.1:{local[0].port}"),
                   ShardTarget(REMOTE_SHARD, f"ipv4:{remote_host.address}:{PORT}"),
                   ShardTarget(2, f"ipv4:127.0.0.1:{local[1].port}"))
        config = ClusterConfig(demo_index, targets, router=RouterSettings(shard_timeout_ms=400))
        router = loop.call(start_router(config, ServerConfig(index=demo_index, port=0, store=tmp_path / "s.sqlite"),
                                        encoder))
        with grpc.insecure_channel(f"127.0.0.1:{router.port}") as channel:
            routed = pb_grpc.RecommenderStub(channel)
            for user in ("1", "2", "7"):
                request = pb.RecommendRequest(user_id=user, k=10)
                got = routed.Recommend(request, timeout=5)
                assert [i.item_id for i in got.items] == [i.item_id for i in stub.Recommend(request).items]
                assert not got.degraded

            remote_host.link(up=False)
            started = time.monotonic()
            cut = routed.Recommend(pb.RecommendRequest(user_id="1", k=10), timeout=2)
            assert time.monotonic() - started < 2
            assert cut.degraded and list(cut.missing_shards) == [REMOTE_SHARD] and len(cut.items) == 10

            remote_host.link(up=True)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                back = routed.Recommend(pb.RecommendRequest(user_id="1", k=10), timeout=2)
                if not back.degraded:
                    break
                time.sleep(0.3)
            assert not back.degraded
    finally:
        if router is not None:
            loop.call(router.stop(0))
        for shard in local:
            loop.call(shard.stop(0))
        loop.close()
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
