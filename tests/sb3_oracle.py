"""stable-baselines3 as a test oracle for our policy-gradient updates: its PPO (or sb3-contrib's
MaskablePPO) holding our agent's weights, and a rollout buffer that hands it our mini-batches."""

from __future__ import annotations

import torch

from agents.common.rollout import gae


def sb3_twin(agent, algorithm=None, **hp):
    """SB3's PPO (or ``algorithm``, e.g. sb3-contrib's MaskablePPO) with an MlpPolicy holding a copy of
    ``agent``'s weights (the layouts line up: SB3's mlp_extractor policy_net/value_net are our
    pi_body/vf_body, action_net and value_net our heads)."""
    from stable_baselines3 import PPO as SB3PPO
    from stable_baselines3.common.logger import configure

    algorithm = algorithm or SB3PPO
    model = algorithm("MlpPolicy", agent.env, seed=0, device="cpu", gamma=agent.gamma, **hp)
    model.set_logger(configure(None, []))
    ours, theirs = agent.policy, model.policy
    pairs = [(ours.action_head, theirs.action_net), (ours.value_head, theirs.value_net)]
    extractor = theirs.mlp_extractor
    for body, net in ((ours.pi_body, extractor.policy_net), (ours.vf_body, extractor.value_net)):
        # the same layers (lab.nets' Tanh is an nn.Tanh computed another way)
        kinds = [torch.nn.Tanh if isinstance(m, torch.nn.Tanh) else type(m) for m in body]
        assert kinds == [type(m) for m in net]
        pairs += [(a, b) for a, b in zip(body, net, strict=True) if isinstance(a, torch.nn.Linear)]
    with torch.no_grad():
        for a, b in pairs:
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)
        if not ours.discrete:
            theirs.log_std.copy_(ours.log_std)
    named = pairs + ([(ours, theirs)] if not ours.discrete else [])
    return model, named


class FixedBuffer:
    """Stands in for SB3's rollout buffer: yields the mini-batches our update takes, in our order
    (with the action masks, as sb3-contrib's maskable buffer does, when the rollout holds them)."""

    def __init__(self, agent, rollout, generator_state, discrete):
        from stable_baselines3.common.type_aliases import RolloutBufferSamples

        if hasattr(rollout, "masks"):
            from sb3_contrib.common.maskable.buffers import (
                MaskableRolloutBufferSamples as RolloutBufferSamples,
            )

        hp = agent.hyperparameters
        advantages, returns = gae(rollout, agent.gamma, hp["gae_lambda"])
        batch = agent._flat_batch(rollout, advantages, returns)
        n, size = len(batch["advantages"]), hp["batch_size"]
        generator = torch.Generator()
        generator.set_state(generator_state)
        self.epochs = []
        for _ in range(hp["n_epochs"]):
            order = torch.randperm(n, generator=generator)
            parts = []
            for start in range(0, n, size):
                index = order[start : start + size] if size < n else torch.arange(n)
                actions = batch["actions"][index]
                parts.append(RolloutBufferSamples(
                    batch["obs"][index], actions.float().view(-1, 1) if discrete else actions,
                    batch["values"][index], batch["log_probs"][index], batch["advantages"][index],
                    batch["returns"][index], *([batch["masks"][index]] if "masks" in batch else []),
                ))  # fmt: skip
            self.epochs.append(parts)
        self.values, self.returns = batch["values"].numpy(), batch["returns"].numpy()

    def get(self, batch_size):
        return iter(self.epochs.pop(0))
