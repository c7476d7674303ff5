"""The lab's YAML loader: PyYAML's safe loader plus YAML 1.2's exponent floats, nothing else changed."""

from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from lab.core.environments import parse_kwargs
from lab.core.yaml_loader import load_yaml, load_yaml_value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3e-4", 3e-4),
        ("1e30", 1e30),
        ("-2E+5", -2e5),
        ("1.5e3", 1500.0),
        ("1.e-3", 1e-3),
        (".5e2", 50.0),
        ("!!float 1e5", 1e5),  # rl-zoo's spelling still works
        ("1.0e+30", 1e30),
    ],
)
def test_exponent_forms_are_floats(text, value):
    loaded = load_yaml(text)
    assert isinstance(loaded, float) and loaded == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", 12),
        ("1_000", 1000),
        ("0x1F", 31),
        ("1e", "1e"),
        ("e5", "e5"),
        ("3e-4x", "3e-4x"),
        ("1.2.3", "1.2.3"),
        ("lin_0.001", "lin_0.001"),
        ("true", True),
        ("null", None),
        ("'1e5'", "1e5"),  # quoted: still a string
    ],
)
def test_everything_else_is_as_pyyaml_reads_it(text, value):
    loaded = load_yaml(text)
    assert loaded == value and type(loaded) is type(value)
    assert yaml.safe_load(text) == value  # and PyYAML's own loader is untouched


@given(st.floats(allow_nan=False, allow_infinity=False))  # YAML spells those .inf
def test_any_float_python_prints_reads_back(x):
    assert load_yaml(repr(x)) == x
    assert load_yaml(f"{x:e}") == float(f"{x:e}")


@given(st.integers())
def test_ints_stay_ints(n):
    assert load_yaml(str(n)) == n and isinstance(load_yaml(str(n)), int)


def test_env_arguments_read_exponents():
    kwargs = parse_kwargs(["slip_prob=1e-1", "size=15"])
    assert kwargs == {"slip_prob": 0.1, "size": 15} and isinstance(kwargs["slip_prob"], float)
    assert math.isinf(parse_kwargs(["x=.inf"])["x"])


def test_argument_values_that_are_not_yaml_stay_text():
    from lab.spec import apply_overrides

    assert load_yaml_value("[unclosed") == "[unclosed" and load_yaml_value("[1, 2e3]") == [1, 2000.0]
    assert parse_kwargs(["name=a: b: c"]) == {"name": "a: b: c"}
    data = apply_overrides({"env": "x", "agent": "q"}, ["name={oops"])
    assert data["name"] == "{oops"
