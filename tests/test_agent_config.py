"""Typed hyperparameters (agents.common.config): one-line refusals naming the closest key, every field
kind checked, the saved form round-tripping, and rl-zoo's ``lin_`` schedules for every agent."""

from __future__ import annotations

import dataclasses
import json

import gymnasium as gym
import pytest

import envs  # noqa: F401  (registers the lab/ ids)
from agents import AGENTS, AgentError
from agents.common.schedules import Schedule, ZooLinearSchedule, make_schedule

NEURAL = ("dqn", "ppo", "a2c", "reinforce")


def make_env(name: str) -> gym.Env:
    if name in NEURAL:
        return gym.make("CartPole-v1")
    return gym.make("lab/CliffWalk-v0", obs_type="index")


def refusal(name: str, **hyperparameters) -> str:
    with pytest.raises(AgentError) as info:
        AGENTS[name](make_env(name), **hyperparameters)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("name", list(AGENTS))
def test_a_typo_names_the_closest_key(name):
    message = refusal(name, learning_rat=0.1)
    cls = AGENTS[name]
    assert message.startswith(
        f"{cls.__name__} has no hyperparameter 'learning_rat'; did you mean 'learning_rate'?"
    )
    assert f"(its hyperparameters: {', '.join(cls.hyperparameter_names())})" in message
    assert cls.hyperparameter_names()[:2] == ["seed", "gamma"]


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("dqn", {"buffer_size": 2.5}, "buffer_size must be a whole number >= 1; got 2.5"),  # count
        ("dqn", {"learning_starts": -1}, "learning_starts must be a whole number >= 0; got -1"),
        ("ppo", {"n_epochs": True}, "n_epochs must be a whole number >= 1; got True"),
        (
            "dqn",
            {"gradient_steps": -3},
            "gradient_steps must be a whole number >= 0, or -1 (= train_freq); got -3",
        ),
        ("dqn", {"tau": 1.5}, "tau must be a number in [0, 1]; got 1.5"),  # fraction
        ("ppo", {"gae_lambda": float("nan")}, "gae_lambda must be a number in [0, 1]; got nan"),
        ("dqn", {"tau": 0.0}, "tau must be in (0, 1]"),  # a config's own rule
        (
            "dqn",
            {"buffer_size": 100, "batch_size": 200},
            "batch_size (200) must be at most buffer_size (100)",
        ),
        ("dqn", {"max_grad_norm": 0}, "max_grad_norm must be a positive number; got 0"),  # positive
        ("ppo", {"target_kl": "small"}, "target_kl must be a positive number or null; got 'small'"),
        ("a2c", {"ent_coef": -0.1}, "ent_coef must be a number >= 0; got -0.1"),  # non_negative
        ("q_learning", {"initial_q": float("inf")}, "initial_q must be a finite number; got inf"),  # number
        ("reinforce", {"baseline": "yes"}, "baseline must be true or false; got 'yes'"),  # flag
        ("dqn", {"loss": "l1"}, "loss must be 'huber' or 'mse'; got 'l1'"),  # choice
        ("dqn", {"policy_kwargs": {"net_arch": "big"}}, "net_arch must be a list of layer widths"),  # mapping
        ("dqn", {"policy_kwargs": {"net_arch": [8], "ortho_init": True}}, "takes net_arch only; got ['ortho"),
        *(
            (name, {"policy_kwargs": "dict(net_arch=[64])"}, "is read from zoo files, with lab train --zoo")
            for name in ("dqn", "ppo")
        ),
        ("ppo", {"learning_rate": "fast"}, "learning_rate must be a positive number or 'lin_<number>'"),
        ("ppo", {"clip_range": 0}, "clip_range must be a positive number or 'lin_<number>'"),  # schedule
        ("dqn", {"learning_rate": "lin_-1e-3"}, "learning_rate must be a positive number or 'lin_<number>'"),
        ("a2c", {"learning_rate": "lin_x"}, "'lin_x' is not 'lin_<number>'"),
        ("ppo", {"learning_rate": {"type": "linaer"}}, "did you mean 'linear'"),
        (
            "sarsa",
            {"epsilon": "lin_2"},
            "epsilon is a probability: its values must lie in [0, 1]; got 'lin_2'",
        ),
        ("q_learning", {"learning_rate": "lin_0.5"}, "learning_rate must be a number in (0, 1]"),  # ends at 0
    ],
)
def test_each_field_kind_refuses_a_bad_value_in_one_line(name, kwargs, message):
    assert message in refusal(name, **kwargs)


