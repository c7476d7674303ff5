"""REINFORCE, A2C and PPO: advantages, distributions and normalisers exactly; checkpoints; bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

import envs  # noqa: F401  (registers the lab/ ids)
from agents import AGENTS, AgentError, load_agent
from agents.on_policy import Rollout, gae
from agents.policies import ActorCritic, RunningMeanStd
from agents.vector import make_vector_env

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


@pytest.mark.parametrize("seeding", ["lab", "sb3"])
@pytest.mark.parametrize(("bad", "what"), [("obs", "observation"), ("reward", "reward")])
def test_non_finite_observations_or_rewards_name_the_step(bad, what, seeding):
    gym.register("lab-test/Broken-v0", entry_point=lambda: Broken(bad), disable_env_checker=True)
    try:
        agent = AGENTS["ppo"](
            gym.make("lab-test/Broken-v0"), seed=0, n_steps=16, batch_size=16, seeding=seeding
        )
        with pytest.raises(AgentError, match=rf"non-finite {what} at step 5 \(env copy 0, episode step 5\)"):
            agent.learn(100)
    finally:
        del gym.registry["lab-test/Broken-v0"]


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


SMALL_SB3_RUN = {"n_envs": 4, "n_steps": 32, "batch_size": 48, "n_epochs": 4, "gae_lambda": 0.9}


def short_cartpole() -> gym.Env:
    return gym.make("CartPole-v1", max_episode_steps=20)  # time limits every few episodes


@pytest.mark.parametrize("options", [{}, {"ent_coef": 0.01}, {"clip_range_vf": 0.1, "target_kl": 0.005}])
def test_ppo_seeding_sb3_repeats_stable_baselines3s_ppo_number_for_number(options):
    """Six rollouts of 4 CartPoles cut at 20 steps (SB3 adds a time limit's bootstrap to the last
    reward), decaying learning rate and clip range, mini-batches of 48 out of 128 (the last one
    shorter). ent_coef 0 takes the hand-written backward pass; 0.01 takes autograd's."""
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.env_util import make_vec_env

    steps = 4 * 32 * 6
    hp = {**SMALL_SB3_RUN, **options}
    theirs = SB3PPO(
        "MlpPolicy", make_vec_env(short_cartpole, n_envs=4, seed=5), seed=5, gamma=0.97, device="cpu",
        learning_rate=lambda remaining: 3e-3 * remaining, clip_range=lambda remaining: 0.3 * remaining,
        **{k: v for k, v in hp.items() if k != "n_envs"},
    ).learn(steps)  # fmt: skip
    for seeding in ("sb3", "lab"):
        ours = AGENTS["ppo"](short_cartpole(), seed=5, gamma=0.97, seeding=seeding, learning_rate="lin_3e-3",
                             clip_range="lin_0.3", **hp).learn(steps)  # fmt: skip
        same = [
            torch.equal(a, b)
            for a, b in zip(ours.policy.parameters(), theirs.policy.parameters(), strict=True)
        ]
        if seeding == "sb3":
            assert all(same) and ours.num_timesteps == theirs.num_timesteps == steps
        else:
            assert not any(same)  # our own seeding: other draws


def test_ppo_seeding_sb3_checks_its_settings_and_saves_its_random_numbers(tmp_path):
    with pytest.raises(
        AgentError, match="seeding='sb3' repeats SB3's MlpPolicy PPO, which needs Discrete actions"
    ):
        AGENTS["ppo"](gym.make("Pendulum-v1"), seeding="sb3")
    with pytest.raises(AgentError, match="which needs no observation normalisation"):
        AGENTS["ppo"](gym.make("CartPole-v1"), seeding="sb3", normalize_observations=True)
    with pytest.raises(AgentError, match="seeding must be 'lab' or 'sb3'; got 'torch'"):
        AGENTS["ppo"](gym.make("CartPole-v1"), seeding="torch")
    agent = AGENTS["ppo"](gym.make("CartPole-v1"), seed=0, seeding="sb3", n_steps=16, batch_size=8).learn(64)
    loaded = load_agent(agent.save(tmp_path / "sb3"))
    for a, b in zip(agent.policy.parameters(), loaded.policy.parameters(), strict=True):
        assert torch.equal(a, b)
    assert np.array_equal(agent._sb3.random.numpy.permutation(50), loaded._sb3.random.numpy.permutation(50))
    assert torch.equal(
        torch.rand(5, generator=agent._sb3.generator), torch.rand(5, generator=loaded._sb3.generator)
    )


