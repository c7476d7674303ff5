"""Run specs: defaults, overrides, and a clear error for every kind of mistake."""

from __future__ import annotations

import pytest

from lab.runs import RunDir
from lab.spec import RunSpec, SpecError, apply_overrides, load_spec_file, spec_from_dict

BASE = {"env": "lab/CliffWalk-v0", "agent": "q_learning"}


def test_defaults_and_name():
    spec = spec_from_dict(BASE)
    assert spec == RunSpec(env="lab/CliffWalk-v0", agent="q_learning", name="CliffWalk-q_learning")
    assert spec.total_timesteps == 50_000 and spec.seed == 0 and spec.seeds is None


@pytest.mark.parametrize(
    ("env", "agent", "name"),
    [
        ("phys2d/CartPole-v1", "ppo", "phys2d-CartPole-ppo"),
        ("ALE/Pong-v5", "dqn", "ALE-Pong-dqn"),
        ("my_module:MyEnv-v0", "a2c", "my_module-MyEnv-a2c"),
    ],
)
def test_the_default_name_of_an_env_in_another_namespace_names_a_folder(env, agent, name):
    assert spec_from_dict({"env": env, "agent": agent}).name == name


def test_seeds_make_one_spec_per_seed():
    specs = spec_from_dict({**BASE, "name": "cliff", "seeds": [3, 5]}).per_seed()
    assert [(s.name, s.seed, s.seeds) for s in specs] == [("cliff-seed3", 3, None), ("cliff-seed5", 5, None)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {**BASE, "total_timestep": 1},
            "unknown key 'total_timestep' in the spec; did you mean 'total_timesteps'?",
        ),
        ({**BASE, "hyperparameter": {}}, "did you mean 'hyperparameters'?"),
        ({**BASE, "zzz": 1}, "unknown key 'zzz' in the spec; valid keys:"),
        ({"agent": "q_learning"}, "needs 'env'"),
        ({"env": "lab/CliffWalk-v0"}, "needs 'agent'"),
        ({**BASE, "total_timesteps": "many"}, "total_timesteps must be a whole number >= 1; got 'many'"),
        ({**BASE, "total_timesteps": 0}, "total_timesteps must be a whole number >= 1; got 0"),
        ({**BASE, "threads": 0}, "threads must be a whole number >= 1; got 0"),
        ({**BASE, "threads": "all"}, "threads must be a whole number >= 1; got 'all'"),
        ({**BASE, "seed": -1}, "seed must be a whole number >= 0"),
        ({**BASE, "eval_episodes": 2.5}, "eval_episodes must be a whole number"),
        ({**BASE, "checkpoint_interval": True}, "checkpoint_interval must be a whole number"),
        ({**BASE, "max_episode_steps": 0}, "max_episode_steps must be a whole number >= 1 or null"),
        ({**BASE, "hyperparameters": [1, 2]}, "hyperparameters must be a mapping"),
        ({**BASE, "env_kwargs": "size=3"}, "env_kwargs must be a mapping"),
        ({**BASE, "env_kwargs": {1: 2}}, "the keys of env_kwargs must be names (strings); got 1"),
        ({**BASE, "hyperparameters": {None: 2}}, "the keys of hyperparameters must be names (strings)"),
        ({**BASE, "seeds": []}, "seeds must be a non-empty list"),
        ({**BASE, "seeds": [1, "x"]}, "seeds must be a non-empty list"),
        ({**BASE, "seed": 2**64}, "a seed is a whole number from 0 to 2**64 - 1; got 18446744073709551616"),
        ({**BASE, "seeds": [0, 2**64]}, "a seed is a whole number from 0 to 2**64 - 1"),
        ({**BASE, "seeds": [3, 1, 3]}, "seeds lists 3 more than once"),
        ({**BASE, "name": "../evil"}, "name '../evil' must be letters, digits"),
        ({**BASE, "env": 3}, "env must be a string"),
        ([1, 2], "must be a mapping of keys to values"),
    ],
)
def test_bad_specs_name_the_problem(data, message):
    with pytest.raises(SpecError) as info:
        spec_from_dict(data)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_overrides_reach_nested_keys():
    data = apply_overrides(
        {**BASE, "hyperparameters": {"epsilon": 0.1}},
        ["hyperparameters.learning_rate=0.5", "total_timesteps=1000", "env_kwargs.size=15", "name=x"],
    )
    assert data["hyperparameters"] == {"epsilon": 0.1, "learning_rate": 0.5}
    assert data["total_timesteps"] == 1000 and data["env_kwargs"] == {"size": 15} and data["name"] == "x"


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("total_timestep=5", "did you mean 'total_timesteps'?"),
        ("seed.x=1", "only env_kwargs and hyperparameters hold nested keys"),
        ("novalue", "--set takes key=value"),
        (
            "hyperparameters.policy_kwargs.net_arch=[64]",
            r"one level into hyperparameters; give policy_kwargs's whole value, e\.g\. --set "
            r"'hyperparameters\.policy_kwargs=\{net_arch: \[64\]\}'",
        ),
    ],
)
def test_bad_overrides(pair, message):
    with pytest.raises(SpecError, match=message):
        apply_overrides(BASE, [pair])


