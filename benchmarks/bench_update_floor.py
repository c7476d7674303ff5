"""How far our CartPole updates are from the floor of eager torch, and from stable-baselines3's.

    python benchmarks/bench_update_floor.py              # 30 rounds
    python benchmarks/bench_update_floor.py --rounds 60

The CartPole races (``bench_ppo.py``, ``bench_dqn.py``) spend most of their time in updates. This
script times one update of each agent with the rl-zoo sets, three ways, in turn in one process
(medians over the rounds, one torch thread):

- **ours**: the agent's own update (PPO: ``_update`` on a 256-step rollout, 20 epochs of one
  mini-batch; DQN: ``_train``, a burst of 128 gradient steps on mini-batches of 64), figures
  included;
- **floor**: the same steps written as bare as eager torch allows, on the same weights and data:
  CleanRL's loss, ``nn.Sequential`` with the same layers, ``zero_grad``, ``backward``,
  ``clip_grad_norm_`` and fused Adam, with subnormal floats flushed as our updates flush them
  (``lab.nets.flush_denormals``), nothing reported (DQN: uniform mini-batches drawn and
  gathered from our buffer's arrays, ``Q_target`` one mini-batch at a time, as CleanRL does);
- **stable-baselines3**: its ``train()`` on its own rollout or replay buffer, with the same settings.

Each figure is per gradient step. ``ours / floor`` says how much our code adds to the least that
an eager torch step of these networks costs; ``floor / SB3`` how much of SB3's time any eager
implementation could save.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = "1"

import gymnasium as gym
import numpy as np
import torch
from bench_ppo import GRID
from cartpole_race import sb3_hyperparameters
from torch import nn
from torch.nn import functional as F

from lab.nets import flush_denormals
from lab.zoo import zoo_entry

ZOO = Path(__file__).resolve().parent.parent / "configs" / "zoo"


def sequential_copy(layers: list[nn.Module]) -> nn.Sequential:
    """``layers`` as a new ``nn.Sequential`` (the same activations, copies of the weights)."""
    copies = []
    for layer in layers:
        if isinstance(layer, nn.Linear):
            copy = nn.Linear(layer.in_features, layer.out_features)
            copy.load_state_dict(layer.state_dict())
            layer = copy
        copies.append(layer)
    return nn.Sequential(*copies)


def ppo_updates(env_id: str, hp: dict, env_kwargs: dict | None = None) -> dict[str, Callable[[], None]]:
    """One update each of our PPO, the bare floor and SB3's PPO on ``env_id`` with ``hp``."""
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.env_util import make_vec_env

    from agents.common.rollout import gae
    from agents.ppo import PPO

    env_kwargs = env_kwargs or {}
    warm = 2 * hp["n_envs"] * hp["n_steps"]
    agent = PPO(gym.make(env_id, **env_kwargs), seed=0, **hp)
    agent.learn(warm)
    rollout = agent._collect(None)
    assert rollout is not None
    venv = make_vec_env(env_id, n_envs=hp["n_envs"], seed=0, env_kwargs=env_kwargs)
    model = SB3PPO("MlpPolicy", venv, seed=0, device="cpu", **sb3_hyperparameters(hp))
    model.learn(warm)

    policy = agent.policy
    actor = sequential_copy([*policy.pi_body, policy.action_head])
    critic = sequential_copy([*policy.vf_body, policy.value_head])
    params = [*actor.parameters(), *critic.parameters()]
    adam = torch.optim.Adam(params, lr=1e-3, eps=1e-5, fused=True)
    advantages, returns = gae(rollout, agent.gamma, agent.config.gae_lambda)
    data = agent._flat_batch(rollout, advantages, returns)
    data["actions"] = data["actions"].long()
    n, size, clip = len(data["obs"]), hp["batch_size"], agent._clip_range_at(agent.num_timesteps)
    ent_coef = hp.get("ent_coef", 0.0)

    @flush_denormals()
    def floor() -> None:  # CleanRL's ppo.py
        for _ in range(hp["n_epochs"]):
            order = torch.randperm(n)
            for start in range(0, n, size):
                b = data if size >= n else {k: v[order[start : start + size]] for k, v in data.items()}
                adv = (b["advantages"] - b["advantages"].mean()) / (b["advantages"].std() + 1e-8)
                log_p = torch.log_softmax(actor(b["obs"]), -1)
                ratio = (log_p.gather(1, b["actions"][:, None]).squeeze(1) - b["log_probs"]).exp()
                policy_loss = -torch.min(adv * ratio, adv * ratio.clamp(1 - clip, 1 + clip)).mean()
                value_loss = (b["returns"] - critic(b["obs"]).squeeze(1)).square().mean()
                loss = policy_loss + 0.5 * value_loss
                if ent_coef:
                    loss = loss + ent_coef * (log_p.exp() * log_p).sum(-1).mean()
                adam.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(params, 0.5)
                adam.step()

    return {"ours": lambda: agent._update(rollout), "floor": floor, "stable-baselines3": model.train}


