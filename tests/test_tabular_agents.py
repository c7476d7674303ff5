"""Tabular agents: construction and its refusals, the learn loop's contract, predict, the update rules."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import agents
from agents import AGENTS, Agent, AgentError, TabularAgent, episode_seed
from agents.tabular.base import ONE_OVER_N

TABULAR = ("q_learning", "sarsa", "expected_sarsa", "double_q_learning", "monte_carlo")
ALGORITHMS = sorted(TABULAR)


def make(env_id: str = "lab/CliffWalk-v0", **kwargs) -> gym.Env:
    return gym.make(env_id, **kwargs)


# ----- the registry and construction -----


def test_registry_names_and_classes():
    expected = {
        "q_learning": agents.QLearning,
        "sarsa": agents.Sarsa,
        "expected_sarsa": agents.ExpectedSarsa,
        "double_q_learning": agents.DoubleQLearning,
        "monte_carlo": agents.MonteCarlo,
    }
    assert expected == {name: AGENTS[name] for name in TABULAR}
    # the neural agents are registered too, loaded on first use
    assert sorted(AGENTS) == sorted([*TABULAR, "dqn", "ppo", "a2c", "reinforce"])
    for name, cls in AGENTS.items():
        assert cls.name == name and issubclass(cls, Agent)
        assert issubclass(cls, TabularAgent) == (name in TABULAR)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_hyperparameters_resolved_and_json(name):
    agent = AGENTS[name](
        make(), seed=3, gamma=0.9, epsilon={"type": "linear", "start": 1, "end": 0, "fraction": 1}
    )
    hp = agent.hyperparameters
    assert set(hp) == {"seed", "gamma", "learning_rate", "epsilon", "initial_q"}
    assert hp["seed"] == agent.seed == 3 and hp["gamma"] == agent.gamma == 0.9
    assert hp["epsilon"] == {"type": "linear", "start": 1.0, "end": 0.0, "fraction": 1.0}
    assert hp["learning_rate"] == (ONE_OVER_N if name == "monte_carlo" else 0.1)
    assert json.loads(json.dumps(hp)) == hp
    assert agent.num_timesteps == 0 and agent.num_episodes == 0
    assert agent.q_table.shape == (48, 4) and agent.q_table.dtype == np.float64


def test_random_seed_is_recorded():
    agent = agents.QLearning(make())
    assert isinstance(agent.seed, int) and agent.seed >= 0
    assert agent.hyperparameters["seed"] == agent.seed


def test_learning_rate_forms():
    assert agents.QLearning(make(), learning_rate="1/n").hyperparameters["learning_rate"] == "1/N"
    schedule = {"type": "exponential", "start": 0.5, "end": 0.01, "decay": 0.999}
    assert agents.QLearning(make(), learning_rate=schedule).hyperparameters["learning_rate"] == schedule
    assert agents.QLearning(make(), learning_rate=1).hyperparameters["learning_rate"] == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"learning_rat": 0.1}, "did you mean 'learning_rate'"),
        ({"epsilom": 0.1}, "did you mean 'epsilon'"),
        ({"gama": 0.9}, "did you mean 'gamma'"),
        ({"initial_value": 1.0}, "did you mean 'initial_q'"),
        ({"batch_size": 32}, "its hyperparameters: seed, gamma, learning_rate, epsilon, initial_q"),
        ({"learning_rate": 0.0}, "learning_rate must be"),
        ({"learning_rate": 1.5}, "learning_rate must be"),
        ({"learning_rate": "1/M"}, "learning_rate must be"),
        ({"learning_rate": True}, "learning_rate must be"),
        ({"learning_rate": {"type": "linear", "start": 0.5, "end": 0.0, "fraction": 1.0}}, "(0, 1]"),
        ({"epsilon": 1.5}, "epsilon is a probability"),
        ({"epsilon": -0.1}, "epsilon is a probability"),
        (
            {"epsilon": {"type": "linear", "start": 2.0, "end": 0.1, "fraction": 0.5}},
            "epsilon is a probability",
        ),
        ({"epsilon": {"type": "step", "start": 1.0}}, "one of 'linear', 'exponential'"),
        ({"epsilon": "0.1"}, "epsilon must be a number"),
        ({"initial_q": float("inf")}, "initial_q must be a finite number"),
        ({"initial_q": "0"}, "initial_q must be a finite number"),
        ({"gamma": 1.5}, "gamma (the discount) must be a number in [0, 1]"),
        ({"gamma": "0.9"}, "gamma (the discount) must be a number in [0, 1]"),
        ({"seed": -1}, "seed must be a whole number from 0 to 2**64 - 1"),
        ({"seed": 1.5}, "seed must be a whole number from 0 to 2**64 - 1"),
    ],
)
def test_bad_hyperparameters(kwargs, message):
    with pytest.raises(AgentError) as info:
        agents.QLearning(make(), **kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_box_observations_refused(name):
    cls = AGENTS[name]
    with pytest.raises(AgentError) as info:
        cls(make(obs_type="coords"))
    message = str(info.value)
    assert f"{cls.__name__} needs a Discrete observation space" in message
    assert "obs_type='index'" in message
    with pytest.raises(
        AgentError, match=f"{cls.__name__} learns on a gymnasium env \\(or an env id\\); got 42"
    ):
        cls(42)


class BoxActions(gym.Env):
    """Discrete states, continuous actions: no table can hold it."""

    observation_space = spaces.Discrete(3)
    action_space = spaces.Box(-1.0, 1.0, shape=(1,))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 0, 0.0, True, False, {}


def test_box_actions_refused():
    with pytest.raises(AgentError, match="QLearning needs a Discrete action space"):
        agents.QLearning(BoxActions())


def test_bad_total_timesteps():
    agent = agents.QLearning(make(), seed=0)
    for bad in (-1, 1.5, "10", True):
        with pytest.raises(AgentError, match="total_timesteps"):
            agent.learn(bad)


# ----- the learn loop's contract -----


class ResetRecorder(gym.Wrapper):
    def __init__(self, env):
        super().__init__(env)
        self.seeds = []

    def reset(self, *, seed=None, options=None):
        self.seeds.append(seed)
        return self.env.reset(seed=seed, options=options)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_learn_counts_events_and_seeds(name):
    env = ResetRecorder(make("lab/IceLake-v0"))
    agent = AGENTS[name](env, seed=11, epsilon=0.5)
    events = []
    assert agent.learn(3000, callback=events.append) is agent
    assert agent.num_timesteps == 3000  # exactly, even mid-episode
    assert agent.num_episodes == len(events) > 10
    assert [e["episode"] for e in events] == list(range(len(events)))
    assert all(e["agent"] is agent for e in events)
    assert set(events[0]) == {"agent", "timestep", "episode", "return", "length", "terminated"}
    assert np.cumsum([e["length"] for e in events]).tolist() == [e["timestep"] for e in events]
    assert all(isinstance(e["return"], float) and isinstance(e["terminated"], bool) for e in events)
    # Episode k starts with reset(seed=episode_seed(seed, k)); the last one was cut at 3000 steps.
    assert env.seeds == [episode_seed(11, k) for k in range(len(events) + 1)]


def test_episode_seed_is_pure_and_spread():
    seeds = [episode_seed(7, k) for k in range(1000)]
    assert seeds == [episode_seed(7, k) for k in range(1000)]
    assert len(set(seeds)) == 1000 and all(0 <= s < 2**32 for s in seeds)
    assert episode_seed(8, 0) != episode_seed(7, 0)


def test_callback_false_stops_at_episode_boundary_and_resume_counts():
    agent = agents.QLearning(make(), seed=0)
    events = []

    def stop_after_five(event):
        events.append(event)
        return event["episode"] < 4

    agent.learn(10**6, callback=stop_after_five)
    assert len(events) == 5 and agent.num_episodes == 5
    assert agent.num_timesteps == events[-1]["timestep"]
    before = agent.num_timesteps
    agent.learn(100, reset_num_timesteps=False)  # as stable-baselines3: 100 more steps
    assert agent.num_timesteps == before + 100
    agent.learn(10, reset_num_timesteps=False)
    assert agent.num_timesteps == before + 110
    agent.learn(0, reset_num_timesteps=False)  # nothing to do
    assert agent.num_timesteps == before + 110
    agent.learn(50)  # a fresh count
    assert agent.num_timesteps == 50


def test_truncation_is_an_episode_end():
    agent = agents.QLearning(make(max_episode_steps=7), seed=0, epsilon=0.0)
    events = []
    agent.learn(70, callback=events.append)
    assert [e["length"] for e in events] == [7] * 10
    assert not any(e["terminated"] for e in events)


def test_callback_may_read_and_edit_the_table():
    agent = agents.QLearning(make(), seed=0)
    seen = []

    def look(event):
        table = event["agent"].q_table
        seen.append(table.copy())
        if event["episode"] == 0:
            table[40, 2] = 77.0  # a cliff cell: never a state the agent is in, so never updated

    agent.learn(2000, callback=look)
    assert len(seen) > 2 and not np.array_equal(seen[0], seen[-1])  # it watched learning progress
    assert seen[1][40, 2] == 77.0 and agent.q_table[40, 2] == 77.0  # the edit reached the learning loop


# ----- predict -----


def test_predict_scalar_and_batch():
    agent = agents.QLearning(make(), seed=0, learning_rate=0.5)
    agent.learn(3000)
    policy = agent.greedy_policy()
    action, state = agent.predict(36)
    assert state is None and type(action) is int and action == policy[36]
    assert agent.predict(np.int64(36))[0] == policy[36]
    assert agent.predict(np.array(36))[0] == policy[36]
    batch = np.array([0, 36, 47, 12])
    actions, _ = agent.predict(batch)
    assert isinstance(actions, np.ndarray) and actions.shape == (4,)
    np.testing.assert_array_equal(actions, policy[batch])
    grid, _ = agent.predict(np.arange(48).reshape(4, 12))
    np.testing.assert_array_equal(grid, policy.reshape(4, 12))
    assert agent.predict(np.zeros(0, dtype=np.int64))[0].shape == (0,)
    for bad in (48, -1, np.array([1, 2, 99]), 1.5, "a"):
        with pytest.raises(AgentError):
            agent.predict(bad)


def test_predict_ties_go_to_the_lowest_action():
    agent = agents.QLearning(make(), seed=0)
    assert agent.predict(np.arange(48))[0].tolist() == [0] * 48  # all zero: action 0 everywhere
    agent.q_table[5] = [1.0, 3.0, 3.0, 0.0]
    agent.q_table[6] = [-1.0, -1.0, -2.0, -1.0]
    agent.q_table[7] = [0.0, 0.0, 0.0, 2.0]
    assert [agent.predict(s)[0] for s in (5, 6, 7)] == [1, 0, 3]
    np.testing.assert_array_equal(agent.greedy_policy()[5:8], [1, 0, 3])
    np.testing.assert_array_equal(agent.values()[5:8], [3.0, -1.0, 2.0])
    double = agents.DoubleQLearning(make(), seed=0)
    a, b = double.q_tables
    a[5], b[5] = [0.0, 2.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0]  # averages 0, 1, 1, 0: a tie
    assert double.predict(5)[0] == 1
    np.testing.assert_array_equal(double.q_table[5], [0.0, 1.0, 1.0, 0.0])


def test_predict_epsilon_greedy_uses_the_agents_rng():
    greedy = agents.QLearning(make(), seed=0, epsilon=0.0)
    greedy.q_table[3] = [0.0, 0.0, 1.0, 0.0]
    assert set(greedy.predict(np.full(200, 3), deterministic=False)[0].tolist()) == {2}
    explore = agents.QLearning(make(), seed=0, epsilon=1.0)
    explore.q_table[3] = [0.0, 0.0, 1.0, 0.0]
    first = explore.predict(np.full(400, 3), deterministic=False)[0]
    assert set(first.tolist()) == {0, 1, 2, 3}
    again = agents.QLearning(make(), seed=0, epsilon=1.0).predict(np.full(400, 3), deterministic=False)[0]
    np.testing.assert_array_equal(first, again)  # same seed, same draws
    assert explore.epsilon == 1.0


def test_epsilon_follows_the_schedule():
    schedule = {"type": "linear", "start": 1.0, "end": 0.0, "fraction": 0.5}
    agent = agents.QLearning(make(), seed=0, epsilon=schedule)
    assert agent.epsilon == 1.0  # no learn() yet: the start
    seen = []
    agent.learn(2000, callback=lambda event: seen.append((event["timestep"], event["agent"].epsilon)))
    assert len(seen) > 3
    for timestep, epsilon in seen:
        assert epsilon == pytest.approx(max(0.0, 1.0 - timestep / 1000))
    assert agent.epsilon == 0.0


# ----- the update rules, on tiny worlds whose numbers are known -----

ONE_STEP = {"ascii_map": ["S.G"], "goal_reward": 1.0}


@pytest.mark.parametrize("name", ALGORITHMS)
def test_truncation_bootstraps_and_termination_does_not(name):
    gamma, q0 = 0.9, 5.0
    # Truncated after one step onto '.': bootstrap from Q('.') (all 5.0) -> 0 + 0.9 * 5 = 4.5.
    truncated = AGENTS[name](
        make("lab/GridWorld-v0", max_episode_steps=1, **ONE_STEP),
        seed=0,
        gamma=gamma,
        epsilon=0.0,
        learning_rate=1.0,
        initial_q=q0,
    )
    tables = truncated.q_tables if name == "double_q_learning" else (truncated.q_table,)
    for table in tables:
        table[0] = [q0, q0 + 1.0, q0, q0]  # make "right" the greedy action from S
    truncated.learn(1)
    # Terminated: from '.', stepping right onto G pays 1 and ends the episode: the target is 1.
    terminated = AGENTS[name](
        make("lab/GridWorld-v0", **ONE_STEP),
        seed=0,
        gamma=gamma,
        epsilon=0.0,
        learning_rate=1.0,
        initial_q=q0,
    )
    tables = terminated.q_tables if name == "double_q_learning" else (terminated.q_table,)
    for table in tables:
        table[0] = [q0, q0 + 1.0, q0, q0]
        table[1] = [q0, q0 + 1.0, q0, q0]
    terminated.learn(2)
    if name == "double_q_learning":
        # One table took the update, the other kept its value; the acting table is their mean.
        assert sorted(t[0, 1] for t in truncated.q_tables) == [4.5, 6.0]
        assert sorted(t[1, 1] for t in terminated.q_tables) == [1.0, 6.0]
    elif name == "monte_carlo":
        # The truncated return is completed with the greedy value of '.', 5; G = 0 + 0.9 * 5.
        assert truncated.q_table[0, 1] == 4.5
        # Whole episode: G('.', right) = 1, G(S, right) = 0 + 0.9 * 1.
        assert terminated.q_table[1, 1] == 1.0 and terminated.q_table[0, 1] == pytest.approx(0.9)
    else:
        assert truncated.q_table[0, 1] == 4.5
        assert terminated.q_table[1, 1] == 1.0


def test_one_over_n_is_the_sample_average():
    # Monte Carlo with 1/N on a deterministic two-step world: every return is 0.9, so is the average.
    agent = agents.MonteCarlo(make("lab/GridWorld-v0", **ONE_STEP), seed=0, gamma=0.9, epsilon=0.0)
    agent.q_table[0] = [0.0, 10.0, 0.0, 0.0]  # right from S (kept: 10 > the returns)
    agent.q_table[1] = [0.0, 10.0, 0.0, 0.0]
    agent.learn(20)
    assert agent.q_table[0, 1] == pytest.approx(0.9) and agent.q_table[1, 1] == 1.0
    assert agent._counts[0][0, 1] == 10  # ten episodes, one first visit each; the first replaced the 10.0
    # Q-learning with 1/N: counts of updates per pair, saved with the agent.
    q = agents.QLearning(make(), seed=0, learning_rate="1/N", epsilon=1.0)
    q.learn(1000)
    assert q._counts[0].sum() == 1000


class Recorder(gym.Wrapper):
    """Keeps every step's ``(action, next state, reward)`` and every reset's state."""

    def __init__(self, env):
        super().__init__(env)
        self.states, self.actions, self.rewards = [], [], []

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.states.append(int(obs))
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.actions.append(int(action))
        self.states.append(int(obs))
        self.rewards.append(float(reward))
        return obs, reward, terminated, truncated, info


ROW = [10.0, 20.0, 30.0, 40.0]  # every state's Q row: the greedy action is 3, the mean 25


@pytest.mark.parametrize(("name", "epsilon"), [("q_learning", 1.0), ("sarsa", 1.0), ("expected_sarsa", 0.5)])
def test_td_targets_bootstrap_from_max_next_action_or_expectation(name, epsilon):
    """One update with step size 1 sets Q(s0, a0) to its target: r + gamma * max Q(s1, .) (Q-learning),
    r + gamma * Q(s1, a1) with a1 the action then taken (SARSA), r + gamma * ((1 - eps) max + eps mean)
    (Expected SARSA)."""
    env = Recorder(make())
    agent = AGENTS[name](env, seed=0, gamma=0.9, epsilon=epsilon, learning_rate=1.0)
    agent.q_table[:] = ROW
    agent.learn(2)
    (s0, s1, _), (a0, a1), r0 = env.states, env.actions, env.rewards[0]
    assert (s1, a1) != (s0, a0) and ROW[a1] != max(ROW)  # the second update leaves the first alone
    bootstrap = {
        "q_learning": max(ROW),
        "sarsa": ROW[a1],
        "expected_sarsa": (1 - epsilon) * max(ROW) + epsilon * np.mean(ROW),
    }[name]
    assert agent.q_table[s0, a0] == pytest.approx(r0 + 0.9 * bootstrap)


def test_double_q_learning_values_each_tables_choice_with_the_other_table():
    agent = agents.DoubleQLearning(make(), seed=0, gamma=0.9, epsilon=0.0, learning_rate=1.0)
    a, b = agent.q_tables
    a[:], b[:] = ROW, ROW[::-1]  # A picks action 3 (B values it 10); B picks 0 (A values it 10)
    agent.learn(1)  # greedy on A + B (50 each): action 0, up from the start, onto a plain cell (reward -1)
    a, b = agent.q_tables
    changed = [(table, before) for table, before in ((a, ROW), (b, ROW[::-1])) if (table != before).any()]
    assert len(changed) == 1
    table, before = changed[0]
    diff = np.argwhere(table != np.array([before] * len(table)))
    assert len(diff) == 1 and diff[0][1] == 0
    assert table[tuple(diff[0])] == pytest.approx(-1 + 0.9 * 10.0)  # never 0.9 * 40 (its own max)


def test_double_q_learning_updates_either_table_half_the_time():
    agent = agents.DoubleQLearning(make(), seed=0, learning_rate="1/N", epsilon=1.0)
    agent.learn(4000)
    updates = [int(counts.sum()) for counts in agent._counts]
    assert sum(updates) == 4000 and 1800 < updates[0] < 2200


def test_monte_carlo_averages_first_visit_returns_only():
    """One episode of random moves on the cliff (revisiting states), cut by a time limit: with 1/N
    each visited pair's Q is its first visit's return, the tail completed by the last state's value
    (0 here); the pairs not visited keep their initial value."""
    env = Recorder(make(max_episode_steps=40))
    agent = agents.MonteCarlo(env, seed=0, gamma=0.9, epsilon=1.0)
    agent.learn(10**6, callback=lambda event: False)  # stop after the first episode
    states, actions, rewards = env.states[:-1], env.actions, env.rewards
    assert len(actions) == 40 and len(set(zip(states, actions, strict=True))) < 40  # revisits
    expected = np.zeros_like(agent.q_table)
    g = 0.0
    for t in reversed(range(40)):
        g = rewards[t] + 0.9 * g
        expected[states[t], actions[t]] = g  # the earliest visit is written last
    np.testing.assert_allclose(agent.q_table, expected, rtol=1e-12)


def test_monte_carlo_learns_nothing_from_an_episode_learn_cut_short():
    agent = agents.MonteCarlo(make(), seed=0, epsilon=1.0, initial_q=3.0)
    agent.learn(5)
    assert agent.num_timesteps == 5 and (agent.q_table == 3.0).all()


def test_monte_carlo_updates_an_episode_with_the_step_size_of_its_last_step():
    # "S.G", always right: episodes of two steps. learning_rate 1 -> 0.5 over 4 steps: 0.875 at step 1
    # (the first episode's last), 0.625 at step 3 (the second's)
    schedule = {"type": "linear", "start": 1.0, "end": 0.5, "fraction": 1.0}
    agent = agents.MonteCarlo(make("lab/GridWorld-v0", **ONE_STEP), seed=0, gamma=0.9, epsilon=0.0,
                              learning_rate=schedule)  # fmt: skip
    agent.q_table[0] = agent.q_table[1] = [0.0, 1e-9, 0.0, 0.0]  # right is greedy
    agent.learn(4)
    first = 1e-9 + 0.875 * (1.0 - 1e-9)
    assert agent.q_table[1, 1] == pytest.approx(first + 0.625 * (1.0 - first))