@pytest.mark.parametrize("columns", [1, 2, 3, 7])
def test_sb3_log_softmax_is_torchs_to_the_bit(columns):
    """seeding='sb3' normalises logits in numpy around torch's exp, sum and log: the same numbers as
    torch's ``raw - raw.logsumexp(-1)`` (Categorical), wide ranges and infinities included."""
    from agents.ppo_sb3 import _log_softmax

    rng = np.random.default_rng(columns)
    scales = rng.choice([0.01, 1.0, 30.0, 1e4], (512, 1))
    raw = (rng.standard_normal((512, columns)) * scales).astype(np.float32)
    raw[0, 0] = np.inf
    raw[1, -1] = -np.inf
    before = raw.copy()
    with np.errstate(invalid="ignore"):
        ours = _log_softmax(raw)
    tensor = torch.from_numpy(before)
    assert np.array_equal(ours, (tensor - tensor.logsumexp(-1, keepdim=True)).numpy(), equal_nan=True)
    assert np.array_equal(raw, before)  # the input is left as it was


def test_ppo_seeding_sb3_stops_at_non_finite_action_probabilities():
    """torch.multinomial, which seeding='sb3' draws as its fast path does, would refuse them too."""
    agent = AGENTS["ppo"](gym.make("CartPole-v1"), seed=0, seeding="sb3", n_steps=16, batch_size=8)
    with torch.no_grad():
        agent.policy.action_head.weight[0, 0] = float("nan")
    with pytest.raises(AgentError, match=r"non-finite action probabilities at step 1: the policy's weights"):
        agent.learn(64)


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


