"""`tastebud loadtest` against a real server: every scheduled call is sent and accounted for."""

from __future__ import annotations

import asyncio
import json

import pytest

from tastebud.cli.main import main
from tastebud.loadtest.histogram import LatencyHistogram
from tastebud.loadtest.mix import DEFAULT_MIX, TrafficMix
from tastebud.loadtest.report import summarise
from tastebud.loadtest.runner import RunOptions, run_load
from tastebud.loadtest.traffic import Population, make_requests
from tastebud.server.config import ServerConfig

from live_server import ServerThread


@pytest.fixture(scope="module")
def loadtest_server(demo_index, encoder, tmp_path_factory):
    """Its own server and store: the load test records interactions."""
    store = tmp_path_factory.mktemp("loadtest-store") / "interactions.sqlite"
    thread = ServerThread(ServerConfig(index=demo_index, port=0, store=store, workers=2), encoder)
    yield thread
    thread.stop()


def test_open_loop_sends_every_scheduled_call_and_records_the_measured_ones(loadtest_server, demo_index):
    mix = TrafficMix.from_toml(DEFAULT_MIX)
    requests = make_requests(mix, Population.from_index(demo_index), 200, seed=1)
    options = RunOptions(target=loadtest_server.target, mode="open", rate=40.0, duration=2.0, warmup=0.5,
                         deadline=10.0, arrivals="uniform", progress=False)
    stats = asyncio.run(run_load(options, requests))
    assert stats.sent == 100 and stats.not_sent == 0  # 40/s for 2.5 s
    recorded = sum(h.count for h in stats.histograms.values())
    assert recorded == 80  # the 2 s after warm-up
    assert not any(stats.errors.values()), dict(stats.errors)
    assert sum(h.count for h in stats.windows.values()) == 80
    assert set(stats.histograms) <= {"recommend", "similar", "search", "record"} and "recommend" in stats.histograms


def test_closed_loop_keeps_callers_busy_without_errors(loadtest_server, demo_index):
    requests = make_requests(TrafficMix.from_toml(DEFAULT_MIX), Population.from_index(demo_index), 500, seed=2)
    options = RunOptions(target=loadtest_server.target, mode="closed", concurrency=3, duration=1.5, warmup=0.3,
                         deadline=10.0, progress=False)
    stats = asyncio.run(run_load(options, requests))
    recorded = sum(h.count for h in stats.histograms.values())
    assert recorded > 10 and stats.sent >= recorded
    assert not any(stats.errors.values()), dict(stats.errors)


def test_the_command_runs_several_generators_and_merges_their_histograms(loadtest_server, demo_index, tmp_path,
                                                                        capsys):
    out = tmp_path / "run.json"
    code = main(["loadtest", "--target", loadtest_server.target, "--index", str(demo_index), "--mode", "open",
                 "--rate", "30", "--arrivals", "uniform", "--duration", "2", "--warmup", "0.5",
                 "--deadline-ms", "10000", "--processes", "2", "--out", str(out), "--no-progress"])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["generators"] == 2 and result["rate"] == 30.0 and len(set(result["seeds"])) == 2
    assert result["sent"] == 2 * 37  # 15/s each for 2.5 s, uniform: 37 sends each
    summary = summarise(result)
    assert summary["all"]["count"] == 2 * 29 and summary["all"]["errors"] == {}  # sends k/15 s, k = 8..36
    assert result["summary"] == summary
    assert sum(LatencyHistogram.decode(t).count for t in result["windows"].values()) == 58
    assert out.with_suffix(".png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "recommend" in printed and "p99.9" in printed and "2 generator(s)" in printed


def test_an_unreachable_target_is_a_clear_error(demo_index, tmp_path, capsys):
    code = main(["loadtest", "--target", "127.0.0.1:9", "--index", str(demo_index), "--duration", "1",
                 "--out", str(tmp_path / "x.json"), "--no-progress"])
    assert code == 1
    assert "127.0.0.1:9" in capsys.readouterr().err
