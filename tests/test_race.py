"""The CartPole races' bookkeeping (benchmarks/cartpole_race.py): turn order, the median run and the
interval of the wall-clock ratio."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from cartpole_race import Clock, compare, figures, pairs, positive, race, ratio_interval, study


def make_run(name: str, calls: list[tuple[str, int]], seconds: dict[tuple[str, int], list[float]]):
    def run(seed: int, stop_at_target: bool) -> Clock:
        calls.append((name, seed))
        clock = Clock()
        clock.reached = (1000 * (seed + 1), seconds[(name, seed)].pop(0))
        return clock

    return run


def test_race_takes_turns_seed_by_seed_and_keeps_each_runs_median_seconds(capsys):
    calls: list[tuple[str, int]] = []
    seconds = {
        ("a", 0): [3.0, 1.0, 2.0],
        ("b", 0): [9.0, 7.0, 8.0],
        ("a", 1): [5.0, 4.0, 6.0],
        ("b", 1): [1.0, 3.0, 2.0],
    }
    runs = {name: make_run(name, calls, seconds) for name in ("a", "b")}
    clocks = race(runs, seeds=2, repeat=3)
    # each seed's round (every side in turn) three times, before the next seed
    assert calls == [("a", 0), ("b", 0)] * 3 + [("a", 1), ("b", 1)] * 3
    assert [c.reached for c in clocks["a"]] == [(1000, 2.0), (2000, 5.0)]
    assert [c.reached for c in clocks["b"]] == [(1000, 8.0), (2000, 2.0)]
    # a line as each seed's round ends, with the median runs
    assert capsys.readouterr().out.splitlines() == [
        "  seed 0 (1/2): a 475 at 1,000 steps, 2.00 s, final nan; b 475 at 1,000 steps, 8.00 s, final nan",
        "  seed 1 (2/2): a 475 at 2,000 steps, 5.00 s, final nan; b 475 at 2,000 steps, 2.00 s, final nan",
    ]


def test_race_starts_at_its_first_seed(capsys):
    calls: list[tuple[str, int]] = []
    seconds = {("a", 400): [1.0], ("a", 401): [2.0]}
    clocks = race({"a": make_run("a", calls, seconds)}, seeds=2, first=400)
    assert calls == [("a", 400), ("a", 401)]
    assert [c.reached for c in clocks["a"]] == [(401_000, 1.0), (402_000, 2.0)]
    assert "seed 401 (2/2): a 475 at 402,000 steps" in capsys.readouterr().out


def test_a_run_that_never_reached_the_target_sorts_last():
    calls: list[tuple[str, int]] = []
    outcomes = iter([None, (4000, 2.0)])

    def run(seed: int, stop_at_target: bool) -> Clock:
        calls.append(("a", seed))
        clock = Clock()
        clock.reached = next(outcomes)
        return clock

    clocks = race({"a": run}, seeds=1, repeat=2)
    assert clocks["a"][0].reached == (4000, 2.0)  # the lower middle of two: the one that reached


def test_pairs_alternates_the_sides_and_reports_the_ratio_of_the_medians(capsys):
    calls: list[tuple[str, int]] = []
    seconds = {("ours", 3): [1.0, 3.0, 2.0], ("sb3", 3): [4.0, 4.0, 5.0]}
    pairs(make_run("ours", calls, seconds), make_run("sb3", calls, seconds), seed=3, times=3)
    assert calls == [("ours", 3), ("sb3", 3)] * 3
    out = capsys.readouterr().out
    assert "(median 2.00)" in out and "(median 4.00)" in out
    assert "ratio of the medians 0.50; pair by pair 0.25 to 0.75" in out


def test_pairs_stops_with_a_clear_message_when_a_run_never_reaches_the_target():
    def never(seed: int, stop_at_target: bool) -> Clock:
        return Clock()

    with pytest.raises(SystemExit, match="did not reach 475 with seed 4"):
        pairs(never, never, seed=4, times=1)


@pytest.mark.parametrize("text", ["0", "-3"])
def test_repeat_and_pairs_take_only_counts_of_one_or_more(text):
    with pytest.raises(argparse.ArgumentTypeError, match="must be 1 or more"):
        positive(text)
    assert positive("2") == 2


def clocks_of(seconds: list[float | None]) -> list[Clock]:
    out = []
    for s in seconds:
        clock = Clock()
        clock.reached = None if s is None else (1000, s)
        out.append(clock)
    return out


def test_the_wall_clock_ratio_interval_is_exact_when_every_run_takes_the_same_time():
    low, high = ratio_interval(clocks_of([1.5] * 12), clocks_of([2.5] * 10))
    assert low == pytest.approx(0.6) and high == pytest.approx(0.6)


def test_the_wall_clock_ratio_interval_holds_the_ratio_of_the_medians_and_widens_with_the_spread():
    rng = np.random.default_rng(1)
    sb3 = rng.lognormal(0.7, 0.4, 60)
    ours = 0.6 * rng.lognormal(0.7, 0.4, 60)
    low, high = ratio_interval(clocks_of(list(ours)), clocks_of(list(sb3)))
    assert low < np.median(ours) / np.median(sb3) < high
    assert 0.4 < low < high < 0.9
    wider = ratio_interval(clocks_of(list(ours[:20])), clocks_of(list(sb3[:20])))
    assert wider[1] - wider[0] > high - low


def test_the_wall_clock_ratio_interval_needs_ten_runs_a_side_that_reached_the_target():
    assert ratio_interval(clocks_of([1.0] * 9 + [None] * 5), clocks_of([2.0] * 14)) is None
    assert ratio_interval(clocks_of([1.0] * 10), clocks_of([2.0] * 10)) is not None


def fake_ours(seed: int, stop_at_target: bool) -> Clock:
    clock = Clock()
    clock.reached = None if seed == 2 else (1000 * (seed + 10), 1.0)
    return clock


def fake_sb3(seed: int, stop_at_target: bool) -> Clock:
    clock = Clock()
    clock.reached = (1000 * (seed + 11), 1.0)
    return clock


def test_the_study_reports_each_run_as_it_ends_and_compares_the_steps_in_seed_order(capsys):
    study({"ours": fake_ours, "stable-baselines3": fake_sb3}, seeds=4, first=0, jobs=2)
    out = capsys.readouterr().out
    assert out.count(" runs): ") == 8 and "(8/8 runs)" in out
    assert "ours seed 2 (" in out and "475 not reached" in out
    assert "ours                per seed: 10,000 11,000 - 13,000" in out
    assert "stable-baselines3   per seed: 11,000 12,000 13,000 14,000" in out


def test_a_run_that_never_reaches_the_target_counts_as_the_slowest_not_as_missing(capsys):
    # left out, the 6 failures would make ours look faster than a side that always gets there
    assert figures(clocks_of([1.0, 2.0, None]))[1] == 2.0 and figures(clocks_of([1.0, None, None]))[1] is None
    assert ratio_interval(clocks_of([1.0] * 10 + [None]), clocks_of([2.0] * 10)) is None
    compare({"ours": [40_000] * 14 + [None] * 6, "stable-baselines3": [45_000] * 20})
    out = capsys.readouterr().out
    assert "reached 14/20; quartiles 40,000 / 40,000 / inf" in out
    assert "Mann-Whitney U two-sided p = 0.02" in out  # all 14 below sb3's 20 alone: p near 1e-9
    assert "IQM and P(fewer steps) need every run to reach the target: left out" in out
