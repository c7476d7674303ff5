"""REINFORCE, A2C and PPO: advantages, distributions and normalisers exactly; checkpoints; bad input."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.envs.classic_control import CartPoleEnv
from sb3_oracle import FixedBuffer, sb3_twin
from scripted_envs import TwoStepEpisodes

import envs  # noqa: F401  (registers the lab/ ids)
from agents import AGENTS, AgentError, load_agent
from agents.common.policies import FEW_ACTIONS, ActorCritic, RunningMeanStd
from agents.common.rollout import Rollout, gae
from agents.common.vector import make_vector_env

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def rollout(rewards, values, last, terminated, truncated, valid=None):
    rewards = np.array(rewards, np.float32)[:, None]
    shape = rewards.shape
    term = np.array(terminated, np.float32)[:, None]
    done = np.maximum(term, np.array(truncated, np.float32)[:, None])
    return Rollout(
        obs=np.zeros(shape), actions=np.zeros(shape), log_probs=np.zeros(shape),
        values=np.array(values, np.float32)[:, None], rewards=rewards, terminated=term, done=done,
        valid=np.ones(shape, bool) if valid is None else np.array(valid)[:, None],
        last_values=np.array([last], np.float32),
    )  # fmt: skip


def test_gae_by_hand_with_a_termination():
    g, lam = 0.9, 0.5
    r = rollout([1, 2, 3], [0.5, 1.0, 1.5], last=4.0, terminated=[0, 0, 1], truncated=[0, 0, 0])
    adv, ret = gae(r, g, lam)
    d2 = 3 - 1.5  # terminated: no bootstrap
    d1 = 2 + g * 1.5 - 1.0
    d0 = 1 + g * 1.0 - 0.5
    a2, a1 = d2, d1 + g * lam * d2
    expected = [d0 + g * lam * a1, a1, a2]
    np.testing.assert_allclose(adv[:, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(ret[:, 0], np.add(expected, [0.5, 1.0, 1.5]), rtol=1e-6)


def test_gae_bootstraps_a_time_limit_but_does_not_carry_across_it():
    # step 1 is truncated: its target bootstraps from V(final obs), which the next-step autoreset
    # stores as step 2's value (step 2 itself is the reset transition, invalid)
    r = rollout(
        [1, 1, 0, 1], [2.0, 3.0, 7.0, 5.0], last=6.0,
        terminated=[0, 0, 0, 0], truncated=[0, 1, 0, 0], valid=[True, True, False, True],
    )  # fmt: skip
    adv, _ = gae(r, 0.5, 1.0)
    assert adv[1, 0] == pytest.approx(1 + 0.5 * 7.0 - 3.0)  # the final observation's value
    assert adv[0, 0] == pytest.approx((1 + 0.5 * 3.0 - 2.0) + 0.5 * adv[1, 0])
    assert adv[3, 0] == pytest.approx(1 + 0.5 * 6.0 - 5.0)  # the last step bootstraps from last_values


def test_monte_carlo_returns_end_at_every_episode_end():
    r = rollout([1, 1, 1, 1], [9, 9, 9, 9], last=9.0, terminated=[0, 1, 0, 0], truncated=[0, 0, 0, 1])
    returns, _ = gae(r, 0.5, 1.0, bootstrap=False)
    np.testing.assert_allclose(returns[:, 0], [1.5, 1.0, 1.5, 1.0])


def first_rollout(algorithm, **hp):
    """The first rollout ``algorithm`` collects on :class:`TwoStepEpisodes` (untrained on) and the agent."""
    agent = AGENTS[algorithm](TwoStepEpisodes(), seed=0, gamma=0.5, n_steps=6, **hp)
    rollouts = []
    agent._update = rollouts.append
    agent.learn(4)
    return rollouts[0], agent


@pytest.mark.parametrize("algorithm", ["ppo", "a2c"])
def test_collection_records_a_time_limit_as_an_end_with_a_bootstrap_and_a_termination_without(algorithm):
    """Rows: ep 0 steps 1-2 (truncated), its reset row, ep 1 steps 1-2 (terminated), its reset row.
    A reset row is no transition, and its value is V(the final observation), which the truncated step
    bootstraps from; the rollout's last value is V(the observation it stops at)."""
    r, agent = first_rollout(algorithm)
    assert agent.num_timesteps == 4
    np.testing.assert_array_equal(r.obs[:, 0, 0], [0, 1, 2, 10, 11, 12])
    np.testing.assert_array_equal(r.valid[:, 0], [True, True, False, True, True, False])
    np.testing.assert_array_equal(r.rewards[:, 0], [1, 1, 0, 1, 1, 0])
    np.testing.assert_array_equal(r.done[:, 0], [0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(r.terminated[:, 0], [0, 0, 0, 0, 1, 0])

    def v(x):
        return agent.value(np.array([x], np.float32))

    np.testing.assert_allclose(r.values[:, 0], [v(x) for x in (0, 1, 2, 10, 11, 12)], rtol=1e-5, atol=1e-6)
    assert r.last_values[0] == pytest.approx(v(20), rel=1e-5, abs=1e-6)  # episode 2's first observation
    g, lam = 0.5, 0.8
    adv, _ = gae(r, g, lam)
    a1 = 1 + g * v(2) - v(1)  # truncated: bootstraps from the final observation
    a4 = 1 - v(11)  # terminated: no bootstrap
    expected = [1 + g * v(1) - v(0) + g * lam * a1, a1, 1 + g * v(11) - v(10) + g * lam * a4, a4]
    np.testing.assert_allclose(adv[[0, 1, 3, 4], 0], expected, rtol=1e-5, atol=1e-6)


def test_reward_normalisation_divides_by_the_spread_of_discounted_returns_and_clips_at_10():
    """As SB3's VecNormalize: each reward over the standard deviation of the discounted returns seen
    so far (running statistics starting from mean 0, variance 1 with weight 1e-4), clipped to
    [-10, 10]; an episode's end starts the return again and reset rows add nothing."""
    r, _ = first_rollout("ppo", normalize_reward=True)
    seen, expected = [], []
    for ret in (1.0, 1.5, 1.0, 1.5):  # the discounted returns (gamma 0.5) at the four real steps
        seen.append(ret)
        x, c = np.array(seen), 1e-4
        mean = x.sum() / (len(x) + c)
        var = (c * (1.0 + mean**2) + ((x - mean) ** 2).sum()) / (len(x) + c)
        expected.append(min(1.0 / np.sqrt(var + 1e-8), 10.0))
    assert expected[0] == 10.0 and expected[1] < 10.0  # the clip bites at first only
    np.testing.assert_allclose(r.rewards[[0, 1, 3, 4], 0], expected, rtol=1e-5)
    np.testing.assert_array_equal(r.rewards[[2, 5], 0], [0, 0])


def test_observation_statistics_leave_out_the_final_observations_that_reset_rows_carry():
    """A reset row's observation is the ended episode's last one, already past: the running statistics
    count the observations acted on (0, 1, 10, 11), as VecNormalize counts those its step returns."""
    _, agent = first_rollout("ppo", normalize_observations=True)
    seen, c = np.array([0.0, 1.0, 10.0, 11.0]), 1e-4
    mean = seen.sum() / (len(seen) + c)
    assert agent.obs_rms.mean[0] == pytest.approx(mean, rel=1e-9)
    assert agent.obs_rms.var[0] == pytest.approx((c * (1 + mean**2) + ((seen - mean) ** 2).sum()) / (4 + c))


@pytest.mark.parametrize("state_dependent_std", [False, True])
def test_gaussian_log_probabilities_and_entropy_match_torch(state_dependent_std):
    net = ActorCritic(
        spaces.Box(-1, 1, (3,)),
        spaces.Box(-2, 2, (2,)),
        state_dependent_std=state_dependent_std,
        log_std_init=-0.5,
    )
    obs, actions = torch.randn(5, 3), torch.randn(5, 2)
    mean, log_std, _ = net(obs)
    log_prob, entropy = net.log_prob_entropy(mean, log_std, actions)
    normal = torch.distributions.Normal(mean, log_std.exp())
    torch.testing.assert_close(log_prob, normal.log_prob(actions).sum(-1))
    torch.testing.assert_close(entropy, normal.entropy().sum(-1))


def test_categorical_log_probabilities_and_sampling_frequencies():
    net = ActorCritic(spaces.Box(-1, 1, (3,)), spaces.Discrete(4))
    obs = torch.randn(1, 3)
    logits, _, _ = net(obs)
    dist = torch.distributions.Categorical(logits=logits)
    actions = torch.arange(4)
    log_prob, entropy = net.log_prob_entropy(logits.expand(4, -1), torch.zeros(4, 0), actions)
    torch.testing.assert_close(log_prob, dist.log_prob(actions))
    torch.testing.assert_close(entropy[0], dist.entropy()[0])
    with torch.no_grad():
        net.action_head.weight.zero_()
        net.action_head.bias.copy_(torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4])))
    sampled, _, _ = net.sample(obs.expand(20_000, -1), torch.Generator().manual_seed(0))
    frequencies = np.bincount(sampled.numpy(), minlength=4) / 20_000
    np.testing.assert_allclose(frequencies, [0.1, 0.2, 0.3, 0.4], atol=0.01)


