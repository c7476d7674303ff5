"""Tabular agents learn: the greedy policy's exact value comes within 1% of the optimum.

"Within 1%" is measured exactly, not by sampling: ``policy_evaluation`` of the greedy policy on the
environment's own transition model, at the start state, against ``value_iteration``'s optimum, with
the same discount the agent learned with (gamma = 0.99 on every world; at gamma = 1 an improper
greedy policy anywhere, even in a state the agent never reaches, makes the exact value undefined).

Each case is one fixed seed and a step budget; the hyperparameters are the ones the benchmark
(``benchmarks/bench_tabular.py``) uses, where the spread over seeds is measured. Notes on the choices:

- Optimistic initial values (``initial_q=1.0``, above any return) drive exploration on the sparse-reward
  worlds (IceLake, FourRooms); on the -1-per-step worlds the default 0 is already optimistic.
- On-policy methods (SARSA, Expected SARSA, Monte Carlo) learn the value of their epsilon-greedy
  policy, so epsilon decays to 0 for their greedy policy to become the optimal one.
- A constant step size keeps stirring the estimates of the slippery lakes; a decaying one settles them.
- Monte Carlo control does not reach 1% on the deterministic worlds (CliffWalk, WindyGrid, FourRooms)
  in any budget tried (up to 3M steps): a greedy policy that walks into a wall repeats it until the
  time limit, each such episode teaches one state-action pair, and at gamma = 0.99 "loop forever"
  (-100) looks no worse than the estimates from its early random walks. It is tested on the lakes.
"""

from __future__ import annotations

import gymnasium as gym
import pytest

from agents import AGENTS
from agents.planning import PlanningError, policy_evaluation, value_iteration

GAMMA = 0.99
TOLERANCE = 0.01

# Deterministic worlds: epsilon from 0.1 to 0 quickly (a factor 0.998 per step), big steps.
FAST = {"epsilon": {"type": "exponential", "start": 0.1, "end": 0.0, "decay": 0.998}, "learning_rate": 0.5}
FAST_OPTIMISTIC = {**FAST, "initial_q": 1.0}
# Double Q-learning on the cliff: each table judges the other's choices, stale values linger, and it
# needs much more exploration than Q-learning to get out from under its early cliff falls.
CLIFF_DOUBLE_Q = {"epsilon": 0.5, "learning_rate": 0.3}
# The slippery lakes.
LAKE_DECAYING = {
    "initial_q": 1.0,
    "epsilon": {"type": "exponential", "start": 0.5, "end": 0.0, "decay": 0.99997},
    "learning_rate": {"type": "exponential", "start": 0.1, "end": 0.001, "decay": 0.99999},
}
LAKE_ON_POLICY = {
    "initial_q": 1.0,
    "epsilon": {"type": "exponential", "start": 0.5, "end": 0.0, "decay": 0.99995},
    "learning_rate": 0.02,
}
LAKE_STEADY = {
    "initial_q": 1.0,
    "epsilon": 0.2,
    "learning_rate": {"type": "exponential", "start": 0.1, "end": 0.001, "decay": 0.99999},
}
BIG_LAKE = {
    "initial_q": 1.0,
    "epsilon": 0.2,
    "learning_rate": {"type": "exponential", "start": 0.1, "end": 0.001, "decay": 0.999995},
}

# (algorithm, env id, hyperparameters, step budget, seed)
CASES = [
    ("q_learning", "lab/CliffWalk-v0", FAST, 20_000, 0),
    ("sarsa", "lab/CliffWalk-v0", FAST, 20_000, 0),
    ("expected_sarsa", "lab/CliffWalk-v0", FAST, 20_000, 0),
    ("double_q_learning", "lab/CliffWalk-v0", CLIFF_DOUBLE_Q, 200_000, 0),
    ("q_learning", "lab/IceLake-v0", LAKE_DECAYING, 200_000, 0),
    ("sarsa", "lab/IceLake-v0", LAKE_ON_POLICY, 200_000, 0),
    ("expected_sarsa", "lab/IceLake-v0", LAKE_ON_POLICY, 200_000, 0),
    ("double_q_learning", "lab/IceLake-v0", LAKE_STEADY, 200_000, 0),
    ("monte_carlo", "lab/IceLake-v0", LAKE_DECAYING, 200_000, 0),
    ("q_learning", "lab/IceLake8x8-v0", BIG_LAKE, 1_000_000, 3),
    ("q_learning", "lab/WindyGrid-v0", FAST, 30_000, 0),
    ("sarsa", "lab/WindyGrid-v0", FAST, 30_000, 0),
    ("expected_sarsa", "lab/WindyGrid-v0", FAST, 30_000, 0),
    ("double_q_learning", "lab/WindyGrid-v0", FAST, 30_000, 0),
    ("q_learning", "lab/FourRooms-v0", FAST_OPTIMISTIC, 40_000, 0),
    ("sarsa", "lab/FourRooms-v0", FAST_OPTIMISTIC, 40_000, 0),
    ("expected_sarsa", "lab/FourRooms-v0", FAST_OPTIMISTIC, 40_000, 0),
    ("double_q_learning", "lab/FourRooms-v0", FAST_OPTIMISTIC, 40_000, 0),
]


def relative_gap(env: gym.Env, policy) -> float:
    """|V_pi(s0) - V*(s0)| / |V*(s0)|, exactly, on the env's own model (inf if pi's value is undefined)."""
    model = env.unwrapped.transition_model()
    optimum = value_iteration(model, GAMMA).start_value(model)
    try:
        value = float(model.initial @ policy_evaluation(model, policy, GAMMA))
    except PlanningError:
        return float("inf")
    return abs(value - optimum) / abs(optimum)


def case_id(case) -> str:
    name, env_id, _, budget, _ = case
    return f"{name}-{env_id.removeprefix('lab/')}-{budget // 1000}k"


@pytest.mark.parametrize(
    ("name", "env_id", "hyperparameters", "budget", "seed"), CASES, ids=map(case_id, CASES)
)
def test_reaches_one_percent_of_optimal(name, env_id, hyperparameters, budget, seed):
    env = gym.make(env_id)
    agent = AGENTS[name](env, seed=seed, gamma=GAMMA, **hyperparameters)
    untrained = relative_gap(env, agent.greedy_policy())
    agent.learn(budget)
    gap = relative_gap(env, agent.greedy_policy())
    assert gap <= TOLERANCE, f"{name} on {env_id}: {gap:.2%} from optimal after {budget} steps"
    assert untrained > TOLERANCE  # the test means something: the untrained policy is far off
