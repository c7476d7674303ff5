"""Tabular agents learn: the greedy policy's exact value comes within 1% of the optimum.

"Within 1%" is measured exactly, not by sampling: ``policy_evaluation`` of the greedy policy on the
environment's own transition model, at the start state, against ``value_iteration``'s optimum, with
the same discount the agent learned with (gamma = 0.99 on every world; at gamma = 1 an improper
greedy policy anywhere, even in a state the agent never reaches, makes the exact value undefined).

Each case is a step budget and three seeds, of which at least two must come within 1% (the seeds
run in order and stop once that is decided, so a healthy case costs two runs): one seed's outcome
is a coin that rounding or an unrelated change to the random streams can flip, and some cases do
miss on some seeds (seeds 0-4 measured: SARSA on the cliff misses by 14% on seed 3, Double
Q-learning on the windy grid by 6% on seed 4; every other case passes on every seed tried). The
hyperparameters are the ones the benchmark (``benchmarks/bench_tabular.py``) uses, where the spread
over seeds is measured. Notes on the choices:

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

SEEDS = (0, 1, 2)
NEEDED = 2  # of the SEEDS, within TOLERANCE

# (algorithm, env id, hyperparameters, step budget, seeds)
CASES = [
    ("q_learning", "lab/CliffWalk-v0", FAST, 20_000, SEEDS),
    ("sarsa", "lab/CliffWalk-v0", FAST, 20_000, SEEDS),
    ("expected_sarsa", "lab/CliffWalk-v0", FAST, 20_000, SEEDS),
    ("double_q_learning", "lab/CliffWalk-v0", CLIFF_DOUBLE_Q, 200_000, SEEDS),
    ("q_learning", "lab/IceLake-v0", LAKE_DECAYING, 200_000, SEEDS),
    ("sarsa", "lab/IceLake-v0", LAKE_ON_POLICY, 200_000, SEEDS),
    ("expected_sarsa", "lab/IceLake-v0", LAKE_ON_POLICY, 200_000, SEEDS),
    ("double_q_learning", "lab/IceLake-v0", LAKE_STEADY, 200_000, SEEDS),
    ("monte_carlo", "lab/IceLake-v0", LAKE_DECAYING, 200_000, SEEDS),
    ("q_learning", "lab/IceLake8x8-v0", BIG_LAKE, 1_000_000, (3, 0, 1)),  # 0.07%, 0.2%, 0.15%
    ("q_learning", "lab/WindyGrid-v0", FAST, 30_000, SEEDS),
    ("sarsa", "lab/WindyGrid-v0", FAST, 30_000, SEEDS),
    ("expected_sarsa", "lab/WindyGrid-v0", FAST, 30_000, SEEDS),
    ("double_q_learning", "lab/WindyGrid-v0", FAST, 30_000, SEEDS),
    ("q_learning", "lab/FourRooms-v0", FAST_OPTIMISTIC, 40_000, SEEDS),
    ("sarsa", "lab/FourRooms-v0", FAST_OPTIMISTIC, 40_000, SEEDS),
    ("expected_sarsa", "lab/FourRooms-v0", FAST_OPTIMISTIC, 40_000, SEEDS),
    ("double_q_learning", "lab/FourRooms-v0", FAST_OPTIMISTIC, 40_000, SEEDS),
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
    ("name", "env_id", "hyperparameters", "budget", "seeds"), CASES, ids=map(case_id, CASES)
)
def test_reaches_one_percent_of_optimal(name, env_id, hyperparameters, budget, seeds):
    outcomes: list[str] = []
    passed = failed = 0
    for seed in seeds:
        env = gym.make(env_id)
        agent = AGENTS[name](env, seed=seed, gamma=GAMMA, **hyperparameters)
        untrained = relative_gap(env, agent.greedy_policy())
        assert untrained > TOLERANCE  # the test means something: the untrained policy is far off
        agent.learn(budget)
        gap = relative_gap(env, agent.greedy_policy())
        outcomes.append(f"seed {seed}: {gap:.2%} from optimal after {budget} steps")
        passed, failed = passed + (gap <= TOLERANCE), failed + (gap > TOLERANCE)
        if passed >= NEEDED or failed > len(seeds) - NEEDED:
            break
    assert passed >= NEEDED, f"{name} on {env_id}, {NEEDED} of {len(seeds)} seeds needed:\n" + "\n".join(
        outcomes
    )
