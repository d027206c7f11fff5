"""The open-loop schedule: fixed before the run, at the asked rate, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from tastebud.loadtest.schedule import send_times, split_for_workers


def test_poisson_schedule_is_sorted_inside_the_run_and_near_the_rate():
    times = send_times(rate=500.0, duration=20.0, seed=3)
    assert np.all(np.diff(times) >= 0) and times[0] == 0.0 and times[-1] < 20.0
    # 10,000 expected arrivals: a Poisson count is within 5 standard deviations (100 each).
    assert abs(len(times) - 10_000) < 500
    gaps = np.diff(times)
    assert abs(gaps.mean() - 1 / 500) < 1e-4 and abs(gaps.std() / gaps.mean() - 1.0) < 0.05  # exponential gaps


def test_the_same_seed_gives_the_same_schedule_and_another_seed_another():
    a, b, c = send_times(100, 5, seed=1), send_times(100, 5, seed=1), send_times(100, 5, seed=2)
    np.testing.assert_array_equal(a, b)
    assert len(a) != len(c) or not np.array_equal(a, c)


def test_uniform_arrivals_are_evenly_spaced():
    times = send_times(rate=4.0, duration=2.0, arrivals="uniform")
    np.testing.assert_allclose(times, [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75])


@pytest.mark.parametrize("rate, duration, arrivals", [(0, 1, "poisson"), (1, -1, "poisson"), (1, 1, "burst")])
def test_bad_schedules_are_refused(rate, duration, arrivals):
    with pytest.raises(ValueError):
        send_times(rate, duration, arrivals=arrivals)


def test_workers_share_the_rate():
    assert split_for_workers(300.0, 3) == [100.0, 100.0, 100.0]
    with pytest.raises(ValueError):
        split_for_workers(1.0, 0)
