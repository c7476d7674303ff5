"""Action masks in the policy-gradient agents (``use_masking``, sb3-contrib's ``MaskablePPO``
convention): the masked categorical exactly, one PPO update against sb3-contrib's on the same
weights and rollout, acting and evaluating on the text env among the allowed tokens only, bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from agents import AGENTS, AgentError
from agents.common.policies import ActorCritic
from lab.core.environments import make_env
from lab.evaluation import greedy_action
from lab.text_prefix import allowed_tokens, text_env

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class MaskedCartPole(gym.Wrapper):
    """CartPole with a third action (a second "push right") allowed only while the pole leans right,
    announced in ``info["action_mask"]`` and ``action_masks()`` as the lab's text envs do."""

    def __init__(self) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.action_space = spaces.Discrete(3)
        self._mask = np.ones(3, dtype=bool)

    def _with_mask(self, obs, info):
        self._mask = np.array([True, True, obs[2] > 0])
        return {**info, "action_mask": self._mask.copy()}

    def action_masks(self):
        return self._mask.copy()

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, self._with_mask(obs, info)

    def step(self, action):
        assert self._mask[action], "a masked action was taken"
        obs, reward, terminated, truncated, info = self.env.step(min(int(action), 1))
        return obs, reward, terminated, truncated, self._with_mask(obs, info)


gym.register("test/MaskedCartPole-v0", entry_point=MaskedCartPole)


def test_the_masked_categorical_is_the_policy_renormalised_over_the_allowed_actions():
    policy = ActorCritic(spaces.Box(-1, 1, (3,), np.float32), spaces.Discrete(5))
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 5, generator=generator)
    mask = torch.rand(6, 5, generator=generator) > 0.4
    mask[:, 0] = True  # at least one action allowed per row
    actions = torch.tensor([0, 0, 0, 0, 0, 0])
    log_prob, entropy = policy.log_prob_entropy(logits, logits[:, :0], actions, mask)
    for i in range(6):
        allowed = logits[i][mask[i]]
        log_p = torch.log_softmax(allowed, -1)
        assert log_prob[i] == pytest.approx(float(log_p[0]), abs=1e-6)  # action 0 is allowed and first
        assert entropy[i] == pytest.approx(float(-(log_p.exp() * log_p).sum()), abs=1e-6)
    obs = torch.zeros(4000, 3)
    row_mask = torch.tensor([False, True, False, True, True]).expand(4000, 5)
    drawn, _, _ = policy.sample(obs, generator, mask=row_mask)
    assert set(drawn.tolist()) == {1, 3, 4}  # every allowed action drawn, no other