@pytest.mark.parametrize(
    ("action_space", "policy_kwargs", "clip_vf", "ent_coef"),
    [
        (spaces.Discrete(3), {}, None, 0.0),
        (spaces.Discrete(3), {"activation_fn": "relu", "net_arch": {"pi": [16], "vf": [8, 8]}}, 0.2, 0.05),
        (spaces.Box(-1, 1, (2,)), {}, None, 0.01),
        (spaces.Box(-1, 1, (2,)), {"net_arch": [], "log_std_init": -0.7}, 0.1, 0.0),
    ],
)
def test_the_hand_written_ppo_gradient_matches_autograd(action_space, policy_kwargs, clip_vf, ent_coef):
    from agents.ppo import PPO
    from agents.ppo_grad import HandPPOStep

    class Env(gym.Env):
        observation_space = spaces.Box(-5, 5, (4,), np.float32)

        def __init__(self):
            self.action_space = action_space

    agent = PPO(Env(), seed=0, policy_kwargs=policy_kwargs, n_steps=8, batch_size=8, ent_coef=ent_coef)
    assert agent._hand is not None and HandPPOStep.supports(agent.policy, agent.optimizer)
    g = torch.Generator().manual_seed(1)
    n = 64
    obs = torch.randn(n, 4, generator=g)
    with torch.no_grad():
        actions, old_log_probs, old_values = agent.policy.sample(obs, g)
        old_log_probs = old_log_probs + 0.3 * torch.randn(n, generator=g)  # ratios on both sides of the clip
        old_values = old_values + 0.3 * torch.randn(n, generator=g)
    part = {
        "obs": obs, "actions": actions, "log_probs": old_log_probs, "values": old_values,
        "returns": torch.randn(n, generator=g),
    }  # fmt: skip
    adv = torch.randn(n, generator=g)
    params = [p for p in agent.policy.parameters() if p.requires_grad]
    agent.optimizer.zero_grad(set_to_none=True)
    loss, ratio, _ = agent._loss(part, adv, 0.2, clip_vf)
    loss.backward()
    expected = [p.grad.clone() for p in params]
    assert ((ratio - 1).abs() > 0.2).any() and ((ratio - 1).abs() < 0.2).any()
    numpy_part = {k: v.numpy() for k, v in part.items()}
    hand_loss, hand_ratio, _ = agent._hand.gradient(
        numpy_part["obs"], numpy_part["actions"], numpy_part["log_probs"], adv.numpy(), numpy_part["returns"],
        numpy_part["values"], 0.2, clip_vf, ent_coef, 0.5,
    )  # fmt: skip
    assert hand_loss == pytest.approx(float(loss.detach()), rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(hand_ratio, ratio.detach().numpy(), rtol=1e-5)
    for got, want in zip(agent._hand.gradients(), expected, strict=True):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("action_space", [spaces.Discrete(3), spaces.Box(-1, 1, (2,))])
def test_the_numpy_adam_step_is_torchs_clipped_adam(action_space):
    """Clipping and Adam on the flat buffers give what clip_grad_norm_ + torch.optim.Adam give."""
    import copy

    from agents.ppo import PPO

    class Env(gym.Env):
        observation_space = spaces.Box(-5, 5, (4,), np.float32)

        def __init__(self):
            self.action_space = action_space

    agent = PPO(Env(), seed=0, n_steps=8, batch_size=8, learning_rate=3e-3)
    twin = copy.deepcopy(agent.policy)
    twin_params = [p for p in twin.parameters() if p.requires_grad]
    twin_adam = torch.optim.Adam(twin_params, lr=3e-3, eps=1e-5)
    hand, rng = agent._hand, np.random.default_rng(0)
    for step in range(5):
        obs = rng.normal(size=(32, 4)).astype(np.float32)
        with torch.no_grad():
            actions, log_probs, values = agent.policy.sample(torch.from_numpy(obs), torch.Generator())
        adv = rng.normal(size=32).astype(np.float32) * (10.0 if step % 2 else 0.01)  # clipped, unclipped
        hand.gradient(obs, actions.numpy(), log_probs.numpy() - 0.1, adv, values.numpy() + 1, values.numpy(),
                      0.2, None, 0.01, 0.5)  # fmt: skip
        for p, grad in zip(twin_params, hand.gradients(), strict=True):
            p.grad = torch.from_numpy(grad.copy())
        torch.nn.utils.clip_grad_norm_(twin_params, 0.5)
        twin_adam.step()
        hand.step(0.5)
        for mine, theirs in zip(agent.policy.parameters(), twin_params, strict=True):
            torch.testing.assert_close(mine.detach(), theirs.detach(), rtol=1e-5, atol=1e-7)
    state = agent.optimizer.state_dict()["state"]
    assert [float(s["step"]) for s in state.values()] == [5.0] * len(state)


def test_a_loaded_ppo_continues_with_its_adam_state(tmp_path):
    from agents.ppo import PPO

    agent = PPO(gym.make("CartPole-v1"), seed=0, n_steps=32, batch_size=32, n_epochs=2)
    agent.learn(64)
    agent.save(tmp_path / "ppo")
    loaded = PPO.load(tmp_path / "ppo", env=gym.make("CartPole-v1"))
    saved, restored = agent._hand.buffers, loaded._hand.buffers
    torch.testing.assert_close(restored.exp_avg, saved.exp_avg, rtol=0, atol=0)
    torch.testing.assert_close(restored.exp_avg_sq, saved.exp_avg_sq, rtol=0, atol=0)
    assert float(restored.steps) == float(saved.steps) > 0
    for p in loaded.policy.parameters():  # the optimizer's state is the numpy step's buffers again
        exp_avg = loaded.optimizer.state[p]["exp_avg"]
        assert exp_avg.untyped_storage().data_ptr() == restored.exp_avg.untyped_storage().data_ptr()
    before = [p.detach().clone() for p in loaded.policy.parameters()]
    loaded.learn(64)
    assert all(not torch.equal(a, b) for a, b in zip(before, loaded.policy.parameters(), strict=True))


def test_other_policies_train_through_autograd():
    from agents.ppo import PPO

    shared = PPO(gym.make("CartPole-v1"), policy_kwargs={"shared_trunk": True})
    pixels = PPO(gym.make("lab/Maze-v0", obs_type="symbolic"))
    squashed = PPO(gym.make("Pendulum-v1"), policy_kwargs={"squash_output": True})
    assert shared._hand is None and pixels._hand is None and squashed._hand is None


@pytest.mark.parametrize("action_space", [spaces.Discrete(3), spaces.Box(-1, 1, (2,))])
def test_numpy_acting_matches_the_torch_policy(action_space):
    from agents.policies import numpy_actor

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
