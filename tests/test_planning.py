"""Exact planning: known optimal values, agreement with gymnasium's FrozenLake, and refusals."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from conftest import ALL_IDS, make_unwrapped

from agents.planning import (
    PlanningError,
    greedy_policy,
    model_from_toy_text,
    policy_evaluation,
    policy_iteration,
    policy_start_value,
    q_values,
    value_iteration,
)
from envs import GridWorld
from envs.grid.model import TransitionModel, reachable_mask
from envs.grid.presets import CliffWalk, IceLake, WindyGrid

# FrozenLake's action for each of ours: ours 0 up, 1 right, 2 down, 3 left; FrozenLake 0 left,
# 1 down, 2 right, 3 up.
FROZEN_OF_OURS = [3, 2, 1, 0]


@pytest.mark.parametrize(("ours_id", "map_name"), [("lab/IceLake8x8-v0", "8x8"), ("lab/IceLake-v0", "4x4")])
@pytest.mark.parametrize("gamma", [0.99, 0.9])
def test_icelake_equals_frozenlake(ours_id, map_name, gamma):
    lake = gym.make("FrozenLake-v1", map_name=map_name, is_slippery=True).unwrapped
    theirs = model_from_toy_text(lake.P, lake.initial_state_distrib)
    ours = make_unwrapped(ours_id).transition_model()
    assert ours.P.shape == theirs.P.shape
    np.testing.assert_array_equal(ours.terminal, theirs.terminal)
    np.testing.assert_array_equal(ours.initial, theirs.initial)
    # The tables themselves agree, action for action.
    np.testing.assert_allclose(ours.P, theirs.P[:, FROZEN_OF_OURS], rtol=0, atol=1e-15)
    np.testing.assert_allclose(ours.R, theirs.R[:, FROZEN_OF_OURS], rtol=0, atol=1e-15)
    a, b = value_iteration(ours, gamma), value_iteration(theirs, gamma)
    np.testing.assert_allclose(a.V, b.V, rtol=0, atol=1e-8)
    np.testing.assert_allclose(a.Q, b.Q[:, FROZEN_OF_OURS], rtol=0, atol=1e-8)
    assert a.start_value(ours) == pytest.approx(b.start_value(theirs), abs=1e-8)
    assert 0 < a.start_value(ours) < 1


def test_icelake_known_undiscounted_success_probabilities():
    # The slippery 4x4 lake's optimal success probability from the start is exactly 14/17; on the
    # 8x8 lake a patient policy always gets through (1).
    four = value_iteration(IceLake().transition_model(), gamma=1.0, tol=1e-14)
    assert four.V[0] == pytest.approx(14 / 17, abs=1e-9)
    eight = value_iteration(IceLake(map_name="8x8").transition_model(), gamma=1.0, tol=1e-14)
    assert eight.V[0] == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(
    ("env", "value"),
    [
        (WindyGrid(), -15.0),
        (WindyGrid(king_moves=True), -7.0),
        (CliffWalk(), -13.0),
    ],
    ids=["windy", "windy-king", "cliff"],
)
def test_undiscounted_optimal_start_values(env, value):
    model = env.transition_model()
    vi = value_iteration(model, gamma=1.0)
    assert vi.start_value(model) == value
    pi = policy_iteration(model, gamma=1.0)
    assert pi.start_value(model) == pytest.approx(value, abs=1e-9)
    # Following the greedy policy in the (deterministic) environment takes exactly -value steps.
    env.reset(seed=0)
    total, steps, terminated = 0.0, 0, False
    while not terminated:
        _, reward, terminated, _, _ = env.step(int(vi.policy[env.state]))
        total += reward
        steps += 1
        assert steps <= 100
    assert total == value and steps == -value


def test_cliff_optimal_path_walks_the_edge():
    env = CliffWalk()
    plan = value_iteration(env.transition_model(), gamma=1.0)
    m = env.model
    assert plan.policy[m.state_of(3, 0)] == 0  # up
    for col in range(11):
        assert plan.policy[m.state_of(2, col)] == 1  # right along the edge
    assert plan.policy[m.state_of(2, 11)] == 2  # down onto the goal


PRESETS = ALL_IDS


@pytest.mark.parametrize("env_id", PRESETS)
@pytest.mark.parametrize("gamma", [0.9, 0.99])
def test_policy_iteration_equals_value_iteration(env_id, gamma):
    model = make_unwrapped(env_id).transition_model()
    vi = value_iteration(model, gamma)
    pi = policy_iteration(model, gamma)
    np.testing.assert_allclose(pi.V, vi.V, rtol=0, atol=1e-8)
    np.testing.assert_allclose(pi.Q, vi.Q, rtol=0, atol=1e-8)
    # PI's policy is optimal: its exact value is V*.
    np.testing.assert_allclose(policy_evaluation(model, pi.policy, gamma), vi.V, rtol=0, atol=1e-8)
    # V* satisfies the Bellman optimality equation.
    np.testing.assert_allclose(q_values(model, vi.V, gamma).max(axis=1), vi.V, rtol=0, atol=1e-9)


@pytest.mark.parametrize("env_id", PRESETS)
def test_evaluating_greedy_policy_gives_optimal_value(env_id):
    model = make_unwrapped(env_id).transition_model()
    plan = value_iteration(model, 0.99)
    np.testing.assert_array_equal(plan.policy, greedy_policy(plan.Q))
    np.testing.assert_allclose(policy_evaluation(model, plan.policy, 0.99), plan.V, rtol=0, atol=1e-8)
    # the same policy as a probability matrix
    one_hot = np.eye(model.n_actions)[plan.policy]
    np.testing.assert_allclose(policy_evaluation(model, one_hot, 0.99), plan.V, rtol=0, atol=1e-8)


def test_policy_evaluation_exact_small_chain():
    # S . G in a corridor, step -1, goal -1: always right is worth -2 from S, -1 from the middle.
    env = make_unwrapped("lab/GridWorld-v0", ascii_map=["S.G"], step_reward=-1.0, goal_reward=-1.0)
    model = env.transition_model()
    V = policy_evaluation(model, np.array([1, 1, 1]), gamma=1.0)
    np.testing.assert_array_equal(V, [-2.0, -1.0, 0.0])
    Vg = policy_evaluation(model, np.array([1, 1, 1]), gamma=0.5)
    np.testing.assert_allclose(Vg, [-1.5, -1.0, 0.0], rtol=0, atol=1e-15)
    # uniform random policy with gamma=0.5: V0 = -1 + .5(.75 V0 + .25 V1), V1 = -1 + .5(.25 V0 + .5 V1)
    A = np.array([[1 - 0.375, -0.125], [-0.125, 1 - 0.25]])
    expected = np.linalg.solve(A, [-1.0, -1.0])
    V = policy_evaluation(model, np.full((3, 4), 0.25), gamma=0.5)
    np.testing.assert_allclose(V[:2], expected, rtol=0, atol=1e-12)
    assert V[2] == 0.0


def test_an_endless_policy_undiscounted_is_worth_what_its_loops_add_up_to():
    cliff = CliffWalk()
    model = cliff.transition_model()
    always_down = np.full(model.n_states, 2)  # bumps the bottom edge or falls back to start forever
    V = policy_evaluation(model, always_down, gamma=1.0)
    above_goal = [cliff.model.state_of(row, 11) for row in range(3)]
    np.testing.assert_array_equal(V[above_goal], [-3.0, -2.0, -1.0])  # walks down into the goal
    rest = np.ones(model.n_states, bool)
    rest[above_goal] = False
    assert (V[rest & ~model.terminal] == -np.inf).all()  # every step costs 1, forever
    assert np.isfinite(policy_evaluation(model, always_down, gamma=0.9)).all()
    # a two-state cycle between two floor cells of FourRooms, where steps cost nothing: worth 0 there,
    # and the optimum (1) everywhere the policy still reaches the goal
    env = make_unwrapped("lab/FourRooms-v0")
    m, dense = env.model, env.transition_model()
    plan = value_iteration(dense, 1.0)
    policy = plan.policy.copy()
    policy[m.state_of(1, 1)] = 1
    policy[m.state_of(1, 2)] = 3
    V = policy_evaluation(dense, policy, gamma=1.0)
    assert V[m.state_of(1, 1)] == V[m.state_of(1, 2)] == 0.0
    loops = ~reachable_mask((np.einsum("sa,sat->st", np.eye(4)[policy], dense.P) > 0).T, dense.terminal)
    np.testing.assert_allclose(V[~loops & ~dense.terminal], 1.0, rtol=0, atol=1e-9)
    # paying forever: a step reward of +1 and a policy that bumps into the wall
    paid = make_unwrapped("lab/GridWorld-v0", ascii_map=["S.G"], step_reward=1.0).transition_model()
    assert policy_evaluation(paid, np.array([3, 3, 3]), gamma=1.0)[0] == np.inf
    # from the start: right into the middle cell, which bumps the wall forever (not 0 * inf = nan)
    assert policy_start_value(paid, np.array([1, 3, 3]), gamma=1.0) == np.inf


def test_costs_and_payments_that_both_go_on_forever_have_no_value():
    P = np.zeros((2, 1, 2))
    P[0, 0, 1] = P[1, 0, 0] = 1.0  # a two-state loop paying +1 then costing 1, never ending
    model = TransitionModel(
        P=P, R=np.array([[1.0], [-1.0]]), terminal=np.zeros(2, bool), initial=np.ones(2) / 2
    )
    with pytest.raises(PlanningError, match="both costs and payments forever"):
        policy_evaluation(model, np.array([0, 0]), gamma=1.0)


@pytest.mark.parametrize("env_id", ["lab/FourRooms-v0", "lab/Maze-v0", "lab/KeyDoor-v0"])
def test_undiscounted_planners_give_policies_that_end_the_episode(env_id):
    # steps cost nothing here: walking into a wall ties with walking to the goal
    model = make_unwrapped(env_id).transition_model()
    for plan in (value_iteration(model, 1.0), policy_iteration(model, 1.0)):
        assert policy_start_value(model, plan.policy, 1.0) == pytest.approx(plan.start_value(model))
        steps = (np.einsum("sa,sat->st", np.eye(model.n_actions)[plan.policy], model.P) > 0).T
        assert reachable_mask(steps, model.terminal)[model.reachable()].all()  # every state can end


def test_value_iteration_stops_early_on_a_loop_that_pays_forever():
    model = make_unwrapped("lab/GridWorld-v0", ascii_map=["S.G"], step_reward=0.5).transition_model()
    with pytest.raises(PlanningError, match=r"did not converge in \d+ iterations .* may not be finite"):
        value_iteration(model, gamma=1.0)
    with pytest.raises(PlanningError, match="max_iterations must be a whole number >= 1; got 0"):
        value_iteration(model, 0.9, max_iterations=0)
    with pytest.raises(PlanningError, match="tol must be a number >= 0; got -1"):
        value_iteration(model, 0.9, tol=-1)


def test_value_iteration_undiscounted_without_termination_raises():
    # the bottom-right cell is walled off from the goal; at gamma=1 with a step cost it has no value
    model = make_unwrapped(
        "lab/GridWorld-v0", ascii_map=["S.G#", "...#", "###."], step_reward=-1.0
    ).transition_model()
    with pytest.raises(PlanningError, match="did not converge"):
        value_iteration(model, gamma=1.0, max_iterations=500)
    value_iteration(model, gamma=0.9)


@pytest.mark.parametrize(
    "policy",
    [
        np.zeros(47, dtype=np.int64),  # too short
        np.zeros(49, dtype=np.int64),  # too long
        np.zeros((48, 3)),  # wrong action count
        np.zeros((48, 4, 1)),
        np.zeros(48),  # float actions
        np.full(48, 4),  # out of range
        np.full(48, -1),
        np.full((48, 4), 0.3),  # rows not summing to 1
        np.tile([1.5, -0.5, 0.0, 0.0], (48, 1)),  # negative probability
    ],
    ids=["short", "long", "3-actions", "3d", "float", "action-4", "action--1", "sum", "negative"],
)
def test_bad_policy_shapes_raise(policy):
    model = CliffWalk().transition_model()
    with pytest.raises(PlanningError):
        policy_evaluation(model, policy, gamma=0.9)


@pytest.mark.parametrize("gamma", [-0.01, 1.01, 2.0, float("nan")])
def test_gamma_outside_unit_interval_raises(gamma):
    model = IceLake().transition_model()
    with pytest.raises(PlanningError, match="gamma must lie in"):
        value_iteration(model, gamma)
    with pytest.raises(PlanningError, match="gamma must lie in"):
        policy_iteration(model, gamma)
    with pytest.raises(PlanningError, match="gamma must lie in"):
        policy_evaluation(model, np.zeros(16, dtype=np.int64), gamma)


def test_planning_error_is_value_error():
    assert issubclass(PlanningError, ValueError)


def test_terminal_states_are_worth_zero_even_if_table_says_otherwise():
    # A hand-built 2-state MDP whose terminal state has a reward self-loop: planners ignore it.
    P = np.zeros((2, 1, 2))
    P[0, 0, 1] = 1.0
    P[1, 0, 1] = 1.0
    model = TransitionModel(
        P=P, R=np.array([[2.0], [5.0]]), terminal=np.array([False, True]), initial=np.array([1.0, 0.0])
    )
    plan = value_iteration(model, 1.0)
    np.testing.assert_array_equal(plan.V, [2.0, 0.0])
    np.testing.assert_array_equal(policy_evaluation(model, np.array([0, 0]), 1.0), [2.0, 0.0])


# ----- the environment samples what the model says -----


def _empirical_check(env, state: int, action: int, n: int) -> None:
    P = env.transition_model().P[state, action]
    counts = np.zeros_like(P)
    env.reset(seed=12345)
    for _ in range(n):
        _, info = env.reset()
        assert info["state"] == state
        _, _, _, _, info = env.step(action)
        counts[info["state"]] += 1
    assert counts[P == 0].sum() == 0
    freq = counts / n
    sigma = np.sqrt(P * (1 - P) / n)
    for s2 in np.flatnonzero(P):
        assert abs(freq[s2] - P[s2]) <= 4 * sigma[s2] + 1e-12, (s2, freq[s2], P[s2])


def test_icelake_samples_follow_model():
    env = IceLake()
    _empirical_check(env, 0, 1, 20_000)  # 1/3 each to 0, 1, 4


def test_uneven_slip_samples_follow_model():
    env = IceLake(slip_prob=0.3)  # 0.7 intended, 0.15 to each side
    _empirical_check(env, 0, 2, 20_000)


def test_stochastic_wind_samples_follow_model():
    # start the agent in the windy column 6 (wind 2) with stochastic wind: three outcomes
    rows = ["..........", "..........", "..........", "......S.G.", "..........", "..........", ".........."]
    env = GridWorld(rows, wind=(0, 0, 0, 1, 1, 1, 2, 2, 1, 0), stochastic_wind=True, step_reward=-1.0)
    assert len(np.flatnonzero(env.transition_model().P[env.model.state_of(3, 6), 1])) == 3
    _empirical_check(env, env.model.state_of(3, 6), 1, 12_000)


def test_vector_env_samples_follow_model():
    # 8192 copies, one step each, from the start of the 8x8 lake: the same frequencies
    venv = gym.make_vec("lab/IceLake8x8-v0", num_envs=8192, vectorization_mode="vector_entry_point")
    venv.reset(seed=99)
    _, _, _, _, info = venv.step(np.full(8192, 2))
    P = venv.unwrapped.model.transition_model().P[0, 2]
    counts = np.bincount(info["state"], minlength=len(P))
    assert counts[P == 0].sum() == 0
    sigma = np.sqrt(P * (1 - P) / 8192)
    assert (np.abs(counts / 8192 - P) <= 4 * sigma + 1e-12).all()


def two_state_model(initial=(0.25, 0.75, 0.0)) -> TransitionModel:
    """State 0: action 0 stays for +1, action 1 ends for 0. State 1: both actions end for +3 (a tie).
    State 2 is terminal."""
    P = np.zeros((3, 2, 3))
    P[0, 0, 0] = P[0, 1, 2] = P[1, 0, 2] = P[1, 1, 2] = P[2, 0, 2] = P[2, 1, 2] = 1.0
    R = np.array([[1.0, 0.0], [3.0, 3.0], [0.0, 0.0]])
    return TransitionModel(P=P, R=R, terminal=np.array([False, False, True]), initial=np.array(initial))


def test_value_iteration_by_hand_on_two_states():
    # gamma = 1/2: V_k(0) = 1 + V_{k-1}(0) / 2 = 2 - 2^(1-k), exactly in floats; the change of sweep
    # k is 2^(1-k), first <= 1e-12 at k = 41; V(1) = 3 from the first sweep on
    model = two_state_model()
    plan = value_iteration(model, gamma=0.5, tol=1e-12)
    assert plan.iterations == 41
    assert plan.V.tolist() == [2 - 2.0**-40, 3.0, 0.0]
    assert plan.Q.tolist() == [[2 - 2.0**-40, 0.0], [3.0, 3.0], [0.0, 0.0]]  # Q from V_40
    assert plan.policy.tolist()[:2] == [0, 0]  # state 1's tie goes to the lowest action
    assert plan.start_value(model) == 0.25 * (2 - 2.0**-40) + 0.75 * 3.0  # weighted by the start
    assert value_iteration(model, gamma=0.5, tol=0.5).iterations == 2  # changes 1, then 1/2
    np.testing.assert_array_equal(policy_evaluation(model, np.array([0, 1, 0]), gamma=0.5), [2.0, 3.0, 0.0])
    np.testing.assert_array_equal(policy_evaluation(model, np.array([1, 1, 0]), gamma=0.5), [0.0, 3.0, 0.0])
    assert policy_start_value(model, np.array([0, 1, 0]), gamma=0.5) == 0.25 * 2.0 + 0.75 * 3.0
    assert policy_start_value(model, np.array([1, 0, 0]), gamma=0.5) == 0.75 * 3.0
    with pytest.raises(PlanningError, match="tol must be a number >= 0; got nan"):
        value_iteration(model, 0.5, tol=float("nan"))


def test_undiscounted_ending_greedy_keeps_to_optimal_actions():
    # gamma = 1: from state 0, ending at once (action 1) is the shortest way out but is worth 0;
    # moving to state 1 (action 0) is one step longer and worth 3: the policy must take it
    P = np.zeros((3, 2, 3))
    P[0, 0, 1] = P[0, 1, 2] = P[1, 0, 2] = P[1, 1, 2] = P[2, :, 2] = 1.0
    R = np.array([[0.0, 0.0], [3.0, 3.0], [0.0, 0.0]])
    model = TransitionModel(P=P, R=R, terminal=np.array([False, False, True]), initial=np.eye(3)[0])
    plan = value_iteration(model, gamma=1.0)
    assert plan.V.tolist() == [3.0, 3.0, 0.0]
    assert plan.policy.tolist()[:2] == [0, 0]
    assert plan.start_value(model) == 3.0


def test_value_iteration_gives_up_on_an_endless_payment_after_two_windows():
    # 3 states: a window of 10 * (3 + 1) = 40 sweeps; the change stays 0.5, so it stops at 80
    model = make_unwrapped("lab/GridWorld-v0", ascii_map=["S.G"], step_reward=0.5).transition_model()
    with pytest.raises(PlanningError, match=r"did not converge in 80 iterations \(last change 0\.5\)"):
        value_iteration(model, gamma=1.0)


def test_toy_text_model_starts_uniformly_by_default():
    table = {0: {0: [(1.0, 1, 2.0, True)]}, 1: {0: [(0.5, 1, 4.0, True), (0.5, 0, 0.0, False)]}}
    model = model_from_toy_text(table)
    assert model.initial.tolist() == [0.5, 0.5]
    assert model.R.tolist() == [[2.0], [2.0]]  # expected rewards
    assert model.terminal.tolist() == [False, True]
    assert model_from_toy_text(table, initial=np.array([1.0, 0.0])).initial.tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    ("ascii_map", "step_reward", "worth"),
    [(["S.G#", "...#", "###."], -1.0, "-inf"), (["S.G"], 0.5, "inf")],
    ids=["walled-off-cell", "paying-loop"],
)
def test_policy_iteration_undiscounted_without_a_finite_optimum_raises(ascii_map, step_reward, worth):
    # value iteration refuses both; policy iteration returned inf / nan values and start value
    model = make_unwrapped(
        "lab/GridWorld-v0", ascii_map=ascii_map, step_reward=step_reward
    ).transition_model()
    with pytest.raises(PlanningError, match="may not be finite"):
        value_iteration(model, gamma=1.0)
    with pytest.raises(
        PlanningError, match=rf"policy iteration met a policy worth {worth} from state \d+ .*gamma < 1"
    ):
        policy_iteration(model, gamma=1.0)
    plan = policy_iteration(model, gamma=0.9)
    assert np.isfinite(plan.V).all() and np.isfinite(plan.start_value(model))
