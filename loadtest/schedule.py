"""When an open-loop generator sends: a fixed schedule decided before the run.

Open loop means the schedule does not wait for answers, and latency is measured from the
scheduled send time, so a server that stalls cannot hide its queue by slowing the generator
down (coordinated omission). Arrivals are Poisson (seeded) by default, as real users arrive
independently; ``uniform`` spaces them evenly.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

ARRIVALS = ("poisson", "uniform")


def send_times(rate: float, duration: float, seed: int = 0, arrivals: str = "poisson") -> npt.NDArray[np.float64]:
    """Seconds from the start of the run at which each request is sent, ascending, < duration."""
    if rate <= 0 or duration <= 0:
        raise ValueError(f"rate and duration must be > 0, got {rate} and {duration}")
    if arrivals not in ARRIVALS:
        raise ValueError(f"arrivals must be one of {ARRIVALS}, got {arrivals!r}")
    expected = rate * duration
    if arrivals == "uniform":
        return np.arange(int(np.floor(expected)), dtype=np.float64) / rate
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / rate, size=int(expected + 6 * np.sqrt(expected) + 16))
    times = np.cumsum(gaps) - gaps[0]
    while times[-1] < duration:  # vanishingly rare: draw more
        more = np.cumsum(rng.exponential(1.0 / rate, size=len(times))) + times[-1]
        times = np.concatenate([times, more])
    return times[times < duration]


def split_for_workers(rate: float, workers: int) -> list[float]:
    """Each of ``workers`` generator processes sends at rate/workers: their union is the target rate
    (independent Poisson streams add up to a Poisson stream)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return [rate / workers] * workers