def test_counts_read_yaml_floats_and_configs_are_frozen():
    agent = AGENTS["ppo"](make_env("ppo"), n_steps=2.048e3, batch_size=6.4e1)
    assert (agent.config.n_steps, agent.config.batch_size) == (2048, 64)
    assert type(agent.config.n_steps) is int
    with pytest.raises(dataclasses.FrozenInstanceError):
        agent.config.n_steps = 5  # type: ignore[misc]


NON_DEFAULT = {
    "dqn": {
        "learning_rate": "lin_2.3e-3",
        "buffer_size": 1e4,
        "policy_kwargs": {"net_arch": [32]},
        "tau": 0.5,
    },
    "ppo": {
        "learning_rate": "lin_3e-4",
        "clip_range": {"type": "linear", "start": 0.2, "end": 0.1, "fraction": 0.5},
        "target_kl": 0.02,
        "policy_kwargs": {"net_arch": {"pi": [16], "vf": [32]}},
    },
    "a2c": {
        "learning_rate": {"type": "exponential", "start": 1e-3, "end": 1e-4, "decay": 0.999},
        "n_envs": 2,
    },
    "reinforce": {"learning_rate": 5e-4, "baseline": False},
    "q_learning": {"learning_rate": "1/n", "epsilon": "lin_1.0"},
    "sarsa": {"epsilon": {"type": "exponential", "start": 1.0, "end": 0.01, "decay": 0.99}},
    "expected_sarsa": {"initial_q": 2},
    "double_q_learning": {"learning_rate": {"type": "linear", "start": 0.5, "end": 0.1, "fraction": 1.0}},
    "monte_carlo": {"learning_rate": 0.2},
}


@pytest.mark.parametrize("name", list(AGENTS))
def test_the_saved_form_round_trips(name):
    cls = AGENTS[name]
    config = cls(make_env(name), seed=1, **NON_DEFAULT[name]).config
    saved = json.loads(json.dumps(config.to_dict()))
    assert cls.config_class.from_kwargs(cls.__name__, saved) == config
    assert cls.config_class.from_kwargs(cls.__name__, saved).to_dict() == saved
    assert cls.config_class.from_kwargs(cls.__name__, {}) == cls.config_class()  # the defaults


def test_dqns_n_steps_has_stable_baselines3s_name_and_its_earlier_name_still_works():
    import inspect

    from stable_baselines3 import DQN as SB3DQN

    assert (
        "n_steps" in inspect.signature(SB3DQN).parameters
        and "n_step" not in AGENTS["dqn"].config_class.names()
    )
    agent = AGENTS["dqn"]("CartPole-v1", seed=0, n_step=3)  # rl-lab 0.2.0's name (test_old_checkpoints)
    assert agent.config.n_steps == 3 and agent.buffer.n_step == 3 and "n_step" not in agent.hyperparameters
    with pytest.raises(AgentError, match=r"DQN: give n_steps only \(n_step is its earlier name\)"):
        AGENTS["dqn"]("CartPole-v1", n_step=3, n_steps=3)
    with pytest.raises(AgentError, match="PPO has no hyperparameter 'n_step'; did you mean 'n_steps'"):
        AGENTS["ppo"]("CartPole-v1", n_step=3)  # PPO's n_steps is the rollout: never renamed into it