@pytest.mark.parametrize("held", [[1, 2], 5, "abc"])
def test_a_nested_override_into_a_value_that_is_not_a_mapping_names_it(held):
    with pytest.raises(SpecError, match=r"--set hyperparameters\.epsilon: hyperparameters must be a mapping"):
        apply_overrides({**BASE, "hyperparameters": held}, ["hyperparameters.epsilon=0.1"])
    with pytest.raises(SpecError, match=r"--set env_kwargs\.size: env_kwargs must be a mapping"):
        apply_overrides(BASE, [f"env_kwargs={held!r}", "env_kwargs.size=5"])


def test_spec_files(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpecError, match="no spec file at"):
        load_spec_file(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("env: [unclosed\n")
    with pytest.raises(SpecError, match="is not valid YAML"):
        load_spec_file(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(SpecError, match="is empty"):
        load_spec_file(empty)


def test_run_directories_refuse_to_clobber_and_to_resume_non_runs(tmp_path):
    from lab.core.errors import LabError

    run = RunDir.new(tmp_path, "a")
    run.path.mkdir()
    (run.path / "spec.yaml").write_text("env: x\n")
    with pytest.raises(LabError, match="already exists; continue it with 'lab train --resume"):
        RunDir.new(tmp_path, "a")
    (tmp_path / "plain").mkdir()
    with pytest.raises(LabError, match="is not a run directory"):
        RunDir.open(tmp_path / "plain")
    with pytest.raises(LabError, match="is not a directory"):
        RunDir.open(tmp_path / "missing")
    assert (run.path / "spec.yaml").read_text() == "env: x\n"


def test_exponent_floats_load_as_numbers_in_spec_files_and_overrides(tmp_path):
    """PyYAML alone reads ``3e-4`` as a string; the lab's loader reads it as YAML 1.2 does."""
    path = tmp_path / "spec.yaml"
    path.write_text(
        "env: CartPole-v1\nagent: ppo\ntotal_timesteps: 1e5\nhyperparameters:\n  learning_rate: 3e-4\n"
    )
    data = apply_overrides(load_spec_file(path), ["hyperparameters.max_grad_norm=1e30"])
    spec = spec_from_dict(data)
    assert spec.total_timesteps == 100_000 and isinstance(spec.total_timesteps, int)
    assert spec.hyperparameters == {"learning_rate": 3e-4, "max_grad_norm": 1e30}
    with pytest.raises(SpecError, match=r"total_timesteps must be a whole number >= 1; got 2500\.5"):
        spec_from_dict({**BASE, "total_timesteps": 2.5005e3})


@pytest.mark.parametrize(
    ("pair", "key", "value"),
    [
        ("hyperparameters.max_grad_norm=1e30", "hyperparameters", {"max_grad_norm": 1e30}),
        ("env_kwargs.slip_prob=1E-1", "env_kwargs", {"slip_prob": 0.1}),
        ("total_timesteps=1e6", "total_timesteps", 1_000_000),
        ("eval_interval=2.5e3", "eval_interval", 2500),
        ("seeds=[1e3, 2]", "seeds", [1000, 2]),
    ],
)
def test_set_reads_exponent_numbers_as_numbers(pair, key, value):
    spec = spec_from_dict(apply_overrides(BASE, [pair]))
    got = getattr(spec, key)
    assert got == value and type(got) is type(value)
    if isinstance(value, dict):
        assert all(isinstance(v, float) for v in got.values())
    if isinstance(value, list):
        assert all(type(v) is int for v in got)
