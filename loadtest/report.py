"""Load-test results: the JSON file, exact merging of several generators, the table, the plots.

A result file holds the run's settings and its histograms (encoded); summaries are always
recomputed from the histograms, so a merged result's percentiles are those of all calls of
all generators, never averages of percentiles.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from tastebud.errors import InvalidInputError
from tastebud.loadtest.histogram import LatencyHistogram
from tastebud.loadtest.runner import RunOptions, RunStats

FORMAT = "tastebud-loadtest/1"


def stats_to_result(stats: RunStats, options: RunOptions, mix_shares: dict[str, float]) -> dict[str, Any]:
    """The JSON-ready result of one generator."""
    return {
        "format": FORMAT, "target": options.target, "mode": options.mode,
        "rate": options.rate if options.mode == "open" else None,
        "concurrency": options.concurrency if options.mode == "closed" else None,
        "duration_s": options.duration, "warmup_s": options.warmup, "deadline_s": options.deadline,
        "seeds": [options.seed], "generators": 1, "mix": mix_shares, "started_at": stats.started_at,
        "sent": stats.sent, "not_sent": stats.not_sent, "measured_seconds": stats.measured_seconds,
        "rpcs": {rpc: {"histogram": h.encode(), "errors": dict(stats.errors.get(rpc, {}))}
                 for rpc, h in sorted(stats.histograms.items())},
        "windows": {str(second): h.encode() for second, h in sorted(stats.windows.items())},
    }


def read_result(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{path}: not a readable load-test result ({exc})") from exc
    if data.get("format") != FORMAT:
        raise InvalidInputError(f"{path}: format {data.get('format')!r}, expected {FORMAT!r}")
    return data


def merge_results(results: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One result of several generators that ran together: histograms and counts add up."""
    results = list(results)
    if not results:
        raise InvalidInputError("nothing to merge")
    first = results[0]
    for other in results[1:]:
        for key in ("mode", "duration_s", "deadline_s"):
            if other[key] != first[key]:
                raise InvalidInputError(f"cannot merge runs with different {key}: {first[key]} and {other[key]}")
    rpcs: dict[str, LatencyHistogram] = {}
    errors: dict[str, Counter] = {}
    windows: dict[str, LatencyHistogram] = {}
    for result in results:
        for rpc, entry in result["rpcs"].items():
            rpcs.setdefault(rpc, LatencyHistogram()).add(LatencyHistogram.decode(entry["histogram"]))
            errors.setdefault(rpc, Counter()).update(entry["errors"])
        for second, text in result["windows"].items():
            windows.setdefault(second, LatencyHistogram()).add(LatencyHistogram.decode(text))
    merged = dict(first)
    merged.update({
        "rate": sum(r["rate"] for r in results) if first["mode"] == "open" else None,
        "concurrency": sum(r["concurrency"] for r in results) if first["mode"] == "closed" else None,
        "seeds": [s for r in results for s in r["seeds"]], "generators": sum(r["generators"] for r in results),
        "started_at": min(r["started_at"] for r in results),
        "sent": sum(r["sent"] for r in results), "not_sent": sum(r["not_sent"] for r in results),
        "targets": sorted({r["target"] for r in results}),
        "rpcs": {rpc: {"histogram": h.encode(), "errors": dict(errors[rpc])} for rpc, h in sorted(rpcs.items())},
        "windows": {s: windows[s].encode() for s in sorted(windows, key=int)},
    })
    return merged


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """Per RPC and in total: count, errors by code, achieved calls/s, percentiles (ms)."""
    seconds = result["measured_seconds"] or 1.0
    total, all_errors = LatencyHistogram(), Counter()
    rows = {}
    for rpc, entry in result["rpcs"].items():
        h = LatencyHistogram.decode(entry["histogram"])
        total.add(h)
        all_errors.update(entry["errors"])
        rows[rpc] = {**h.summary(), "errors": dict(entry["errors"]), "rate_per_s": round(h.count / seconds, 1)}
    rows["all"] = {**total.summary(), "errors": dict(all_errors), "rate_per_s": round(total.count / seconds, 1)}
    return rows


def with_summary(result: dict[str, Any]) -> dict[str, Any]:
    return {**result, "summary": summarise(result)}


def format_table(result: dict[str, Any]) -> str:
    """The end-of-run table a person reads."""
    summary = summarise(result)
    load = (f"open loop at {result['rate']:g}/s" if result["mode"] == "open"
            else f"closed loop, {result['concurrency']} in flight")
    head = (f"{load}, {result['duration_s']:g}s measured after {result['warmup_s']:g}s warm-up, "
            f"{result['generators']} generator(s); sent {result['sent']}, not sent {result['not_sent']}")
    cols = f"{'rpc':<10} {'count':>8} {'errors':>24} {'calls/s':>9} {'p50':>8} {'p90':>8} {'p99':>8} {'p99.9':>8} {'max':>8}"
    lines = [head, cols, "-" * len(cols)]
    for rpc, row in summary.items():
        errors = ", ".join(f"{code} {n}" for code, n in sorted(row["errors"].items())) or "0"
        lines.append(f"{rpc:<10} {row['count']:>8} {errors:>24} {row['rate_per_s']:>9.1f} "
                     f"{row['p50_ms']:>8.2f} {row['p90_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['p99.9_ms']:>8.2f} "
                     f"{row['max_ms']:>8.2f}")
    lines.append("latencies in ms" + (", from each call's scheduled send time" if result["mode"] == "open" else ""))
    return "\n".join(lines)


def write_plots(result: dict[str, Any], path: Path) -> Path:
    """A PNG: latency percentiles per second over the run, and each RPC's latency CDF."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (over_time, cdf) = plt.subplots(1, 2, figsize=(13, 4.5))
    seconds = sorted(result["windows"], key=int)
    start = int(seconds[0]) if seconds else 0
    decoded = [LatencyHistogram.decode(result["windows"][s]) for s in seconds]
    xs = [int(s) - start for s in seconds]
    for q, style in ((50, "-"), (90, "--"), (99, "-."), (99.9, ":")):
        over_time.plot(xs, [h.percentile_ms(q) for h in decoded], style, label=f"p{q:g}")
    over_time.set(title="latency per second (all RPCs)", xlabel="seconds into the measured run", ylabel="ms")
    over_time.legend()
    over_time.grid(alpha=0.3)
    for rpc, entry in result["rpcs"].items():
        x, y = LatencyHistogram.decode(entry["histogram"]).cdf_ms()
        cdf.plot(x, y, label=rpc)
    cdf.set(title="latency CDF", xlabel="ms (log)", ylabel="fraction of calls", xscale="log")
    cdf.legend()
    cdf.grid(alpha=0.3, which="both")
    load = f"open {result['rate']:g}/s" if result["mode"] == "open" else f"closed x{result['concurrency']}"
    fig.suptitle(f"tastebud loadtest: {load}, {result['generators']} generator(s)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
