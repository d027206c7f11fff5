"""The launcher's own logic, with real child processes that are not tastebud.

Each child is a small gRPC server written into tmp_path (grpcio's health servicer on --port,
NOT_SERVING for --delay seconds, then SERVING); flags make it crash during start-up or ignore
SIGTERM, and it appends "<name> <signal>" to a shared file when told to stop, so the stop order
can be read back. Timeouts are generous; nothing asserts on how fast anything is.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tastebud.cli.cluster import add_cluster
from tastebud.cluster.config import read_cluster_config
from tastebud.cluster.launcher import (Backoff, LaunchError, LaunchOptions, Launcher, LauncherThread, assign_ports,
                                       describe_exit, health_status, shard_target)
from tastebud.errors import InvalidInputError

FAKE_SERVER = textwrap.dedent('''
    """A stand-in for serve-shard / serve: grpc.health.v1 only."""
    import argparse, os, signal, sys, threading, time
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    p = argparse.ArgumentParser()
    p.add_argument("--name", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--service", required=True)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--crash", action="store_true")
    p.add_argument("--ignore-term", action="store_true")
    p.add_argument("--events", required=True)
    p.add_argument("--arg", action="append", default=[])  # what the launcher passed, echoed to the log
    args = p.parse_args()
    print(f"{args.name} starting on {args.port} with {args.arg}", file=sys.stderr, flush=True)
    if args.crash:
        print(f"{args.name}: boom, cannot load the shard", file=sys.stderr, flush=True)
        sys.exit(3)
    if os.path.exists(args.events + "." + args.name + ".crash"):  # made by a test to crash-loop it
        sys.exit(4)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    for name in ("", args.service):
        servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    server.add_insecure_port(f"{args.host}:{args.port}")
    server.start()
    stop = threading.Event()

    def on_signal(signum, frame):
        with open(args.events, "a") as f:
            f.write(f"{args.name} {signal.Signals(signum).name}\\n")
        if not args.ignore_term:
            stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    time.sleep(args.delay)
    for name in ("", args.service):
        servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    print(f"{args.name} serving", file=sys.stderr, flush=True)
    stop.wait()
    server.stop(0.5).wait()
    sys.exit(0)
''')


@dataclass
class FakeCommands:
    """Commands for the launcher that run FAKE_SERVER; ``crash``/``slow``/``stubborn`` pick children by name."""

    script: Path
    events: Path
    crash: set[str] = field(default_factory=set)
    slow: dict[str, float] = field(default_factory=dict)
    stubborn: set[str] = field(default_factory=set)
    delay: float = 0.3  # NOT_SERVING this long first, so start-up really waits

    def _argv(self, name: str, service: str, port: int, host: str, passed: list[str]) -> list[str]:
        argv = [sys.executable, str(self.script), "--name", name, "--port", str(port), "--host", host,
                "--service", service, "--events", str(self.events), "--delay", str(self.slow.get(name, self.delay))]
        argv += ["--crash"] * (name in self.crash) + ["--ignore-term"] * (name in self.stubborn)
        for a in passed:
            argv.append(f"--arg={a}")
        return argv

    def shard(self, index: Path, shard: int, host: str, port: int) -> list[str]:
        return self._argv(f"shard-{shard}", "tastebud.v1.Shard", port, host, ["--index", str(index),
                                                                              "--shard", str(shard)])

    def router(self, cluster_file: Path, host: str, port: int) -> list[str]:
        return self._argv("router", "tastebud.v1.Recommender", port, host, ["--cluster", str(cluster_file)])


@pytest.fixture
def fake(tmp_path: Path) -> FakeCommands:
    script = tmp_path / "fake_server.py"
    script.write_text(FAKE_SERVER)
    return FakeCommands(script, tmp_path / "events.txt")


def options(tmp_path: Path, **changes) -> LaunchOptions:
    values = dict(index=tmp_path / "indexes", shards=2, replicas=2, port=0, workdir=tmp_path / "work",
                  start_timeout=60.0, stop_timeout=10.0, backoff=Backoff(initial=0.2, maximum=5.0, reset_after=60.0))
    values.update(changes)
    return LaunchOptions(**values)


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def run(coroutine, timeout: float = 120.0):
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


# -- pure logic ----------------------------------------------------------------------------------

def test_backoff_doubles_to_the_maximum_and_resets_after_a_long_run():
    b = Backoff(initial=0.5, maximum=30.0, reset_after=60.0)
    delays, previous = [], None
    for _ in range(8):
        previous = b.next_delay(previous, ran_for=1.0)
        delays.append(previous)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert b.next_delay(30.0, ran_for=61.0) == 0.5
    with pytest.raises(InvalidInputError):
        Backoff(initial=0.0)


def test_ports_from_a_base_are_shard_major_and_free_ports_are_distinct(tmp_path):
    router, ports = assign_ports(options(tmp_path, port=50051, shard_base_port=50061, shards=3), 3)
    assert router == 50051 and ports == [[50061, 50062], [50063, 50064], [50065, 50066]]
    with pytest.raises(InvalidInputError, match="--port 50062 is inside"):
        assign_ports(options(tmp_path, port=50062, shard_base_port=50061), 2)
    router, ports = assign_ports(options(tmp_path), 3)
    flat = [p for s in ports for p in s]
    assert len(set(flat + [router])) == 7 and all(len(s) == 2 for s in ports)


def test_targets_and_exit_descriptions():
    assert shard_target("127.0.0.1", [50061, 50062]) == "ipv4:127.0.0.1:50061,127.0.0.1:50062"
    assert shard_target("0.0.0.0", [1]) == "ipv4:127.0.0.1:1"
    assert shard_target("::1", [1, 2]) == "ipv6:[::1]:1,[::1]:2"
    assert describe_exit(-9) == "killed by SIGKILL (exit code -9)" and describe_exit(3) == "exit code 3"


def test_cli_parses_cluster_up_with_its_defaults():
    p = argparse.ArgumentParser(prog="tastebud")
    add_cluster(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(["cluster", "up", "--index", "ix", "--shard-base-port", "50061"])
    assert (args.index, args.replicas, args.port, args.host, args.shard_base_port) == \
        (Path("ix"), 2, 50051, "127.0.0.1", 50061)
    with pytest.raises(SystemExit):
        p.parse_args(["cluster", "up", "--replicas", "0"])


# -- real child processes ------------------------------------------------------------------------

def test_start_waits_for_serving_writes_the_cluster_file_and_stop_ends_every_child(tmp_path, fake):
    async def scenario():
        launcher = Launcher(options(tmp_path), fake)
        ep = await launcher.start()
        # Everything reports SERVING on the service the launcher waited for, once start returns.
        for address, service in [(ep.router, "tastebud.v1.Recommender"),
                                 *((r.address, "tastebud.v1.Shard") for s in ep.shards for r in s)]:
            assert await health_status(address, service, timeout=5) == 1  # SERVING
        codes = await launcher.stop()
        return ep, codes

    ep, codes = run(scenario())
    assert len(ep.shards) == 2 and all(len(s) == 2 for s in ep.shards)
    config = read_cluster_config(ep.cluster_file)
    assert [s.target for s in config.shards] == [shard_target("127.0.0.1", [r.port for r in s]) for s in ep.shards]
    assert config.index == (tmp_path / "indexes").resolve()
    # Each replica got its own shard number and the index; the router got the cluster file.
    assert f"'--shard', '1'" in ep.shards[1][0].log.read_text()
    assert str(ep.cluster_file) in ep.router_log.read_text()
    assert (ep.workdir / "pids.txt").read_text().count("\n") == 5
    assert set(codes.values()) == {0} and len(codes) == 5
    assert not [pid for pid in ep.pids() if alive(pid)]
    # The router was told to stop first, then every shard replica.
    stopped = fake.events.read_text().split()
    assert stopped[0] == "router" and stopped.count("SIGTERM") == 5


def test_a_child_crashing_during_start_up_is_named_with_its_log_and_the_rest_are_stopped(tmp_path, fake):
    fake.crash = {"shard-1"}
    launcher = Launcher(options(tmp_path), fake)
    with pytest.raises(LaunchError) as exc:
        run(launcher.start())
    message = str(exc.value)
    assert "shard 1 replica" in message and "exit code 3 during start-up" in message
    assert "boom, cannot load the shard" in message and "shard-1-replica-" in message
    pids = [int(line.split()[0]) for line in (tmp_path / "work" / "pids.txt").read_text().splitlines()]
    assert len(pids) == 4 and not [p for p in pids if alive(p)]
    assert not (tmp_path / "work" / "cluster.toml").exists()  # the router never started


def test_a_child_that_never_becomes_serving_times_out_by_name(tmp_path, fake):
    fake.slow = {"router": 120.0}
    launcher = Launcher(options(tmp_path, shards=1, replicas=1, start_timeout=3.0), fake)
    with pytest.raises(LaunchError, match=r"router \(pid \d+\) did not report SERVING .* within 3 s"):
        run(launcher.start())
    pids = [int(line.split()[0]) for line in (tmp_path / "work" / "pids.txt").read_text().splitlines()]
    assert len(pids) == 2 and not [p for p in pids if alive(p)]


def test_a_killed_replica_and_the_router_are_restarted_with_backoff(tmp_path, fake, caplog):
    caplog.set_level(logging.INFO, logger="tastebud.cluster")

    async def scenario():
        launcher = Launcher(options(tmp_path), fake)
        ep = await launcher.start()
        seen = set(ep.pids())
        try:
            for _ in range(2):  # twice in a row: the second delay is the doubled one
                old = launcher.kill_replica(1, 0, signal.SIGKILL)
                new = await launcher.wait_replica_back(1, 0, old, timeout=60)
                assert new != old and not alive(old)
                assert f"{new} shard 1 replica 0" in (ep.workdir / "pids.txt").read_text()
                seen.add(new)
                addr = launcher.endpoints().shards[1][0].address
                assert addr == ep.shards[1][0].address  # the same port: cluster.toml stays right
                assert await health_status(addr, "tastebud.v1.Shard", timeout=5) == 1
            old = launcher.kill_replica(None, sig=signal.SIGTERM)  # a router that exits on its own
            seen.add(await launcher.wait_replica_back(None, old_pid=old, timeout=60))
            assert launcher.restarts(1, 0) == 2 and launcher.restarts(None) == 1 and launcher.restarts(0, 1) == 0
        finally:
            await launcher.stop()
        return seen

    seen = run(scenario())
    assert not [pid for pid in seen if alive(pid)]
    restarts = [r.getMessage() for r in caplog.records if "restart #" in r.getMessage()]
    assert len(restarts) == 3
    assert "shard 1 replica 0" in restarts[0] and "killed by SIGKILL" in restarts[0] and "in 0.2 s" in restarts[0]
    assert "restart #2 in 0.4 s" in restarts[1]
    assert restarts[2].startswith("router") and "exit code 0" in restarts[2] and "in 0.2 s" in restarts[2]
    assert any("is SERVING again" in r.getMessage() for r in caplog.records)


def test_a_crash_looping_replica_backs_off_longer_each_time_and_recovers(tmp_path, fake, caplog):
    caplog.set_level(logging.INFO, logger="tastebud.cluster")
    crash = Path(f"{fake.events}.shard-0.crash")

    async def scenario():
        launcher = Launcher(options(tmp_path, shards=1, replicas=2), fake)
        await launcher.start()
        try:
            crash.touch()
            old = launcher.kill_replica(0, 0)
            deadline = time.monotonic() + 60
            while launcher.restarts(0, 0) < 4 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            crash.unlink()
            await launcher.wait_replica_back(0, 0, old, timeout=60)
            assert launcher.restarts(0, 1) == 0
        finally:
            await launcher.stop()

    run(scenario())
    delays = [r.getMessage().split(" in ")[-1].split()[0] for r in caplog.records
              if r.getMessage().startswith("shard 0 replica 0") and "restart #" in r.getMessage()]
    assert delays[:4] == ["0.2", "0.4", "0.8", "1.6"]
    assert any("exit code 4" in r.getMessage() for r in caplog.records)


def test_a_child_ignoring_sigterm_is_killed_after_the_stop_timeout(tmp_path, fake):
    fake.stubborn = {"shard-0"}
    thread = LauncherThread(options(tmp_path, shards=1, replicas=2, stop_timeout=1.0), fake)
    ep = thread.start()
    codes = thread.stop()
    assert codes["router"] == 0
    assert codes["shard 0 replica 0"] == codes["shard 0 replica 1"] == -signal.SIGKILL
    assert not [pid for pid in ep.pids() if alive(pid)]


def test_the_thread_api_kills_and_waits_for_a_replica(tmp_path, fake):
    with LauncherThread(options(tmp_path, shards=1, replicas=2), fake) as cluster:
        ep = cluster.endpoints()
        old = cluster.kill_replica(0, 1)
        new = cluster.wait_replica_back(0, 1, old, timeout=60)
        assert new != old and cluster.endpoints().shards[0][1].pid == new
        with pytest.raises(InvalidInputError, match="no shard 3 replica 0"):
            cluster.kill_replica(3, 0)
    assert not [pid for pid in [*ep.pids(), new] if alive(pid)]


DRIVER = textwrap.dedent('''
    import sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_launcher import FakeCommands
    from tastebud.cluster.launcher import LaunchOptions, run_cluster

    tmp = Path({tmp!r})
    fake = FakeCommands(tmp / "fake_server.py", tmp / "events.txt")
    options = LaunchOptions(index=tmp / "indexes", shards=1, replicas=2, port=0, workdir=tmp / "work")
    sys.exit(run_cluster(options, fake, print_line=lambda line: print(line, flush=True)))
''')


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_cluster_prints_the_endpoints_and_a_signal_stops_everything_with_exit_0(tmp_path, fake, sig):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(tests=str(Path(__file__).parent), tmp=str(tmp_path)))
    proc = subprocess.Popen([sys.executable, str(driver)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C or SIGTERM stops everything" in line:
                break
        assert any(line.startswith("router ") for line in lines), (lines, proc.stderr.read() if proc.poll() else "")
        pids = [int(line.split(" pid ")[1].split()[0]) for line in lines if " pid " in line]
        assert len(pids) == 3 and all(alive(p) for p in pids)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopping: router first" in out and "exit code 0" in out
    assert not [p for p in pids if alive(p)]