@pytest.mark.parametrize("name", NEURAL)
def test_changing_the_policy_kwargs_given_leaves_the_agent_and_its_checkpoint_alone(name, tmp_path):
    given = {"net_arch": [8]} if name == "dqn" else {"net_arch": {"pi": [8], "vf": [8]}}
    agent = AGENTS[name](make_env(name), seed=0, policy_kwargs=given)
    arch = given["net_arch"]
    (arch if name == "dqn" else arch["pi"]).append(16)  # a caller reusing its dict for the next run
    saved = agent.hyperparameters["policy_kwargs"]["net_arch"]
    assert saved == ([8] if name == "dqn" else {"pi": [8], "vf": [8]})
    AGENTS[name].load(agent.save(tmp_path / "model"))  # the checkpoint names the network it holds


def test_lin_schedule():
    schedule = make_schedule("lin_3e-4", "learning_rate")
    assert isinstance(schedule, ZooLinearSchedule) and schedule.config() == "lin_3e-4"
    assert [schedule.value(t, 100) for t in (0, 50, 100, 200)] == [3e-4, 1.5e-4, 0.0, 0.0]
    assert schedule.value(50) == 3e-4  # before any learn(): the start
    assert schedule == make_schedule("lin_3e-4") != make_schedule("lin_0.0003")  # equal by the text kept


def test_lin_learning_rate_of_dqn_read_at_each_burst():
    agent = AGENTS["dqn"](
        make_env("dqn"), seed=0, learning_rate="lin_1e-3", learning_starts=100, train_freq=100,
        policy_kwargs={"net_arch": [8]},
    )  # fmt: skip
    seen = []
    train = agent._train
    agent._train = lambda steps, t: (train(steps, t), seen.append((t, agent.optimizer.param_groups[0]["lr"])))
    agent.learn(400)
    assert [t for t, _ in seen] == [200, 300, 400]
    assert [lr for _, lr in seen] == pytest.approx([1e-3 * (1 - t / 400) for t, _ in seen], abs=1e-12)
    assert agent.hyperparameters["learning_rate"] == "lin_1e-3"


@pytest.mark.parametrize("name", ["ppo", "a2c", "reinforce"])
def test_lin_schedules_of_the_policy_gradient_agents_read_after_each_rollout(name, tmp_path):
    kwargs = {"learning_rate": "lin_1e-3", "n_envs": 2}
    kwargs.update({"ppo": {"n_steps": 32, "clip_range": "lin_0.2", "n_epochs": 1}, "a2c": {"n_steps": 16},
                   "reinforce": {"n_episodes": 2}}[name])  # fmt: skip
    agent = AGENTS[name](make_env(name), seed=0, **kwargs)
    seen = []
    update = agent._update

    def record(rollout):
        clip = agent._clip_range_at(agent.num_timesteps) if name == "ppo" else None
        seen.append((agent.num_timesteps, agent.optimizer.param_groups[0]["lr"], clip))
        update(rollout)

    agent._update = record
    total = 256
    agent.learn(total)
    assert len(seen) >= 2
    for t, lr, clip in seen:
        progress = min(1.0, t / total)
        assert lr == pytest.approx(1e-3 * (1 - progress), abs=1e-12)
        assert clip is None or clip == pytest.approx(0.2 * (1 - progress), abs=1e-12)
    loaded = AGENTS[name].load(agent.save(tmp_path / name), env=make_env(name))
    assert loaded.hyperparameters["learning_rate"] == "lin_1e-3" and loaded.config == agent.config


@pytest.mark.parametrize(
    "name", ["q_learning", "sarsa", "expected_sarsa", "double_q_learning", "monte_carlo"]
)
def test_lin_exploration_of_the_tabular_agents(name):
    agent = AGENTS[name](make_env(name), seed=0, epsilon="lin_1.0")
    assert isinstance(agent.config.epsilon, Schedule) and agent.epsilon == 1.0
    agent.learn(1000)
    assert agent.epsilon == 0.0  # at the end of the run: lin_ decays to 0 over the whole budget
    assert agent.hyperparameters["epsilon"] == "lin_1.0"
