"""Schedules: exact values on the step clock, the hot-loop form agreeing with ``value``, clear refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.common.errors import AgentError
from agents.common.schedules import ConstantSchedule, ExponentialSchedule, LinearSchedule, make_schedule

LINEAR = {"type": "linear", "start": 1.0, "end": 0.05, "fraction": 0.5}
EXPONENTIAL = {"type": "exponential", "start": 1.0, "end": 0.01, "decay": 0.5}


def test_constant():
    schedule = make_schedule(0.3)
    assert isinstance(schedule, ConstantSchedule)
    assert schedule.value(0) == schedule.value(10**9, 10) == 0.3
    assert make_schedule(1).config() == 1.0 and isinstance(make_schedule(1).config(), float)


def test_linear_exact_values():
    schedule = make_schedule(LINEAR)
    assert isinstance(schedule, LinearSchedule)
    # Over the first half of 1000 steps from 1.0 down to 0.05, then 0.05.
    assert schedule.value(0, 1000) == 1.0
    assert schedule.value(250, 1000) == 0.525
    assert schedule.value(500, 1000) == 0.05
    assert schedule.value(501, 1000) == 0.05
    assert schedule.value(10**6, 1000) == 0.05
    assert schedule.value(100, 200) == 0.05  # the horizon is the total of the learn call
    # Before any learn() call there is no total: the start value.
    assert schedule.value(100) == schedule.value(100, None) == 1.0
    assert schedule.config() == LINEAR


def test_exponential_exact_values():
    schedule = make_schedule(EXPONENTIAL)
    assert isinstance(schedule, ExponentialSchedule)
    halvings = [1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.01]  # the last one floored at end
    assert [schedule.value(step) for step in range(8)] == halvings
    assert schedule.value(10**9) == 0.01
    assert schedule.value(3, 5) == 0.125  # the total does not matter
    assert make_schedule({"type": "exponential", "start": 0.5, "end": 0.0, "decay": 0.5}).value(2000) == 0.0
    assert schedule.config() == EXPONENTIAL


@given(
    kind=st.sampled_from(["constant", "linear", "exponential"]),
    start=st.floats(0.0, 1.0),
    end=st.floats(0.0, 1.0),
    knob=st.floats(0.01, 1.0),
    total=st.integers(1, 10**6),
    steps=st.lists(st.integers(0, 2 * 10**6), min_size=1, max_size=20),
)
def test_bound_form_equals_value(kind, start, end, knob, total, steps):
    if kind == "constant":
        spec: float | dict = start
    elif kind == "linear":
        spec = {"type": "linear", "start": start, "end": end, "fraction": knob}
    else:
        spec = {"type": "exponential", "start": max(start, end), "end": min(start, end), "decay": knob}
    schedule = make_schedule(spec)
    bound = schedule.bind(total)
    low, high = schedule.bounds()
    for step in steps:
        value = schedule.value(step, total)
        assert bound(step) == value
        assert low - 1e-12 <= value <= high + 1e-12


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"start": 1.0, "end": 0.1, "fraction": 0.5}, "needs 'type'"),
        ({"type": "linaer", "start": 1.0, "end": 0.1, "fraction": 0.5}, "did you mean 'linear'"),
        (
            {"type": ["linear"], "start": 1.0},
            "needs 'type' set to one of 'linear', 'exponential'; got type ['linear']",
        ),
        ({"type": {"a": 1}}, "needs 'type' set to one of"),
        ({"type": "linear", "start": 1.0, "end": 0.1}, "needs 'fraction'"),
        ({"type": "linear", "start": 1.0, "end": 0.1, "fractoin": 0.5}, "did you mean 'fraction'"),
        ({"type": "linear", "start": 1.0, "end": 0.1, "fraction": 0.0}, "in (0, 1]"),
        ({"type": "linear", "start": 1.0, "end": 0.1, "fraction": 1.5}, "in (0, 1]"),
        ({"type": "linear", "start": "1", "end": 0.1, "fraction": 0.5}, "finite number"),
        ({"type": "linear", "start": float("nan"), "end": 0.1, "fraction": 0.5}, "finite number"),
        ({"type": "exponential", "start": 1.0, "end": 0.1, "decay": 0.0}, "in (0, 1]"),
        ({"type": "exponential", "start": 1.0, "end": 0.1, "decay": 1.01}, "in (0, 1]"),
        ({"type": "exponential", "start": 0.1, "end": 1.0, "decay": 0.9}, "0 <= end <= start"),
        ({"type": "exponential", "start": 1.0, "end": 0.1, "decay": True}, "finite number"),
        ("0.1", "must be a number"),
        (True, "must be a number"),
        (None, "must be a number"),
    ],
)
def test_bad_schedules(spec, message):
    with pytest.raises(AgentError) as info:
        make_schedule(spec, "epsilon")
    assert message in str(info.value)
    assert "epsilon" in str(info.value)