@pytest.mark.parametrize("n_actions", [2, FEW_ACTIONS - 1, FEW_ACTIONS, 40])
def test_categorical_log_probabilities_entropy_and_gradients_match_torch_on_either_layout(n_actions):
    # below FEW_ACTIONS the log-softmax runs over the batch dimension of the transposed logits
    net = ActorCritic(spaces.Box(-1, 1, (3,)), spaces.Discrete(n_actions))
    logits = (3 * torch.randn(300, n_actions)).requires_grad_()
    actions = torch.randint(0, n_actions, (300,))
    log_prob, entropy = net.log_prob_entropy(logits, logits[:, :0], actions)
    (grad,) = torch.autograd.grad(log_prob.sum() + 0.1 * entropy.sum(), logits)
    dist = torch.distributions.Categorical(logits=logits)
    expected_log_prob, expected_entropy = dist.log_prob(actions), dist.entropy()
    (expected_grad,) = torch.autograd.grad(expected_log_prob.sum() + 0.1 * expected_entropy.sum(), logits)
    assert log_prob.shape == entropy.shape == (300,)
    torch.testing.assert_close(log_prob, expected_log_prob)
    torch.testing.assert_close(entropy, expected_entropy)
    torch.testing.assert_close(grad, expected_grad)


def test_squashed_gaussian_density_integrates_the_change_of_variables():
    net = ActorCritic(spaces.Box(-1, 1, (1,)), spaces.Box(-1, 1, (1,)), squash_output=True)
    mean, log_std = torch.tensor([[0.3]]), torch.tensor([[-0.2]])
    u = torch.linspace(-6, 6, 20_001).view(-1, 1)
    log_prob, _ = net.log_prob_entropy(mean.expand_as(u), log_std.expand_as(u), u)
    a = torch.tanh(u).squeeze(1)
    # the density of a = tanh(u) over (-1, 1) integrates to 1
    assert torch.trapezoid(log_prob.exp(), a).item() == pytest.approx(1.0, abs=1e-3)
    env_actions = net.to_env(torch.tensor([[-50.0], [0.0], [50.0]]))
    np.testing.assert_allclose(env_actions[:, 0], [-1.0, 0.0, 1.0], atol=1e-6)


