"""Evaluation episodes side by side in copies of the env give the figures of the same episodes run one
after another in a single env: returns, lengths, successes, the exact gap on a grid, and the replays
of the first episodes, in episode order."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from agents.ppo import PPO
from agents.tabular import QLearning
from lab.core.environments import make_env
from lab.evaluation import EVAL_COPIES, eval_copies, eval_seed, evaluate
from lab.replays import load_episode, verify_episode

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def same_figures(one, side_by_side) -> None:
    assert side_by_side.returns == one.returns
    assert side_by_side.lengths == one.lengths
    assert side_by_side.successes == one.successes
    assert (side_by_side.optimal_value, side_by_side.policy_value) == (one.optimal_value, one.policy_value)


@pytest.mark.parametrize("copies", [2, 5, 16])
def test_a_policy_gradient_agent_on_cartpole_scores_the_same_side_by_side(copies):
    agent = PPO(gym.make("CartPole-v1"), seed=0, n_steps=64, batch_size=64)
    # a little training: episodes of many lengths, and greedy choices by a margin (the logits differ by
    # 5e-4 or more in every state visited here) that a batched product's rounding cannot cross
    agent.learn(2_000)
    one = evaluate(agent, gym.make("CartPole-v1"), 12, seed=3, round_index=2)
    assert len(set(one.lengths)) > 3
    many = evaluate(agent, [gym.make("CartPole-v1") for _ in range(copies)], 12, seed=3, round_index=2)
    same_figures(one, many)


def test_a_tabular_agent_on_slippery_ice_has_the_same_successes_and_exact_gap():
    agent = QLearning(make_env("lab/IceLake-v0"), seed=1, gamma=0.99, initial_q=1.0)
    agent.learn(30_000)
    one = evaluate(agent, make_env("lab/IceLake-v0"), 30, seed=0)
    assert 0 < sum(one.successes) < 30  # slippery: some episodes reach the goal, some do not
    many = evaluate(agent, eval_copies(lambda: make_env("lab/IceLake-v0"), 30), 30, seed=0)
    same_figures(one, many)
    assert many.gap is not None and many.gap == one.gap


def test_a_masked_text_agent_acts_among_the_allowed_tokens_side_by_side():
    def make():
        return make_env("lab/TextPositive-v0")

    agent = PPO(make(), seed=0, use_masking=True, n_steps=32, batch_size=32)
    agent.learn(320)  # greedy choices by a margin no rounding can cross (logits of an untrained net tie)
    one = evaluate(agent, make(), 10, seed=4)
    many = evaluate(agent, eval_copies(make, 10), 10, seed=4)
    same_figures(one, many)
    assert many.successes is not None  # the text env reports info["success"]


def test_the_first_episodes_are_recorded_in_episode_order_and_verify(tmp_path):
    agent = PPO(gym.make("CartPole-v1"), seed=0, n_steps=64, batch_size=64)
    agent.learn(1_000)
    copies = eval_copies(lambda: gym.make("CartPole-v1"), 3)  # fewer than the episodes recorded
    result = evaluate(agent, copies, 9, seed=5, round_index=1, record=4, record_dir=tmp_path, source="eval")
    assert len(result.replays) == 4 and len(list(tmp_path.iterdir())) == 4
    episodes = [load_episode(path, frames=False) for path in result.replays]
    assert [e.seed for e in episodes] == [eval_seed(5, 1, k) for k in range(4)]
    assert [e.length for e in episodes] == result.lengths[:4]
    for episode in episodes:
        assert verify_episode(episode).ok


def test_eval_copies_makes_as_many_as_there_are_episodes_up_to_the_cap():
    made = []

    def make():
        made.append(gym.make("CartPole-v1"))
        return made[-1]

    first = gym.make("CartPole-v1")
    assert eval_copies(make, 3, first=first) == [first, *made] and len(made) == 2
    made.clear()
    assert len(eval_copies(make, 1000)) == EVAL_COPIES == len(made)
    made.clear()
    assert len(eval_copies(make, 0)) == 1  # at least one env


def test_fewer_episodes_than_copies_use_only_the_first_copies():
    agent = PPO(gym.make("CartPole-v1"), seed=0, n_steps=64, batch_size=64)
    agent.learn(1_000)
    copies = [gym.make("CartPole-v1") for _ in range(6)]
    result = evaluate(agent, copies, 2, seed=0)
    assert len(result.returns) == 2
    untouched = copies[2:]
    for env in untouched:  # never reset: stepping one would fail gymnasium's order check
        with pytest.raises(gym.error.ResetNeeded):
            env.step(0)
    np.testing.assert_array_equal(result.returns, evaluate(agent, gym.make("CartPole-v1"), 2).returns)


def test_on_episode_is_called_once_as_each_episode_ends():
    agent = PPO(gym.make("CartPole-v1"), seed=0, n_steps=64, batch_size=64)
    calls = []
    result = evaluate(
        agent, [gym.make("CartPole-v1") for _ in range(3)], 7, on_episode=lambda: calls.append(1)
    )
    assert len(calls) == 7 == len(result.returns)


def test_exact_figures_are_left_out_where_there_are_none_or_they_would_cost_gigabytes():
    from lab.evaluation import MAX_EXACT_BYTES, exact_values

    paying = make_env("lab/GridWorld-v0", {"ascii_map": ["S.G"], "step_reward": 0.5})
    agent = QLearning(paying, seed=0, gamma=1.0)
    assert exact_values(agent, paying.unwrapped, 1.0) == (None, None)  # bumping a wall pays forever
    assert exact_values(agent, paying.unwrapped, 0.9)[0] is not None
    big = make_env("lab/Maze-v0", {"size": 81}, max_episode_steps=5)
    assert big.unwrapped.model.n_states**2 * 4 * 8 > MAX_EXACT_BYTES
    assert exact_values(QLearning(big, seed=0), big.unwrapped, 0.99) == (None, None)
    # lab eval says why the figures are missing
    summary = evaluate(QLearning(big, seed=0), big, 1).summary()
    assert summary.endswith("no exact values: 3,199 states are past the planner's dense model")
    summary = evaluate(QLearning(paying, seed=0, gamma=1.0), paying, 1).summary()
    assert summary.endswith("no exact values: undiscounted, a return here is not finite")


def test_undiscounted_exact_figures_of_a_world_whose_steps_cost_nothing():
    from lab.evaluation import exact_values

    env = make_env("lab/FourRooms-v0")
    agent = QLearning(env, seed=0, gamma=1.0)  # untrained: its greedy policy bumps the first wall
    optimal, achieved = exact_values(agent, env.unwrapped, 1.0)
    assert optimal == 1.0 and achieved == 0.0  # a loop that costs nothing is worth nothing, not -inf


class _ScriptedGridAgent:
    """A greedy policy given as a table over a grid world's states (index observations)."""

    def __init__(self, actions, gamma):
        self.actions, self.gamma = np.asarray(actions), gamma

    def predict(self, obs, deterministic=True):
        assert deterministic
        return self.actions[np.asarray(obs, dtype=np.int64)], None


