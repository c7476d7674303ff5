"""rl-baselines3-zoo hyperparameter files: read unchanged, policy_kwargs parsed as data and never run."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.cli import main
from lab.zoo import ZooError, parse_policy_kwargs, zoo_entry

ZOO_DQN = Path(__file__).resolve().parent.parent / "configs" / "zoo" / "dqn.yml"


def test_the_cartpole_entry_reads_as_dqn_hyperparameters():
    hyperparameters, steps = zoo_entry(ZOO_DQN, "CartPole-v1")
    assert steps == 50_000
    assert hyperparameters["policy_kwargs"] == {"net_arch": [256, 256]}
    assert hyperparameters["learning_rate"] == 2.3e-3 and hyperparameters["train_freq"] == 256
    assert "policy" not in hyperparameters and "n_timesteps" not in hyperparameters


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dict(net_arch=[64, 64])", {"net_arch": [64, 64]}),
        ("dict(net_arch=dict(pi=[64], vf=[64]), activation_fn=nn.Tanh)", {
            "net_arch": {"pi": [64], "vf": [64]}, "activation_fn": "tanh"}),
        ("{'log_std_init': -2, 'ortho_init': False}", {"log_std_init": -2, "ortho_init": False}),
        ("dict(activation_fn=th.nn.ReLU)", {"activation_fn": "relu"}),
    ],
)  # fmt: skip
def test_policy_kwargs_are_parsed_as_data(text, expected):
    assert parse_policy_kwargs(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('touch /tmp/zoo-was-run')",
        "dict(net_arch=open('/etc/passwd').read())",
        "dict(**globals())",
        "dict(net_arch=[64] * 2)",
        "[64, 64]",
        "dict(net_arch=[64",
    ],
)
def test_anything_but_literal_data_is_refused_and_nothing_runs(text):
    with pytest.raises(ZooError, match="policy_kwargs"):
        parse_policy_kwargs(text)
    assert not Path("/tmp/zoo-was-run").exists()


def test_bad_files_and_entries_are_clear_errors(tmp_path):
    with pytest.raises(ZooError, match="no zoo hyperparameter file"):
        zoo_entry(tmp_path / "missing.yml", "CartPole-v1")
    with pytest.raises(ZooError, match=r"no entry for Acrobot-v1 \(entries: CartPole-v1, LunarLander-v3\)"):
        zoo_entry(ZOO_DQN, "Acrobot-v1")
    odd = tmp_path / "odd.yml"
    odd.write_text("CartPole-v1:\n  use_sde: true\n  learning_rate: 0.001\n")
    with pytest.raises(ZooError, match="does not support the zoo key 'use_sde'"):
        zoo_entry(odd, "CartPole-v1")
    odd.write_text("CartPole-v1:\n  policy: MultiInputPolicy\n")
    with pytest.raises(ZooError, match="policy 'MultiInputPolicy'"):
        zoo_entry(odd, "CartPole-v1")
    odd.write_text("CartPole-v1: [1, 2\n")
    with pytest.raises(ZooError, match="not valid YAML"):
        zoo_entry(odd, "CartPole-v1")
    for steps in (".inf", ".nan", "2.5"):
        odd.write_text(f"CartPole-v1:\n  n_timesteps: {steps}\n")
        with pytest.raises(ZooError, match="n_timesteps must be a whole number >= 1"):
            zoo_entry(odd, "CartPole-v1")
    odd.write_bytes(b"CartPole-v1:\n  n_envs: \xff\xfe\n")
    with pytest.raises(ZooError, match=r"is not UTF-8 text \(byte 23 cannot be decoded\)"):
        zoo_entry(odd, "CartPole-v1")
    odd.write_bytes(b"#" * (2 << 20))
    with pytest.raises(ZooError, match="is over 1 MiB"):
        zoo_entry(odd, "CartPole-v1")


def test_lab_train_takes_a_zoo_file(tmp_path, capsys):
    code = main([
        "train", "--zoo", str(ZOO_DQN), "--env", "CartPole-v1", "--agent", "dqn", "--steps", "300",
        "--set", "hyperparameters.learning_starts=100", "--set", "eval_episodes=1",
        "--runs-dir", str(tmp_path), "--no-progress",
    ])  # fmt: skip
    assert code == 0
    import yaml

    spec = yaml.safe_load((tmp_path / "CartPole-dqn" / "spec.yaml").read_text())
    assert spec["total_timesteps"] == 300  # --steps wins over n_timesteps
    hp = spec["hyperparameters"]
    assert (
        hp["learning_starts"] == 100
        and hp["train_freq"] == 256
        and hp["policy_kwargs"]["net_arch"] == [256, 256]
    )


def test_lab_train_with_a_zoo_file_needs_the_env(tmp_path, capsys):
    assert main(["train", "--zoo", str(ZOO_DQN), "--agent", "dqn", "--runs-dir", str(tmp_path)]) == 2
    assert "both --env and --agent" in capsys.readouterr().err
    from lab.core.errors import LabError
    from lab.train import spec_from_args

    with pytest.raises(LabError, match="--zoo reads the entry of the run's env"):
        spec_from_args(None, None, "dqn", None, None, None, [], zoo=str(ZOO_DQN))
    spec = tmp_path / "spec.yaml"
    spec.write_text("env: CartPole-v1\nagent: dqn\nhyperparameters: [1, 2]\n")
    with pytest.raises(LabError, match=r"hyperparameters must be a mapping \(key: value\); got \[1, 2\]"):
        spec_from_args(str(spec), None, None, None, None, None, [], zoo=str(ZOO_DQN))


def test_normalize_and_n_envs_reach_the_policy_gradient_agents(tmp_path):
    ppo = tmp_path / "ppo.yml"
    ppo.write_text(
        "Pendulum-v1:\n  normalize: true\n  n_envs: 4\n  n_timesteps: !!float 1e5\n"
        'MountainCarContinuous-v0:\n  normalize: "dict(norm_obs=True, norm_reward=False)"\n'
        'Acrobot-v1:\n  normalize: "dict(norm_obs=True, gamma=0.9)"\n'
    )
    hp, steps = zoo_entry(ppo, "Pendulum-v1")
    assert hp == {"normalize_observations": True, "normalize_reward": True, "n_envs": 4} and steps == 100_000
    hp, _ = zoo_entry(ppo, "MountainCarContinuous-v0")
    assert hp == {"normalize_observations": True, "normalize_reward": False}
    with pytest.raises(ZooError, match="normalize's own gamma"):
        zoo_entry(ppo, "Acrobot-v1")