def test_a_masked_ppo_update_is_sb3_contribs():
    """The same weights and rollout (4 envs x 32 steps, log-probabilities shifted so the clip bites)
    through our update with ``use_masking`` and sb3-contrib's ``MaskablePPO.train``: the same last
    loss, figures, gradients and weights, up to float rounding."""
    from sb3_contrib import MaskablePPO
    from sb3_oracle import FixedBuffer, sb3_twin

    from agents.common.vector import VectorSteps, make_vector_env

    hp = {"n_steps": 32, "gae_lambda": 0.9, "learning_rate": 1e-3, "n_epochs": 3, "batch_size": 48,
          "ent_coef": 0.01}  # fmt: skip
    agent = AGENTS["ppo"](
        gym.make("test/MaskedCartPole-v0"), seed=1, gamma=0.97, n_envs=4, use_masking=True, **hp
    )
    model, pairs = sb3_twin(agent, MaskablePPO, **hp)
    agent._steps = VectorSteps(agent, make_vector_env(agent.env, 4))
    rollout = agent._collect(None)
    assert rollout.masks.shape == (32, 4, 3) and 0 < rollout.masks[..., 2].mean() < 1
    rng = np.random.default_rng(0)
    rollout.log_probs = (rollout.log_probs + 0.3 * rng.standard_normal(rollout.log_probs.shape)).astype(
        np.float32
    )
    model.rollout_buffer = FixedBuffer(agent, rollout, agent._generator.get_state(), discrete=True)
    losses, loss_of = [], agent._loss
    agent._loss = lambda *args: (out := loss_of(*args), losses.append(float(out[0].detach())))[0]
    agent._update(rollout)
    model.train()
    logged, figures = model.logger.name_to_value, agent.training_figures()
    assert logged["train/loss"] == pytest.approx(losses[-1], rel=1e-5, abs=1e-6)
    for key in ("train/clip_fraction", "train/approx_kl", "train/policy_gradient_loss", "train/value_loss",
                "train/entropy_loss"):  # fmt: skip
        assert figures[key] == pytest.approx(logged[key], rel=1e-4, abs=1e-6), key
    for ours, theirs in pairs:
        torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(ours.weight.detach(), theirs.weight.detach(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("algorithm", ["ppo", "a2c", "reinforce"])
def test_a_masked_agent_on_text_acts_and_evaluates_among_the_allowed_tokens_only(algorithm):
    env = make_env("lab/TextPositive-v0")
    hp = {"n_envs": 4, "use_masking": True, **({"n_steps": 16} if algorithm != "reinforce" else {})}
    agent = AGENTS[algorithm](env, seed=0, **hp)
    seen = []
    update = agent._update
    agent._update = lambda rollout: (seen.append(rollout), update(rollout))[1]
    agent.learn(300)
    for rollout in seen:
        taken = np.take_along_axis(rollout.masks, rollout.actions[..., None].astype(np.int64), -1)[..., 0]
        assert taken[rollout.valid].all()
    text = text_env(env)
    for episode in range(10):  # greedy, as lab eval and lab watch act: every sentence grammatical
        obs, info = env.reset(seed=episode)
        done = False
        while not done:
            assert np.array_equal(allowed_tokens(text, obs), info["action_mask"])  # what lab watch draws
            action = greedy_action(agent, obs, info)
            assert info["action_mask"][action]
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        assert terminated and info["grammatical"]


def test_masked_probabilities_are_zero_outside_the_mask_and_sum_to_one():
    env = make_env("lab/TextPositive-v0")
    agent = AGENTS["ppo"](env, seed=0, use_masking=True)
    obs, info = env.reset(seed=0)
    p = agent.action_probabilities(obs, action_masks=info["action_mask"])
    assert p[~info["action_mask"]].max() == 0.0 and p.sum() == pytest.approx(1.0)
    actions, _ = agent.predict(
        np.stack([obs, obs]), deterministic=False, action_masks=np.stack([info["action_mask"]] * 2)
    )
    assert info["action_mask"][actions].all()


def test_bad_masking_input_is_one_clear_line():
    with pytest.raises(AgentError, match="use_masking needs a Discrete action space"):
        AGENTS["ppo"](gym.make("Pendulum-v1"), seed=0, use_masking=True)
    with pytest.raises(AgentError, match=r"use_masking needs an env that gives info\['action_mask'\]"):
        AGENTS["ppo"](gym.make("CartPole-v1"), seed=0, use_masking=True, n_steps=8, batch_size=8).learn(16)
    with pytest.raises(AgentError, match="use_masking needs an env that gives"):  # the text env unmasked
        agent = AGENTS["a2c"](
            make_env("lab/TextPositive-v0", {"action_mask": False}), seed=0, use_masking=True
        )
        agent.learn(16)
    agent = AGENTS["ppo"](gym.make("CartPole-v1"), seed=0)
    with pytest.raises(AgentError, match="action_masks need 2 entries a row, one row per observation; got 3"):
        agent.predict(np.zeros(4, np.float32), action_masks=[True, True, False])
    batch = np.zeros((2, 4), np.float32)
    with pytest.raises(AgentError, match="one row per observation; got 3 entries for 2 observations"):
        agent.predict(batch, action_masks=[True, False, True])
    for deterministic in (True, False):  # no allowed action: refused, not a forbidden one taken
        with pytest.raises(AgentError, match=r"action_masks row 1 allows no action"):
            agent.predict(batch, deterministic=deterministic, action_masks=[[True, False], [False, False]])
    with pytest.raises(AgentError, match=r"action_masks row 0 allows no action"):
        agent.action_probabilities(np.zeros(4, np.float32), action_masks=[False, False])
    with pytest.raises(AgentError, match="use_masking must be true or false"):
        AGENTS["ppo"](gym.make("CartPole-v1"), seed=0, use_masking="yes")


class OddMaskCartPole(MaskedCartPole):
    """MaskedCartPole whose mask is empty at the end of an episode (no action is taken there, so that
    is allowed), or, with ``broken=...``, empty while the pole leans right or a row too short."""

    def __init__(self, broken: str = "") -> None:
        super().__init__()
        self.broken = broken

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(min(int(action), 1))
        info = self._with_mask(obs, info)
        if terminated or truncated or (self.broken == "empty" and obs[2] > 0):
            self._mask[:] = False
            info["action_mask"] = self._mask.copy()
        if self.broken == "short":
            info["action_mask"] = info["action_mask"][:2]
        return obs, reward, terminated, truncated, info


gym.register("test/OddMaskCartPole-v0", entry_point=OddMaskCartPole)


@pytest.mark.parametrize("algorithm", ["ppo", "reinforce"])
def test_an_env_mask_allowing_no_action_is_refused_unless_the_episode_ended(algorithm):
    hp = {"n_envs": 2, "use_masking": True, **({"n_steps": 16} if algorithm == "ppo" else {})}
    agent = AGENTS[algorithm](gym.make_vec("test/OddMaskCartPole-v0", 2, "sync"), seed=0, **hp)
    assert agent.learn(300).num_episodes > 0  # empty masks at episode ends only: no action taken there
    for broken, message in [
        ("empty", r"info\['action_mask'\] allows no action in a state whose episode goes on \(copy \d\)"),
        ("short", r"info\['action_mask'\] needs 3 entries a copy; got 4 for 2"),
    ]:
        vec = gym.make_vec("test/OddMaskCartPole-v0", 2, "sync", broken=broken)
        with pytest.raises(AgentError, match=message):
            AGENTS[algorithm](vec, seed=0, **hp).learn(300)


@pytest.mark.slow
def test_masked_ppo_learns_positive_sentences_where_unmasked_ppo_does_not_start():
    """On lab/TextPositive-v0 the masks make every sentence grammatical, so PPO only has to learn the
    positive words: 4,000 steps take each of 3 seeds to a greedy return of at least 0.9 (measured:
    1.0 for all three), where the same budget without masks leaves seed 0 at 0."""
    from lab.evaluation import evaluate

    hp = {"n_envs": 8, "n_steps": 32, "batch_size": 64, "n_epochs": 4, "learning_rate": 1e-3}

    def greedy_return(seed: int, use_masking: bool) -> float:
        agent = AGENTS["ppo"](make_env("lab/TextPositive-v0"), seed=seed, use_masking=use_masking, **hp)
        agent.learn(4000)
        return evaluate(agent, make_env("lab/TextPositive-v0"), 50, seed=7).mean_return

    masked = [greedy_return(seed, True) for seed in range(3)]
    assert min(masked) >= 0.9, masked
    assert greedy_return(0, False) < min(masked) - 0.5
