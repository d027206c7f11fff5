"""The manifests' commands run: the shard and router containers' exact args from the rendered
deploy/k8s (paths mapped to temporary folders, 0.0.0.0 to loopback, one replica per shard on its
own port), started as real processes on an index that the build container's args publish; every
probe's gRPC health service answers SERVING, the router answers through the Recommender API,
nothing is written into the (read-only on Kubernetes) index root after the build, and SIGTERM
stops every process cleanly."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tastebud.ingest.demo import write_demo_data
from tastebud.v1 import recommender_pb2 as pb
from tastebud.v1 import recommender_pb2_grpc as pb_grpc

from live_server import free_port

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("tastebud_deploy_validate_cmd", ROOT / "deploy" / "validate.py")
validate = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = validate
_spec.loader.exec_module(validate)

TASTEBUD = str(Path(sys.executable).parent / "tastebud")
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def _container(objs, kind, name):
    obj = next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)
    return next(c for pod in validate._pod_specs(obj) for c in validate._containers(pod))


def _health(port: int, service: str) -> str:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def _files(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in root.rglob("*")}


def test_the_manifests_commands_serve(tmp_path: Path):
    objs = validate.render()
    paths = {"/data/indexes": tmp_path / "indexes", "/data/catalog": tmp_path / "catalog",
             "/var/lib/tastebud": tmp_path / "store", "/etc/tastebud": tmp_path / "etc"}
    for p in paths.values():
        p.mkdir()

    def local(arg: str) -> str:
        for k8s, here in paths.items():
            if arg == k8s or arg.startswith(k8s + "/"):
                return str(here) + arg[len(k8s):]
        return "127.0.0.1" if arg == "0.0.0.0" else arg

    env = dict(os.environ, HF_HUB_OFFLINE="1", TASTEBUD_CACHE_DIR=str(tmp_path / "cache"), HOME=str(tmp_path))
    demo = write_demo_data(tmp_path / "demo", n_items=300, n_users=80, seed=0)
    catalog = paths["/data/catalog"]
    build = [local(a) for a in _container(objs, "CronJob", "tastebud-build")["args"]]
    for flag, source in (("--items", demo.items), ("--interactions", demo.interactions), ("--config", demo.config)):
        target = Path(build[build.index(flag) + 1])
        target.with_suffix(source.suffix).write_bytes(source.read_bytes())
        build[build.index(flag) + 1] = str(target.with_suffix(source.suffix))  # the demo writes CSV, not Parquet
    subprocess.run([TASTEBUD, *build], env=env, check=True, timeout=300, capture_output=True)
    published = _files(paths["/data/indexes"])

    cm = next(o for o in objs if o["kind"] == "ConfigMap")
    toml = cm["data"]["cluster.toml"].replace('"/data/indexes"', f'"{paths["/data/indexes"]}"')
    started: list[tuple[subprocess.Popen, int, dict]] = []
    try:
        shards = sorted((o for o in objs if o["kind"] == "Deployment"
                         and o["metadata"]["name"].startswith("tastebud-shard-")), key=lambda o: o["metadata"]["name"])
        for obj in shards:
            c = _container(objs, "Deployment", obj["metadata"]["name"])
            args, port = [local(a) for a in c["args"]], free_port()
            number = args[args.index("--shard") + 1]
            args[args.index("--port") + 1] = str(port)
            toml = toml.replace(f"dns:///tastebud-shard-{number}.tastebud.svc.cluster.local:50061",
                                f"ipv4:127.0.0.1:{port}")
            started.append((subprocess.Popen([TASTEBUD, *args], env=env, stdout=subprocess.DEVNULL,
                                             stderr=open(tmp_path / f"shard-{number}.log", "w")), port, c))
        (paths["/etc/tastebud"] / "cluster.toml").write_text(toml)
        router = _container(objs, "Deployment", "tastebud-router")
        args, port = [local(a) for a in router["args"]], free_port()
        args[args.index("--port") + 1] = str(port)
        started.append((subprocess.Popen([TASTEBUD, *args], env=env, stdout=subprocess.DEVNULL,
                                         stderr=open(tmp_path / "router.log", "w")), port, router))

        deadline, states = time.monotonic() + 180, {}
        while time.monotonic() < deadline:
            assert all(p.poll() is None for p, _, _ in started), [(tmp_path / f).read_text()[-2000:]
                                                                   for f in os.listdir(tmp_path) if f.endswith(".log")]
            for _, port, c in started:
                for probe in PROBES:
                    try:
                        states[(port, probe)] = _health(port, c[probe]["grpc"].get("service", ""))
                    except grpc.RpcError as exc:
                        states[(port, probe)] = exc.code().name
            if all(s == "SERVING" for s in states.values()):
                break
            time.sleep(1)
        assert all(s == "SERVING" for s in states.values()), states

        with grpc.insecure_channel(f"127.0.0.1:{started[-1][1]}") as ch:
            stub = pb_grpc.RecommenderStub(ch)
            info = stub.GetIndexInfo(pb.GetIndexInfoRequest(), timeout=10)
            item = stub.Recommend(pb.RecommendRequest(user_id="1", k=1), timeout=10).items[0].item_id
            stub.RecordInteractions(pb.RecordInteractionsRequest(
                interactions=[pb.Interaction(user_id="1", item_id=item, event="view")]), timeout=10)
        assert info.shards == len(shards) and info.items == 300
        # The store is where the router's PersistentVolumeClaim is mounted.
        stored = [p.name for p in paths["/var/lib/tastebud"].iterdir() if p.suffix == ".sqlite"]
        assert stored == ["interactions.sqlite"]
    finally:
        for p, _, _ in started:
            p.send_signal(signal.SIGTERM)
        codes = []
        for p, _, _ in started:
            try:
                codes.append(p.wait(timeout=60))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait())
    assert codes == [0] * len(started)
    assert _files(paths["/data/indexes"]) == published, "a server wrote into the index root"
