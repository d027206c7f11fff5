"""Histograms of several generators merge into exactly what one generator would have measured."""

from __future__ import annotations

import json

import grpc
import numpy as np
import pytest

from tastebud.errors import InvalidInputError
from tastebud.loadtest.histogram import LatencyHistogram
from tastebud.loadtest.report import format_table, merge_results, stats_to_result, summarise, write_plots
from tastebud.loadtest.runner import RunOptions, RunStats


def latencies(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.lognormal(mean=np.log(0.004), sigma=0.6, size=n)  # seconds, a long right tail


def test_a_merged_histogram_equals_one_that_recorded_everything(rng):
    a, b = latencies(rng, 5000), latencies(rng, 3000) * 3
    one, left, right = LatencyHistogram(), LatencyHistogram(), LatencyHistogram()
    for x in np.concatenate([a, b]):
        one.record(float(x))
    for x in a:
        left.record(float(x))
    for x in b:
        right.record(float(x))
    merged = LatencyHistogram.decode(left.encode())
    merged.add(LatencyHistogram.decode(right.encode()))
    assert merged.summary() == one.summary()
    # ... and it is not what averaging the two p99s would say.
    assert merged.percentile_ms(99) != pytest.approx((left.percentile_ms(99) + right.percentile_ms(99)) / 2, rel=0.01)


def test_percentiles_hold_three_significant_digits(rng):
    values = latencies(rng, 20_000)
    h = LatencyHistogram()
    for x in values:
        h.record(float(x))
    for q in (50, 90, 99):
        assert h.percentile_ms(q) == pytest.approx(np.percentile(values, q) * 1000, rel=0.01)
    assert h.max_ms() == pytest.approx(values.max() * 1000, rel=1e-3)


def _stats(rng, n: int, second0: int, errors: int = 0) -> RunStats:
    stats = RunStats(started_at=float(second0), measured_seconds=10.0, sent=n)
    for i, x in enumerate(latencies(rng, n)):
        code = grpc.StatusCode.UNAVAILABLE if i < errors else grpc.StatusCode.OK
        stats.record("recommend" if i % 4 else "similar", code, float(x), second0 + i * 10 // n)
    return stats


def test_result_files_of_two_generators_merge_exactly(rng, tmp_path):
    options = RunOptions(target="localhost:1", mode="open", rate=200.0, duration=10.0)
    s1, s2 = _stats(rng, 2000, 1000, errors=3), _stats(rng, 1000, 1000)
    r1 = json.loads(json.dumps(stats_to_result(s1, options, {"recommend": 1.0})))  # through JSON, as on disk
    r2 = json.loads(json.dumps(stats_to_result(s2, options, {"recommend": 1.0})))
    merged = merge_results([r1, r2])
    everything = RunStats()
    for stats in (s1, s2):
        for rpc, h in stats.histograms.items():
            everything.histograms[rpc].add(h)
    summary = summarise(merged)
    for rpc, h in everything.histograms.items():
        assert {k: v for k, v in summary[rpc].items() if k not in ("errors", "rate_per_s")} == h.summary()
    assert summary["all"]["count"] == 3000 and summary["all"]["rate_per_s"] == 300.0
    assert summary["all"]["errors"] == {"UNAVAILABLE": 3}
    assert merged["rate"] == 400.0 and merged["generators"] == 2 and merged["sent"] == 3000
    assert sum(LatencyHistogram.decode(t).count for t in merged["windows"].values()) == 3000
    assert "UNAVAILABLE 3" in format_table(merged)
    png = write_plots(merged, tmp_path / "merged.png")
    assert png.stat().st_size > 10_000


def test_runs_of_different_shapes_do_not_merge(rng):
    a = stats_to_result(_stats(rng, 10, 0), RunOptions(target="t", duration=10.0), {})
    b = stats_to_result(_stats(rng, 10, 0), RunOptions(target="t", duration=20.0), {})
    with pytest.raises(InvalidInputError, match="duration_s"):
        merge_results([a, b])