def test_figures_of_a_scripted_policy_on_a_grid_are_exact():
    from envs import LEFT, RIGHT, GridWorld

    # two starts: from column 2 the policy walks into the pit, from column 5 onto the goal
    def make():
        return GridWorld(["H.S..S.G"], step_reward=-0.1)

    grid = make()
    col = grid.model.state_col
    agent = _ScriptedGridAgent(np.where(col <= 2, LEFT, RIGHT), gamma=0.9)
    episodes = 12
    expected = []
    for k in range(episodes):  # each episode's start, read from a reset with its own seed
        _, info = make().reset(seed=eval_seed(4, 2, k))
        expected.append(0.9 if col[info["state"]] == 5 else -1.1)
    assert 0 < expected.count(0.9) < episodes
    for env in (make(), eval_copies(make, episodes)):
        result = evaluate(agent, env, episodes, seed=4, round_index=2)
        assert result.returns == expected and result.lengths == [2] * episodes
        assert result.successes == [r == 0.9 for r in expected]  # a pit ends the episode, no success
        assert result.mean_return == pytest.approx(np.mean(expected))
        assert result.std_return == pytest.approx(np.std(expected))  # over the episodes run (ddof 0)
        assert result.success_rate == expected.count(0.9) / episodes
        # starts 1/2 each: the optimum walks right, 4 steps from column 2 (-0.1 * (1 - 0.9**4) / 0.1
        # + 0.9**4 = 0.3122) and 2 from column 5 (0.8); this policy is worth (-1.0 + 0.8) / 2
        assert result.optimal_value == pytest.approx((0.3122 + 0.8) / 2)
        assert result.policy_value == pytest.approx(-0.1)
        assert result.gap == pytest.approx(0.6561)
        assert result.relative_gap == pytest.approx(0.6561 / 0.5561)
        assert "greedy value -0.1 vs optimal 0.5561 (gap 0.656, 117.98%)" in result.summary()


def test_evaluation_seeds_differ_across_episodes_and_rounds():
    seeds = {eval_seed(0, r, k) for r in range(4) for k in range(50)}
    assert len(seeds) == 200
    assert eval_seed(0, 0, 0) != eval_seed(1, 0, 0)


def test_the_exact_gap_reads_the_greedy_policy_through_the_agents_own_observations():
    from envs import LEFT, RIGHT, GridWorld
    from lab.evaluation import exact_values

    class CoordsAgent:  # sees [row, col]: a state number read as coordinates would be wrong
        gamma = 0.9

        def predict(self, obs, deterministic=True):
            cols = np.asarray(obs, dtype=np.float32)[..., 1]
            return np.where(cols <= 2, LEFT, RIGHT), None

    grid = GridWorld(["H.S..S.G"], step_reward=-0.1, obs_type="coords")
    optimal, achieved = exact_values(CoordsAgent(), grid, 0.9)
    assert optimal == pytest.approx((0.3122 + 0.8) / 2) and achieved == pytest.approx(-0.1)