def test_running_mean_std_matches_numpy_over_batches():
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(1000, 2))
    rms = RunningMeanStd((2,))
    for chunk in np.array_split(data, 7):
        rms.update(chunk)
    np.testing.assert_allclose(rms.mean, data.mean(0), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(rms.var, data.var(0), rtol=1e-4)


def test_grid_worlds_collect_from_their_batched_vector_env():
    from envs.grid.vector import GridVectorEnv

    vec = make_vector_env(gym.make("lab/Maze-v0", obs_type="onehot", max_episode_steps=7), 4)
    assert isinstance(vec.unwrapped, GridVectorEnv) and vec.num_envs == 4
    vec.reset(seed=0)
    for _ in range(6):
        vec.step(np.zeros(4, dtype=np.int64))
    _, _, _, truncated, _ = vec.step(np.zeros(4, dtype=np.int64))
    assert truncated.all()  # the time limit travels with the copies


@pytest.mark.parametrize("algorithm", ["ppo", "a2c", "reinforce"])
def test_save_load_round_trips_exactly(algorithm, tmp_path):
    env = gym.make("Pendulum-v1")
    sizes = {"ppo": {"n_steps": 64, "batch_size": 32}, "a2c": {}, "reinforce": {"n_episodes": 2}}[algorithm]
    agent = AGENTS[algorithm](
        env, seed=3, n_envs=2, normalize_observations=True, normalize_reward=True, **sizes
    )
    agent.learn(600)
    path = agent.save(tmp_path / "model")
    loaded = load_agent(path)
    obs = np.random.default_rng(1).uniform(-1, 1, size=(16, 3)).astype(np.float32)
    np.testing.assert_array_equal(agent.predict(obs)[0], loaded.predict(obs)[0])
    np.testing.assert_array_equal(agent.obs_rms.mean, loaded.obs_rms.mean)
    assert loaded.value(obs[0]) == agent.value(obs[0])
    for a, b in zip(
        agent.optimizer.state_dict()["state"].values(),
        loaded.optimizer.state_dict()["state"].values(),
        strict=True,
    ):
        for key in a:
            torch.testing.assert_close(torch.as_tensor(a[key]), torch.as_tensor(b[key]))


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_greedy_predict_in_numpy_gives_torchs_actions_and_draws_no_random_numbers(env_id, monkeypatch):
    agent = AGENTS["ppo"](
        gym.make(env_id), seed=0, n_envs=2, n_steps=64, batch_size=64, normalize_observations=True
    )
    agent.learn(256)  # obs_rms away from its start, so that normalising matters
    assert agent._numpy_act is not None  # the path under test: a plain MLP policy
    low, high = agent.env.observation_space.low.clip(-3, 3), agent.env.observation_space.high.clip(-3, 3)
    obs = np.random.default_rng(1).uniform(low, high, size=(32, len(low))).astype(np.float32)
    if env_id == "Pendulum-v1":  # means spread past both bounds, where the env's action is clipped
        with torch.no_grad():
            agent.policy.action_head.weight.mul_(300.0)
    with torch.inference_mode():
        raw, _, _ = agent.policy.sample(agent._prepare(obs), agent._generator, deterministic=True)
    expected = agent.policy.to_env(raw)
    if env_id == "Pendulum-v1":
        assert (expected == 2).any() and (expected == -2).any() and (abs(expected) < 2).any()
    monkeypatch.setattr(agent.policy, "sample", None)  # predict must not take torch's path
    rng_state, generator_state = agent._np_rng.bit_generator.state, agent._generator.get_state()
    batch, _ = agent.predict(obs)
    single = [agent.predict(row)[0] for row in obs]
    # Box: numpy's and torch's float32 products round the mean differently (sums of terms up to ~20)
    np.testing.assert_allclose(batch, expected, atol=1e-4)
    np.testing.assert_allclose(np.array(single), expected, atol=1e-4)
    assert isinstance(single[0], int) if env_id == "CartPole-v1" else single[0].shape == (1,)
    assert agent._np_rng.bit_generator.state == rng_state
    assert torch.equal(agent._generator.get_state(), generator_state)


def test_a_model_for_other_actions_is_a_clear_error(tmp_path):
    path = AGENTS["ppo"](gym.make("CartPole-v1"), seed=0, n_steps=16, batch_size=16).save(tmp_path / "m")
    with pytest.raises(AgentError, match=r"trained on Discrete\(2\) actions; this env has Discrete\(3\)"):
        load_agent(path, env=_three_action_cartpole())


def _three_action_cartpole():
    """CartPole's observations with three actions: only the action space differs."""

    class ThreeActions(gym.ActionWrapper):
        def __init__(self, env):
            super().__init__(env)
            self.action_space = spaces.Discrete(3)

        def action(self, action):
            return min(int(action), 1)

    return ThreeActions(gym.make("CartPole-v1"))


class Broken(gym.Env):
    """A 1-D env whose observation turns NaN at its 5th step (or reward inf, with ``bad="reward"``)."""

    observation_space = spaces.Box(-10, 10, (1,), np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, bad="obs"):
        self.bad, self.t = bad, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        broken = self.t == 5
        obs = np.array([np.nan if broken and self.bad == "obs" else 0.0], np.float32)
        reward = float("inf") if broken and self.bad == "reward" else 1.0
        return obs, reward, False, self.t >= 20, {}


@pytest.mark.parametrize(("bad", "what"), [("obs", "observation"), ("reward", "reward")])
def test_non_finite_observations_or_rewards_name_the_step(bad, what):
    gym.register("lab-test/Broken-v0", entry_point=lambda: Broken(bad), disable_env_checker=True)
    try:
        agent = AGENTS["ppo"](gym.make("lab-test/Broken-v0"), seed=0, n_steps=16, batch_size=16)
        with pytest.raises(AgentError, match=rf"non-finite {what} at step 5 \(env copy 0, episode step 5\)"):
            agent.learn(100)
    finally:
        del gym.registry["lab-test/Broken-v0"]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf - inf in GAE
def test_a_non_finite_loss_names_the_step_and_keeps_the_weights():
    agent = AGENTS["ppo"](gym.make("CartPole-v1"), seed=0, n_steps=16, batch_size=16)
    with torch.no_grad():
        agent.policy.value_head.bias.fill_(float("inf"))
    before = [p.detach().clone() for p in agent.policy.parameters()]
    with pytest.raises(AgentError, match=r"non-finite loss \(\w+\) at step 16: lower learning_rate"):
        agent.learn(16)
    assert all(torch.equal(a, b) for a, b in zip(before, agent.policy.parameters(), strict=True))


def test_a_non_finite_gradient_of_a_finite_loss_stops_before_the_step():
    agent = AGENTS["ppo"](gym.make("CartPole-v1"), seed=0, n_steps=16, batch_size=16)
    agent.policy.value_head.weight.register_hook(lambda grad: grad * float("inf"))
    before = [p.detach().clone() for p in agent.policy.parameters()]
    with pytest.raises(AgentError, match=r"non-finite gradient norm \(inf\) at step 16: lower learning_rate"):
        agent.learn(16)
    assert all(torch.equal(a, b) for a, b in zip(before, agent.policy.parameters(), strict=True))
    assert not agent.optimizer.state  # Adam never stepped


class InfReward(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """A reward of inf at the wrapped env's 7th step (recreatable, as gymnasium's own wrappers are)."""

    def __init__(self, env, at=7):
        gym.utils.RecordConstructorArgs.__init__(self, at=at)
        super().__init__(env)
        self.at, self.t = at, 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.t += 1
        return obs, float("inf") if self.t == self.at else reward, terminated, truncated, info


def test_a_wrapped_env_with_a_batched_implementation_is_copied_with_its_wrapper():
    """CartPole has gymnasium's batched CartPoleVectorEnv, which cannot carry a user's wrapper: the
    copies are then made one by one, wrapper included (here it is what breaks the reward)."""
    agent = AGENTS["ppo"](InfReward(gym.make("CartPole-v1")), seed=0, n_steps=16, batch_size=16, n_envs=2)
    with pytest.raises(AgentError, match=r"non-finite reward at step \d+ \(env copy 0, episode step 7\)"):
        agent.learn(200)


def test_bad_hyperparameters_and_spaces():
    with pytest.raises(AgentError, match="PPO needs a Discrete or 1-D Box action space"):
        AGENTS["ppo"](_multi_discrete())
    with pytest.raises(AgentError, match="clip_range must be a positive number or 'lin_<number>'"):
        AGENTS["ppo"](gym.make("CartPole-v1"), clip_range="fast")
    with pytest.raises(AgentError, match="policy_kwargs has no 'net_arc'"):
        AGENTS["a2c"](gym.make("CartPole-v1"), policy_kwargs={"net_arc": [8]})
    with pytest.raises(AgentError, match="activation_fn must be one of"):
        AGENTS["a2c"](gym.make("CartPole-v1"), policy_kwargs={"activation_fn": "swish"})
    with pytest.raises(AgentError, match="normalize_observations needs Box observations"):
        AGENTS["ppo"](gym.make("lab/Maze-v0"), normalize_observations=True)
    with pytest.raises(AgentError, match="Reinforce has no hyperparameter 'n_steps'"):
        AGENTS["reinforce"](gym.make("CartPole-v1"), n_steps=5)
    with pytest.raises(AgentError, match=r"n_steps must be a whole number >= 1; got 32\.5"):
        AGENTS["ppo"](gym.make("CartPole-v1"), n_steps=32.5)
    ppo = AGENTS["ppo"](gym.make("CartPole-v1"), n_steps=2.048e3, batch_size=6.4e1, n_epochs=1e1)
    assert [ppo.hyperparameters[k] for k in ("n_steps", "batch_size", "n_epochs")] == [2048, 64, 10]


def _multi_discrete():
    class Multi(gym.ActionWrapper):
        def __init__(self, env):
            super().__init__(env)
            self.action_space = spaces.MultiDiscrete([2, 2])

        def action(self, action):
            return int(action[0])

    return Multi(gym.make("CartPole-v1"))


def test_importing_agents_stays_torch_free():
    import subprocess
    import sys

    code = "import sys, agents; assert 'ppo' in agents.AGENTS; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lab_runs_torch_on_one_thread_unless_told(tmp_path):
    """Two threads on a busy 2-core machine were measured 10-100x slower for these small networks."""
    import os
    import subprocess
    import sys

    script = tmp_path / "run.py"
    script.write_text(
        "import sys, torch\n"
        "from lab.cli import main\n"
        "threads = sys.argv[1:]\n"
        "code = main(['train', '--env', 'CartPole-v1', '--agent', 'ppo', '--steps', '64', '--no-progress',\n"
        "      '--set', 'hyperparameters.n_steps=64', '--set', 'hyperparameters.batch_size=64',\n"
        "      '--set', 'eval_episodes=1', '--runs-dir', sys.argv[0] + '.runs',\n"
        "      '--name', 'run' + ''.join(threads)]\n"
        "     + (['--set', f'threads={threads[0]}'] if threads else []))\n"
        "assert code == 0, code\n"
        "print(torch.get_num_threads())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    for args, expected in (([], "1"), (["2"], "2")):
        out = subprocess.run(
            [sys.executable, str(script), *args], env=env, capture_output=True, text=True, check=True
        )
        assert out.stdout.strip().splitlines()[-1] == expected


# ----- stable-baselines3 as the oracle: one update on the same weights and the same rollout -----


def collected(agent, perturb=0.0):
    """One rollout of ``agent``; ``perturb`` shifts the stored log-probabilities and values so that the
    ratio and value clips bite from the first mini-batch on."""
    from agents.common.vector import VectorSteps

    agent._steps = VectorSteps(agent, make_vector_env(agent.env, agent.hyperparameters["n_envs"]))
    rollout = agent._collect(None)
    rng = np.random.default_rng(0)
    rollout.log_probs = (rollout.log_probs + perturb * rng.standard_normal(rollout.log_probs.shape)).astype(
        np.float32
    )
    rollout.values = (rollout.values + perturb * rng.standard_normal(rollout.values.shape)).astype(np.float32)
    return rollout


PPO_CASES = {
    "categorical": ("CartPole-v1", {"n_epochs": 3, "batch_size": 48}),
    "gaussian": ("Pendulum-v1", {"n_epochs": 2, "batch_size": 64, "ent_coef": 0.01}),
    "value clipping": ("CartPole-v1", {"n_epochs": 2, "batch_size": 32, "clip_range_vf": 0.05}),
    "target kl, unshifted": (
        "CartPole-v1",
        {"n_epochs": 10, "batch_size": 64, "target_kl": 6.7e-4, "learning_rate": 3e-3},
    ),
    "gaussian, value clipping, one mini-batch": (
        "Pendulum-v1",
        {"n_epochs": 3, "batch_size": 256, "clip_range_vf": 0.1, "normalize_advantage": False},
    ),
}


@pytest.mark.parametrize("case", list(PPO_CASES))
def test_a_ppo_update_is_stable_baselines3s(case):
    """The same weights and rollout (4 envs x 32 steps, log-probabilities and values shifted so the
    clips bite, except where the KL must grow from 0 to stop early) through our update and SB3's
    ``PPO.train``: the same last loss (on an early stop, the mini-batch's that stopped), clip
    fractions, final gradients (clipped), weights and Adam step counts, up to float rounding."""
    env_id, options = PPO_CASES[case]
    hp = {"n_steps": 32, "gae_lambda": 0.9, "learning_rate": 1e-3, "clip_range": 0.2, "vf_coef": 0.7}
    hp.update(options)
    agent = AGENTS["ppo"](gym.make(env_id), seed=1, gamma=0.97, n_envs=4, **hp)
    model, named = sb3_twin(agent, **hp)
    rollout = collected(agent, perturb=0.0 if "unshifted" in case else 0.3)
    model.rollout_buffer = FixedBuffer(agent, rollout, agent._generator.get_state(), agent.policy.discrete)
    losses, steps, loss_of, step = [], [], agent._loss, agent._step
    agent._loss = lambda *args: (out := loss_of(*args), losses.append(float(out[0].detach())))[0]
    agent._step = lambda loss: (steps.append(1), step(loss))[1]
    agent._update(rollout)
    model.train()
    logged = model.logger.name_to_value
    figures = agent.training_figures()
    assert len(losses) > 1
    assert logged["train/loss"] == pytest.approx(losses[-1], rel=1e-5, abs=1e-6)
    assert figures["train/loss"] == pytest.approx(np.mean(losses), rel=1e-5, abs=1e-6)
    # every figure SB3 logs, as SB3 computes it (approx_kl: the last epoch's mini-batches)
    for key in (
        "train/clip_fraction", "train/approx_kl", "train/policy_gradient_loss", "train/value_loss",
        "train/entropy_loss", "train/explained_variance", "train/clip_range", "train/learning_rate",
        "train/n_updates", *(["train/std"] if not agent.policy.discrete else []),
    ):  # fmt: skip
        assert figures[key] == pytest.approx(logged[key], rel=1e-4, abs=1e-6), key
    assert figures["train/grad_norm"] > 0
    if "unshifted" in case:
        assert figures["train/early_stop"] == 1.0 and len(losses) == len(steps) + 1 < 10 * 2
    else:
        assert 0.0 < figures["train/clip_fraction"] < 1.0
    for ours, theirs in named:
        for name in ("weight", "bias") if ours is not agent.policy else ("log_std",):
            a, b = getattr(ours, name), getattr(theirs, name)
            assert not torch.equal(a.detach(), torch.zeros_like(a))
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-4, atol=1e-6)
    state, sb3_state = agent.optimizer.state_dict()["state"], model.policy.optimizer.state_dict()["state"]
    assert {float(s["step"]) for s in state.values()} == {float(s["step"]) for s in sb3_state.values()}


def test_a_loaded_ppo_continues_with_its_adam_state(tmp_path):
    agent = AGENTS["ppo"](gym.make("CartPole-v1"), seed=0, n_steps=32, batch_size=32, n_epochs=2)
    agent.learn(64)
    loaded = load_agent(agent.save(tmp_path / "ppo"))
    for p, q in zip(agent.policy.parameters(), loaded.policy.parameters(), strict=True):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(agent.optimizer.state[p][key], loaded.optimizer.state[q][key])
    before = [p.detach().clone() for p in loaded.policy.parameters()]
    loaded.learn(128, reset_num_timesteps=False)
    assert all(not torch.equal(a, b) for a, b in zip(before, loaded.policy.parameters(), strict=True))


@pytest.mark.parametrize(
    ("env_id", "kwargs", "policy_kwargs"),
    [
        ("CartPole-v1", {}, {"shared_trunk": True}),
        ("lab/Maze-v0", {"obs_type": "symbolic"}, {}),
        ("Pendulum-v1", {}, {"squash_output": True}),
        ("Pendulum-v1", {}, {"state_dependent_std": True}),
    ],
)
def test_every_policy_trains_through_the_same_update(env_id, kwargs, policy_kwargs):
    agent = AGENTS["ppo"](gym.make(env_id, **kwargs), seed=0, n_steps=16, batch_size=32, n_envs=2,
                          policy_kwargs=policy_kwargs)  # fmt: skip
    before = [p.detach().clone() for p in agent.policy.parameters() if p.requires_grad]
    agent.learn(64)
    after = [p for p in agent.policy.parameters() if p.requires_grad]
    assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    figures = agent.training_figures()
    # n_updates counts epochs, as SB3's: 10 per rollout (of 32 steps, the reset steps not counted)
    assert figures["train/approx_kl"] > 0 and figures["train/n_updates"] in (20, 30)


def test_seeding_is_gone_with_a_one_line_error():
    with pytest.raises(AgentError, match=r"^PPO's seeding='sb3' was removed in rl-lab 0.2.0"):
        AGENTS["ppo"](gym.make("CartPole-v1"), seeding="sb3")


# ----- what SB3 and gymnasium users hand an agent: an env, an env id, a VectorEnv -----


@pytest.mark.parametrize("algorithm", ["ppo", "a2c"])
def test_an_env_id_or_a_vector_env_is_accepted(algorithm, tmp_path):
    by_id = AGENTS[algorithm]("CartPole-v1", seed=0, n_steps=8)
    assert by_id.env.spec.id == "CartPole-v1" and by_id.hyperparameters["n_envs"] == 1
    vec = gym.make_vec("CartPole-v1", 4)
    agent = AGENTS[algorithm](vec, seed=0, n_steps=8).learn(64)
    assert agent.hyperparameters["n_envs"] == 4 and agent._steps.vec is vec
    assert agent.num_timesteps >= 64 and agent.predict(np.zeros(4, np.float32))[0] in (0, 1)
    loaded = load_agent(agent.save(tmp_path / "vec"))  # the env id was saved: a single env comes back
    assert loaded.env.spec.id == "CartPole-v1" and loaded.hyperparameters["n_envs"] == 4
    with pytest.raises(AgentError, match="the VectorEnv given has 4 copies; n_envs is 2"):
        AGENTS[algorithm](vec, n_envs=2)


@pytest.mark.parametrize("algorithm", ["ppo", "dqn", "q_learning"])
def test_what_is_not_an_env_is_refused_in_one_line(algorithm, tmp_path):
    cls = AGENTS[algorithm]
    path = cls("FrozenLake-v1", seed=0).save(tmp_path / "model")
    others = r"an env id" if algorithm == "q_learning" else r"an env id or a gymnasium VectorEnv"
    for given, says in (
        (None, "got None"),
        (3, "got 3"),
        ([1, 2], r"got \[1, 2\]"),
        (CartPoleEnv, r"not the class CartPoleEnv: make one \(gym.make\(id\) or CartPoleEnv\(...\)\)"),
    ):
        with pytest.raises(AgentError, match=rf"{cls.__name__} learns on a gymnasium env \(or {others}\)"):
            cls(given)
        with pytest.raises(AgentError, match=says):
            cls(given)
        if given is not None:  # load's env=None makes the saved env
            with pytest.raises(AgentError, match=rf"{cls.__name__} learns on a gymnasium env.*{says}"):
                cls.load(path, env=given)
            with pytest.raises(AgentError, match=rf"An agent learns on a gymnasium env.*{says}"):
                load_agent(path, env=given)


def test_a_sync_vector_env_of_a_grid_world_is_accepted():
    vec = gym.make_vec("lab/Maze-v0", 3, vectorization_mode="sync", obs_type="onehot", max_episode_steps=9)
    agent = AGENTS["ppo"](vec, seed=0, n_steps=8, batch_size=24).learn(48)
    assert agent._steps.vec is vec and agent.env.spec.max_episode_steps == 9
    with pytest.raises(AgentError, match="could not make the env 'NoSuchEnv-v0'"):
        AGENTS["ppo"]("NoSuchEnv-v0")


def test_dqn_takes_a_vector_env_too_and_tabular_agents_say_they_need_one_env():
    vec = gym.make_vec("CartPole-v1", 2)
    dqn = AGENTS["dqn"](vec, seed=0, learning_starts=10, buffer_size=100).learn(40)
    assert dqn.hyperparameters["n_envs"] == 2 and dqn._steps.vec is vec
    with pytest.raises(AgentError, match="QLearning learns from one env: pass one env, not a VectorEnv"):
        AGENTS["q_learning"](gym.make_vec("lab/IceLake8x8-v0", 2))


def test_dqn_steps_a_vector_env_of_one_copy_it_was_given():
    vec = gym.wrappers.vector.RecordEpisodeStatistics(gym.make_vec("CartPole-v1", 1))
    dqn = AGENTS["dqn"](vec, seed=0, learning_starts=10, buffer_size=100).learn(100)
    assert dqn.hyperparameters["n_envs"] == 1 and dqn._steps.vec is vec
    assert len(vec.return_queue) == dqn.num_episodes > 0  # its episodes ran in the env given
    with pytest.raises(AgentError, match=r"n-step returns \(n_steps > 1\) need one env"):
        AGENTS["dqn"](gym.make_vec("CartPole-v1", 1), n_steps=3)


class CountSteps(gym.Wrapper):
    """Counts the steps taken through it (and, as most users' wrappers, records no constructor
    arguments: the env cannot be made again from its spec)."""

    def __init__(self, env):
        super().__init__(env)
        self.steps = 0

    def step(self, action):
        self.steps += 1
        return self.env.step(action)


@pytest.mark.parametrize("algorithm", ["ppo", "a2c", "reinforce"])
def test_with_one_env_the_agent_steps_the_env_it_was_given(algorithm):
    hyperparameters = {"n_episodes": 2} if algorithm == "reinforce" else {"n_steps": 16}
    env = CountSteps(gym.make("CartPole-v1"))
    env.unwrapped.theta_threshold_radians = 0.0  # a copy made from its spec would not have this change
    lengths = []
    agent = AGENTS[algorithm](env, seed=0, **hyperparameters)
    agent.learn(100, callback=lambda event: lengths.append(event["length"]))
    assert env.steps == agent.num_timesteps >= 100 and agent._steps.vec.envs[0] is env
    assert set(lengths) == {1}  # any tilt of the pole ends an episode
    bare = AGENTS[algorithm](CartPoleEnv(), seed=0, **hyperparameters).learn(50)  # no spec at all
    assert bare.num_timesteps >= 50


def test_more_copies_are_made_from_the_spec_keeping_a_render_mode_that_serves_wrappers():
    for render_mode, kept in (("rgb_array", "rgb_array"), ("human", None), (None, None)):
        env = gym.make("CartPole-v1", render_mode=render_mode)  # a wrapper with arguments: copies one by one
        vec = make_vector_env(gym.wrappers.ClipReward(env, min_reward=-1.0, max_reward=1.0), 2)
        assert [copy.render_mode for copy in vec.envs] == [kept, kept]
        assert vec.envs[0] is not env
    with pytest.raises(AgentError, match="collecting from several envs makes copies of the env from its id"):
        make_vector_env(CartPoleEnv(), 2)


@pytest.mark.parametrize("algorithm", ["ppo", "dqn"])
def test_a_vector_env_with_wrappers_gives_the_agent_the_wrapped_spaces(algorithm):
    double = spaces.Box(-np.inf, np.inf, (8,), np.float32)

    def twice(env):
        return gym.wrappers.TransformObservation(env, lambda o: np.concatenate([o, o]), double)

    vec = gym.make_vec("CartPole-v1", 2, vectorization_mode="sync", wrappers=[twice])
    agent = AGENTS[algorithm](vec, seed=0, **({"n_steps": 8} if algorithm == "ppo" else {}))
    assert agent.env.observation_space == double
    assert agent.learn(40).num_timesteps >= 40 and agent.predict(np.zeros(8, np.float32))[0] in (0, 1)


@pytest.mark.parametrize("mode", ["SAME_STEP", "DISABLED"])
def test_a_vector_env_that_resets_otherwise_than_next_step_is_refused(mode):
    from gymnasium.vector import AutoresetMode

    kwargs = {"autoreset_mode": AutoresetMode[mode]}
    vec = gym.make_vec("CartPole-v1", 2, vectorization_mode="sync", vector_kwargs=kwargs)
    for algorithm in ("ppo", "dqn"):
        with pytest.raises(AgentError, match=f"resets finished episodes in {mode} mode; .* NEXT_STEP"):
            AGENTS[algorithm](vec)


@pytest.mark.parametrize("algorithm", ["ppo", "dqn"])
def test_learn_and_predict_check_their_arguments_before_any_step(algorithm):
    from stable_baselines3.common.callbacks import CheckpointCallback

    agent = AGENTS[algorithm]("CartPole-v1", seed=0)
    for callback, says in (
        ([print], "got a list"),
        (CheckpointCallback(10, "unused"), "got a CheckpointCallback"),
        (lambda locals_, globals_: None, r"<lambda>\(locals_, globals_\) cannot take one argument"),
    ):
        with pytest.raises(AgentError, match=f"callback must be a function called with one dict.*{says}"):
            agent.learn(100, callback=callback)
        assert agent.num_timesteps == 0
    for shape in ((3,), (1, 1, 4), (2, 3)):
        says = r"observations have shape \(4,\) .*; got shape " + re.escape(str(shape))
        with pytest.raises(AgentError, match=says):
            agent.predict(np.zeros(shape, np.float32))
    assert agent.predict(np.zeros((5, 4), np.float32))[0].shape == (5,)


@pytest.mark.parametrize(
    ("algorithm", "env_id", "width"),
    [(a, "CartPole-v1", 4) for a in ("ppo", "a2c", "reinforce", "dqn")]
    + [(a, "Pendulum-v1", 3) for a in ("ppo", "a2c", "reinforce")],
)
def test_predict_on_an_empty_batch_gives_no_actions(algorithm, env_id, width):
    agent = AGENTS[algorithm](env_id, seed=0)
    one = agent.predict(np.zeros((1, width), np.float32))[0]
    for deterministic in (True, False):
        actions, state = agent.predict(np.zeros((0, width), np.float32), deterministic=deterministic)
        assert state is None and actions.shape == (0, *one.shape[1:]) and actions.dtype == one.dtype


def test_the_one_state_helpers_refuse_a_batch_a_wrong_shape_and_the_other_action_kind():
    discrete, box = AGENTS["ppo"]("CartPole-v1", seed=0), AGENTS["ppo"]("Pendulum-v1", seed=0)
    assert discrete.action_probabilities(np.zeros(4, np.float32)).shape == (2,)
    assert box.action_distribution(np.zeros(3, np.float32))[0].shape == (1,)
    for agent, method, width in (
        (discrete, "action_probabilities", 4), (discrete, "value", 4), (box, "action_distribution", 3),
    ):  # fmt: skip
        call = getattr(agent, method)
        with pytest.raises(
            AgentError, match=rf"{method} takes one observation, not a batch; got shape \(3, {width}\)"
        ):
            call(np.zeros((3, width), np.float32))
        with pytest.raises(AgentError, match=r"observations have shape .*; got shape \(7,\)"):
            call(np.zeros(7, np.float32))
    with pytest.raises(
        AgentError, match=r"action_probabilities is for Discrete actions; .* use action_distribution"
    ):
        box.action_probabilities(np.zeros(3, np.float32))
    with pytest.raises(
        AgentError, match=r"action_distribution is for Box actions; .* use action_probabilities"
    ):
        discrete.action_distribution(np.zeros(4, np.float32))
    dqn = AGENTS["dqn"]("CartPole-v1", seed=0)
    assert dqn.q_values(np.zeros((2, 4), np.float32)).shape == (2, 2)
    with pytest.raises(AgentError, match=r"observations have shape .*; got shape \(7,\)"):
        dqn.q_values(np.zeros(7, np.float32))


@pytest.mark.parametrize("algorithm", ["ppo", "dqn"])
def test_predict_refuses_observations_that_are_not_finite_numbers_or_not_state_numbers(algorithm):
    agent = AGENTS[algorithm]("FrozenLake-v1", seed=0)  # Discrete(16) observations
    assert agent.predict(np.int64(3))[0] in range(4) and agent.predict([1, 2])[0].shape == (2,)
    for given, says in (
        ("3", "observations must be numbers; got <U1 values"),
        (None, "observations must be numbers; got object values"),
        (2.5, r"observations of Discrete\(16\) are whole state numbers; got \[2.5\]"),
        ([1.0, np.nan], "observations must be finite; got NaN or infinite values"),
        (16, r"observations of Discrete\(16\) lie in \[0, 16\); got values from 16 to 16"),
        ([1, -1], r"lie in \[0, 16\); got values from -1 to 1"),
    ):
        for deterministic in (True, False):
            with pytest.raises(AgentError, match=says):
                agent.predict(given, deterministic=deterministic)
    cartpole = AGENTS[algorithm]("CartPole-v1", seed=0)
    with pytest.raises(AgentError, match="observations must be numbers; got object values"):
        cartpole.predict([None] * 4)
    for deterministic in (True, False):  # a NaN action, or an arbitrary one, would be garbage
        with pytest.raises(AgentError, match="observations must be finite; got NaN or infinite values"):
            cartpole.predict([[0.0, 0.0, 0.0, 0.0], [0.0, np.inf, 0.0, 0.0]], deterministic=deterministic)


def test_load_takes_what_the_constructor_takes_and_save_wants_a_file_name(tmp_path):
    agent = AGENTS["ppo"]("CartPole-v1", seed=0, n_steps=8)
    path = agent.save(tmp_path / "model")
    vec = gym.make_vec("CartPole-v1", 3, vectorization_mode="sync")
    loaded = load_agent(path, env=vec).learn(48)
    assert loaded.hyperparameters["n_envs"] == 3 and loaded._steps.vec is vec
    assert load_agent(path, env="CartPole-v1").env.spec.id == "CartPole-v1"
    tabular = AGENTS["q_learning"]("lab/IceLake8x8-v0").save(tmp_path / "q")
    with pytest.raises(AgentError, match="QLearning learns from one env"):
        load_agent(tabular, env=gym.make_vec("lab/IceLake8x8-v0", 2))
    for folder in ("", ".", "/", "..", f"{tmp_path / 'models'}/"):
        with pytest.raises(AgentError, match="names a folder: give the checkpoint a file name"):
            agent.save(folder)
    (tmp_path / "taken.npz").mkdir()
    with pytest.raises(AgentError, match=r"taken\.npz' is a folder: give the checkpoint another file name"):
        agent.save(tmp_path / "taken")
    for metadata in ({"trainer": object()}, {1: "a", "b": 2}):  # keys of two kinds do not sort
        with pytest.raises(AgentError, match="checkpoint metadata must be JSON"):
            agent.save(tmp_path / "meta", metadata=metadata)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz", "q.npz", "taken.npz"]  # nothing else


def test_loading_a_model_trained_behind_a_wrapper_without_its_env_says_to_pass_it(tmp_path):
    env = gym.wrappers.TransformObservation(
        gym.make("CartPole-v1"), lambda o: o[:2], gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    )
    path = AGENTS["ppo"](env, seed=0, n_steps=8).save(tmp_path / "wrapped")
    with pytest.raises(
        AgentError,
        match=r"\(2,\), float32\) observations; this env has .* \(made again "
        r"from its saved id 'CartPole-v1', without the wrappers it trained behind: pass",
    ):
        load_agent(path)
    assert load_agent(path, env=env).predict(np.zeros(2, np.float32))[0] in (0, 1)


def test_stable_baselines3s_policy_argument_is_answered_in_one_line():
    for algorithm in ("ppo", "dqn", "q_learning"):
        with pytest.raises(AgentError, match=r"takes the env first, without stable-baselines3's policy name"):
            AGENTS[algorithm]("MlpPolicy", gym.make("CartPole-v1"))
    with pytest.raises(AgentError, match="A2C takes one positional argument, the env; give the others by"):
        AGENTS["a2c"]("CartPole-v1", 0)


def test_seeds_cover_64_bits():
    assert AGENTS["ppo"]("CartPole-v1", seed=2**64 - 1, n_steps=8).learn(8).num_timesteps >= 8
    with pytest.raises(AgentError, match=r"seed must be a whole number from 0 to 2\*\*64 - 1"):
        AGENTS["ppo"]("CartPole-v1", seed=2**64)


@pytest.mark.parametrize("action_space", [spaces.Discrete(3), spaces.Box(-1, 1, (2,))])
def test_numpy_acting_matches_the_torch_policy(action_space):
    from agents.common.numpy_actor import numpy_actor

    net = ActorCritic(spaces.Box(-5, 5, (4,)), action_space, log_std_init=-0.3)
    act = numpy_actor(net)
    obs = np.random.default_rng(0).normal(size=(500, 4)).astype(np.float32)
    actions, log_probs, values = act(obs, np.random.default_rng(1))
    with torch.no_grad():
        params, log_std, torch_values = net(torch.from_numpy(obs))
        torch_log_probs, _ = net.log_prob_entropy(params, log_std, torch.as_tensor(actions))
        greedy, _, _ = net.sample(torch.from_numpy(obs), torch.Generator(), deterministic=True)
    np.testing.assert_allclose(values, torch_values.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(log_probs, torch_log_probs.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        act(obs, np.random.default_rng(1), deterministic=True)[0], greedy.numpy(), atol=1e-6
    )
    assert numpy_actor(ActorCritic(spaces.Box(-5, 5, (4,)), action_space, shared_trunk=True)) is None


@pytest.mark.parametrize("algorithm", ["ppo", "a2c"])
def test_a_rollout_too_large_for_memory_is_refused_before_it_fills(algorithm):
    """n_steps=1e9 collected for hours into a rollout of 82 GiB; it is one line at construction."""
    with pytest.raises(
        AgentError, match=r"a rollout of n_steps=1,000,000,000 on 2 env\(s\) would take 164 GiB"
    ):
        AGENTS[algorithm]("CartPole-v1", n_steps=10**9, n_envs=2)
    assert AGENTS[algorithm]("CartPole-v1", n_steps=10**6, n_envs=2).config.n_steps == 10**6


class WholeBatch:
    """Stands in for SB3's rollout buffer in ``A2C.train``: the whole rollout in one batch."""

    def __init__(self, batch, discrete):
        from stable_baselines3.common.type_aliases import RolloutBufferSamples

        actions = batch["actions"].float().view(-1, 1) if discrete else batch["actions"]
        self.sample = RolloutBufferSamples(
            batch["obs"], actions, batch["values"], batch["log_probs"], batch["advantages"], batch["returns"]
        )
        self.values, self.returns = batch["values"].numpy(), batch["returns"].numpy()

    def get(self, batch_size=None):
        return iter([self.sample])


A2C_CASES = {
    "categorical, rmsprop": ("CartPole-v1", {}),
    "gaussian, adam, normalised, entropy": (
        "Pendulum-v1",
        {"use_rms_prop": False, "normalize_advantage": True, "ent_coef": 0.01},
    ),
}


@pytest.mark.parametrize("case", list(A2C_CASES))
def test_an_a2c_update_is_stable_baselines3s(case):
    """The same weights and rollout (4 envs x 8 steps; GAE(0.9) advantages computed here) through our
    update and SB3's ``A2C.train``: the same losses, clipped gradients and weights after the step."""
    from stable_baselines3 import A2C as SB3A2C

    env_id, options = A2C_CASES[case]
    hp = {
        "n_steps": 8,
        "gae_lambda": 0.9,
        "learning_rate": 1e-3,
        "vf_coef": 0.7,
        "max_grad_norm": 0.3,
        **options,
    }
    agent = AGENTS["a2c"](gym.make(env_id), seed=1, gamma=0.97, n_envs=4, **hp)
    model, named = sb3_twin(agent, SB3A2C, **hp)
    rollout = collected(agent, perturb=0.3)
    advantages, returns = gae(rollout, 0.97, 0.9)
    model.rollout_buffer = WholeBatch(agent._flat_batch(rollout, advantages, returns), agent.policy.discrete)
    agent._update(rollout)
    model.train()
    logged, figures = model.logger.name_to_value, agent.training_figures()
    for key in ("train/policy_loss", "train/value_loss", "train/entropy_loss", "train/explained_variance"):
        assert figures[key] == pytest.approx(logged[key], rel=1e-4, abs=1e-6), key
    for ours, theirs in named:
        for name in ("weight", "bias") if ours is not agent.policy else ("log_std",):
            a, b = getattr(ours, name), getattr(theirs, name)
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-4, atol=1e-6)


def test_reinforce_trains_on_whole_episodes_with_monte_carlo_returns_minus_the_baseline(monkeypatch):
    """Two copies: copy 0 ends an episode at step 1 and is mid-episode at step 3 (dropped), copy 1
    ends one at step 3; returns-to-go with gamma 0.5, advantages the returns minus V(s)."""
    agent = AGENTS["reinforce"](TwoStepEpisodes(), seed=0, gamma=0.5, normalize_advantage=False)
    valid = np.array([[True, True], [True, True], [False, True], [True, True]])
    done = np.array([[0, 0], [1, 0], [0, 0], [0, 1]], np.float32)
    values = np.array([[0.5, 1.0], [1.5, 2.0], [2.5, 3.0], [3.5, 4.0]], np.float32)
    r = Rollout(
        obs=np.arange(8, dtype=np.float32).reshape(4, 2, 1), actions=np.zeros((4, 2), np.int64),
        log_probs=np.zeros((4, 2), np.float32), values=values, terminated=done,
        rewards=np.where(valid, 1.0, 0.0).astype(np.float32), done=done, valid=valid,
        last_values=np.array([9.0, 9.0], np.float32),
    )  # fmt: skip
    seen, loss = [], agent._loss
    monkeypatch.setattr(agent, "_loss", lambda batch: (seen.append(batch), loss(batch))[1])
    agent._steps = type("Steps", (), {"obs": np.zeros((2, 1))})()
    agent._update(r)
    batch = seen[0]
    # kept (row-major): copy 0 rows 0, 1; copy 1 rows 0-3
    np.testing.assert_array_equal(batch["obs"][:, 0], [0, 1, 2, 3, 5, 7])
    returns = np.array([1.5, 1.875, 1.0, 1.75, 1.5, 1.0], np.float32)
    np.testing.assert_allclose(batch["returns"], returns)
    np.testing.assert_allclose(batch["advantages"], returns - np.array([0.5, 1.0, 1.5, 2.0, 3.0, 4.0]))
    assert agent._steps.obs is None  # the next batch starts every copy afresh


def test_ppo_reads_its_clip_range_and_learning_rate_schedules_after_each_rollout(monkeypatch):
    schedule = {"type": "linear", "start": 0.2, "end": 0.1, "fraction": 1.0}
    agent = AGENTS["ppo"](
        TwoStepEpisodes(), seed=0, n_steps=6, batch_size=8, n_epochs=1, clip_range=schedule,
        learning_rate={**schedule, "start": 2e-3, "end": 1e-3}, clip_range_vf="lin_0.4",
    )  # fmt: skip
    seen, loss = [], agent._loss

    def recording(part, bounds):
        seen.append((bounds, agent.optimizer.param_groups[0]["lr"]))
        return loss(part, bounds)

    monkeypatch.setattr(agent, "_loss", recording)
    agent.learn(8)  # rollouts of 4 steps: read at steps 4 and 8 of 8
    np.testing.assert_allclose(
        [(*b, lr) for b, lr in seen], [(0.85, 1.15, 0.2, 1.5e-3), (0.9, 1.1, 0.0, 1e-3)]
    )
    assert agent.hyperparameters["clip_range_vf"] == "lin_0.4"  # saved as given, as SB3's zoo writes it
    assert AGENTS["ppo"]("CartPole-v1", clip_range_vf=None).config.clip_range_vf is None
    with pytest.raises(
        AgentError, match=r"clip_range_vf must be a positive number or 'lin_<number>' .*or null"
    ):
        AGENTS["ppo"]("CartPole-v1", clip_range_vf="0.2")