def dqn_updates() -> dict[str, Callable[[], None]]:
    """One training burst each of our DQN, the bare floor and SB3's DQN (zoo set: 128 gradient
    steps on mini-batches of 64)."""
    from stable_baselines3 import DQN as SB3DQN

    from agents.dqn import DQN

    hp, _ = zoo_entry(ZOO / "dqn.yml", "CartPole-v1")
    steps, size = hp["gradient_steps"], hp["batch_size"]
    agent = DQN("CartPole-v1", seed=0, **hp)
    agent.learn(3000)
    model = SB3DQN("MlpPolicy", gym.make("CartPole-v1"), seed=0, device="cpu", **hp)
    model.learn(3000)

    def layers(net: nn.Module) -> list[nn.Module]:
        return [m for m in net.modules() if isinstance(m, (nn.Linear, nn.ReLU))]

    q_net, target_net = sequential_copy(layers(agent.q_net)), sequential_copy(layers(agent.target_net))
    params = list(q_net.parameters())
    adam = torch.optim.Adam(params, lr=hp["learning_rate"], fused=True)
    n, rng = len(agent.buffer), np.random.default_rng(0)
    obs, actions, rewards, next_obs, discounts = agent.buffer.gather(np.arange(n))

    @flush_denormals()
    def floor() -> None:  # CleanRL's dqn.py: sample, target, loss, backward, clip, step
        for _ in range(steps):
            i = rng.integers(0, n, size)
            with torch.no_grad():
                next_value = target_net(torch.from_numpy(next_obs[i])).max(1).values
                target = torch.from_numpy(rewards[i]) + torch.from_numpy(discounts[i]) * next_value
            q = (
                q_net(torch.from_numpy(obs[i]))
                .gather(1, torch.from_numpy(actions[i]).long()[:, None])
                .squeeze(1)
            )
            loss = F.smooth_l1_loss(q, target)
            adam.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, hp.get("max_grad_norm", 10.0))
            adam.step()

    t = agent.num_timesteps
    return {
        "ours": lambda: agent._train(steps, t),
        "floor": floor,
        "stable-baselines3": lambda: model.train(steps, size),
    }


def time_in_turn(updates: dict[str, Callable[[], None]], rounds: int) -> dict[str, float]:
    """Median seconds of each update over ``rounds`` rounds, the updates taking turns."""
    for update in updates.values():  # warm-up
        update()
    seconds: dict[str, list[float]] = {name: [] for name in updates}
    for _ in range(rounds):
        for name, update in updates.items():
            start = time.perf_counter()
            update()
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in seconds.items()}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ppo, _ = zoo_entry(ZOO / "ppo.yml", "CartPole-v1")
    cases = (
        ("PPO, CartPole-v1 zoo set (20 epochs of 1 mini-batch of 256)",
         lambda: ppo_updates("CartPole-v1", ppo), 20),
        ("PPO, lab/Maze-v0 one-hot, 64 copies (bench_ppo.py's grid set: 4 epochs of 4 mini-batches of 2,048)",
         lambda: ppo_updates("lab/Maze-v0", {**GRID, "n_envs": 64}, {"obs_type": "onehot"}), 16),
        ("DQN, CartPole-v1 zoo set (a burst of 128 steps on mini-batches of 64)", dqn_updates, 128),
    )  # fmt: skip
    for title, make, per_update in cases:
        medians = time_in_turn(make(), args.rounds)
        ours, floor, sb3 = (medians[k] / per_update * 1e6 for k in ("ours", "floor", "stable-baselines3"))
        print(f"{title}\n  us per gradient step (medians of {args.rounds} rounds): ours {ours:.0f}, "
              f"floor {floor:.0f}, stable-baselines3 {sb3:.0f}")  # fmt: skip
        print(
            f"  ours / floor {ours / floor:.2f}, floor / SB3 {floor / sb3:.2f}, ours / SB3 {ours / sb3:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
