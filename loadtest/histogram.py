"""Latency histograms that merge exactly: HdrHistogram in microseconds, serialisable to JSON.

Percentiles cannot be averaged across load generators; histograms can be added. Every result
file carries its histograms encoded (HdrHistogram's compressed base64 form), so results of
several processes or machines combine into the same numbers one big generator would report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 120_000_000  # two minutes: anything slower is recorded as two minutes
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


@dataclass(slots=True)
class LatencyHistogram:
    """Latencies of one RPC (or one time window), in microseconds."""

    hdr: HdrHistogram = field(default_factory=new_histogram)

    def record(self, seconds: float) -> None:
        self.hdr.record_value(min(max(int(seconds * 1e6), LOWEST_US), HIGHEST_US))

    @property
    def count(self) -> int:
        return int(self.hdr.get_total_count())

    def add(self, other: "LatencyHistogram") -> None:
        self.hdr.add(other.hdr)

    def percentile_ms(self, q: float) -> float:
        return self.hdr.get_value_at_percentile(q) / 1000.0 if self.count else 0.0

    def max_ms(self) -> float:
        return self.hdr.get_max_value() / 1000.0 if self.count else 0.0

    def summary(self) -> dict[str, float]:
        """count, p50/p90/p99/p99.9 and max, in milliseconds."""
        out: dict[str, float] = {"count": self.count}
        for q in PERCENTILES:
            out[f"p{q:g}_ms"] = round(self.percentile_ms(q), 3)
        out["max_ms"] = round(self.max_ms(), 3)
        return out

    def cdf_ms(self) -> tuple[list[float], list[float]]:
        """(latency ms, fraction of calls at or below it) at each recorded value, for plotting."""
        xs, ys = [], []
        total = self.count
        if not total:
            return xs, ys
        seen = 0
        for item in self.hdr.get_recorded_iterator():
            seen += item.count_added_in_this_iter_step
            xs.append(item.value_iterated_to / 1000.0)
            ys.append(seen / total)
        return xs, ys

    def encode(self) -> str:
        return self.hdr.encode().decode("ascii") if self.count else ""

    @classmethod
    def decode(cls, text: str) -> "LatencyHistogram":
        if not text:
            return cls()
        decoded = HdrHistogram.decode(text.encode("ascii"))
        out = cls()
        out.hdr.add(decoded)  # same range and precision as every other histogram here
        return out
