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


# ----- no small document stands for a large one -----

LAUGHS = "\n".join(
    ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: &x 1\nb: *x", "anchors (&x) are not allowed"),
        ("a: *x", "aliases (*x) are not allowed"),
        ("a: &x [1]", "anchors"),
        (LAUGHS, "anchors (&a0)"),
        ("a: " + "[" * 65 + "]" * 65, "nest more than 64 deep"),
        ("a: " + "[" * 100_000 + "]" * 100_000, "nest more than 64 deep"),
        ("a:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 80)) + " " * 80 + "x: 1", "64 deep"),
    ],
)
def test_aliases_and_deep_nesting_are_refused(text, problem):
    with pytest.raises(yaml.YAMLError) as info:
        load_yaml(text)
    assert problem in info.value.problem


def test_nesting_up_to_the_bound_reads():
    assert load_yaml("a: " + "[" * 63 + "1" + "]" * 63)["a"] is not None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("d: &d {x: 1}\nCartPole-v1: {<<: *d, y: 2}", {"d": {"x": 1}, "CartPole-v1": {"x": 1, "y": 2}}),
        ("a: &a [1, 2]\nb: [*a, *a]", {"a": [1, 2], "b": [[1, 2], [1, 2]]}),
    ],
)
def test_files_of_other_tools_may_use_aliases_that_stay_small(text, value):
    assert load_yaml(text, aliases=True) == value


@pytest.mark.parametrize("text", [LAUGHS, "a: &a [*a]", "a: &a {b: *a}"])
def test_aliases_that_expand_past_the_bound_are_refused(text):
    with pytest.raises(yaml.YAMLError) as info:
        load_yaml(text, aliases=True)
    assert "expand to more than 100,000 values" in info.value.problem


def test_zoo_files_may_use_anchors_but_not_billion_laughs(tmp_path):
    from lab.zoo import ZooError, zoo_entry

    path = tmp_path / "dqn.yml"
    path.write_text("defaults: &d {learning_rate: !!float 1e-3}\nCartPole-v1: {<<: *d, batch_size: 64}\n")
    assert zoo_entry(path, "CartPole-v1")[0] == {"learning_rate": 1e-3, "batch_size": 64}
    path.write_text(LAUGHS + "\nCartPole-v1: {policy_kwargs: *a8}\n")
    with pytest.raises(ZooError, match="expand to more than"):
        zoo_entry(path, "CartPole-v1")
