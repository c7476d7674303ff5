"""DQN (Mnih et al., 2015): Q-learning with a neural network, experience replay and a target network.

Each env step the agent acts epsilon-greedily on ``Q(s, .)`` and stores the transition in a replay
buffer. Every ``train_freq`` steps (after ``learning_starts``) it takes ``gradient_steps`` steps
of gradient descent on the (Huber) TD error of random mini-batches:

    target = r + discount * Q_target(s', argmax_a Q_online(s', a))   (Double DQN)
    target = r + discount * max_a Q_target(s', a)                    (plain DQN)

where ``discount`` is ``gamma ** n`` for an n-step return, 0 after a termination. The target
network is a copy of the online one, refreshed every ``target_update_interval`` steps (hard copy,
``tau=1``) or averaged in (Polyak, ``tau < 1``). Hyperparameters carry stable-baselines3's names,
so an rl-baselines3-zoo DQN entry works unchanged.

Speed: acting on one observation goes through a numpy copy of the MLP's forward pass (its weights
are views of the torch parameters, so they never go stale), which is several times cheaper than a
torch call at batch size 1; a training burst draws all its mini-batch indices at once. A plain MLP
trains through a hand-written backward pass (:class:`MLPTrainer`) into flat gradient buffers, which
are clipped and stepped by Adam in two calls (:class:`agents.optim.FlatParameters`): the same
numbers as ``clip_grad_norm_`` and ``torch.optim.Adam``, without their per-tensor overhead.

``seeding="sb3"`` draws the random numbers as stable-baselines3's DQN does (:mod:`agents.sb3_random`)
and rounds as it does (Adam's default arithmetic, greedy actions through torch): with the same seed
and hyperparameters, a run on a plain-MLP env repeats SB3's, observation for observation and weight
for weight (one env, uniform 1-step replay). Exact resume from a checkpoint needs the default
``seeding="lab"``, whose env seeds are a function of the episode number.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from agents.base import Agent, Callback, check_total_timesteps, whole_number
from agents.errors import AgentError
from agents.numpy_mlp import mlp_forward
from agents.optim import FlatParameters, adam_kernel, clip_coefficient, fast_adam_options, total_grad_norm
from agents.random_stream import pcg_state_array, set_pcg_state
from agents.replay_buffer import PrioritizedReplayBuffer, ReplayBuffer
from agents.sb3_random import SB3Random, check_seeding
from agents.schedules import LinearSchedule, zoo_schedule
from agents.vector import VectorSteps, make_vector_env

if TYPE_CHECKING:
    from typing_extensions import Self


class QNetwork(nn.Module):
    """Observations -> one value per action; ``dueling`` splits it into V(s) + A(s, a) - mean_a A."""

    def __init__(self, space: spaces.Space, n_actions: int, net_arch: list[int], dueling: bool) -> None:
        super().__init__()
        from lab.nets import MLP, encoder_for_space

        vector = isinstance(space, spaces.Box) and len(space.shape) == 1
        if vector:  # the MLP itself reads the vector: SB3's architecture for the same net_arch
            self.encoder: nn.Module = nn.Flatten()
            features = space.shape[0]
        else:
            self.encoder = encoder_for_space(space, features=net_arch[0] if net_arch else 64)
            features = self.encoder.out_features
        hidden = tuple(net_arch) if vector else tuple(net_arch[1:])
        self.vector = vector
        self.dueling = dueling
        self.n_actions = n_actions
        self.head = MLP(features, n_actions + (1 if dueling else 0), hidden=hidden)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.encoder(obs)
        if x.dtype != torch.float32:
            x = x.float()
        return self._combine(self.head(x))

    def _combine(self, out: torch.Tensor) -> torch.Tensor:
        if not self.dueling:
            return out
        value, advantage = out[:, :1], out[:, 1:]
        return value + advantage - advantage.mean(dim=1, keepdim=True)

    def linear_layers(self) -> list[nn.Linear] | None:
        """The Linear layers when the network is a plain Linear/ReLU MLP on a vector (not dueling), else
        ``None``: the shape the hand-written fast paths below know."""
        if not self.vector or self.dueling:
            return None
        leaves = [m for m in self.head.modules() if not list(m.children())]
        linears = [m for m in leaves if isinstance(m, nn.Linear)]
        expected = [nn.ReLU if i % 2 else nn.Linear for i in range(2 * len(linears) - 1)]
        if [type(m) for m in leaves] != expected:
            return None
        return linears

    def numpy_greedy(self) -> Any:
        """A numpy function ``obs -> argmax_a Q(obs, a)`` for one vector observation (``None`` when the
        network is not a plain MLP): several times cheaper than a torch call at batch size 1."""
        linears = self.linear_layers()
        if linears is None:
            return None
        # Views of the parameters: the optimizer updates them in place, so these stay current.
        weights = [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in linears]

        def greedy(obs: np.ndarray) -> int:
            return int(mlp_forward(np.asarray(obs).astype(np.float32, copy=False), weights, "relu").argmax())

        return greedy

    def torch_greedy(self) -> Any:
        """As :meth:`numpy_greedy`, through the torch calls the module's forward makes (a Linear on a
        batch is ``addmm``), so the same numbers as the module, and as stable-baselines3's Q-network,
        at a fraction of the cost of calling the module."""
        linears = self.linear_layers()
        if linears is None:
            return None
        layers = [(m.weight, m.bias) for m in linears]

        @torch.no_grad()
        def greedy(obs: np.ndarray) -> int:
            return int(
                relu_mlp(layers, torch.from_numpy(np.asarray(obs, dtype=np.float32).reshape(1, -1))).argmax()
            )

        return greedy


def relu_mlp(layers: list[tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor) -> torch.Tensor:
    """A Linear/ReLU MLP's output from its ``(weight, bias)`` pairs: the torch calls its modules make."""
    *hidden, (w_out, b_out) = layers
    for w, b in hidden:
        x = torch.addmm(b, x, w.t()).relu_()
    return torch.addmm(b_out, x, w_out.t())


class MLPTrainer:
    """The TD loss's forward and backward pass through a plain Linear/ReLU MLP, written out by hand.

    The arithmetic is autograd's (the same matrix products, Huber or squared loss, ReLU masks), with
    a third of the Python-level calls: for networks this small the per-call overhead is a large share
    of a gradient step. Gradients land in each parameter's ``.grad`` (views of ``flat``'s gradient
    buffer when one is given), ready for ``optimizer.step`` or :meth:`FlatParameters.adam_step`.
    """

    def __init__(
        self, online: list[nn.Linear], target: list[nn.Linear], flat: FlatParameters | None = None
    ) -> None:
        self.online = [(m.weight, m.bias) for m in online]
        self.target = [(m.weight, m.bias) for m in target]
        self.params = [p for pair in self.online for p in pair]
        # Where each layer's gradients go: the flat buffer that the optimizer step reads, when given.
        self.grads = None if flat is None else [(flat.grad(w), flat.grad(b)) for w, b in self.online]
        for p in self.params if flat is not None else ():
            p.grad = flat.grad(p)  # visible as .grad too

    @torch.no_grad()
    def target_values(self, obs: torch.Tensor) -> torch.Tensor:
        return relu_mlp(self.target, obs if obs.dtype == torch.float32 else obs.float())

    @torch.no_grad()
    def backward(
        self, obs: torch.Tensor, actions: torch.Tensor, target: torch.Tensor, huber: bool,
        weights: torch.Tensor | None = None,
    ) -> torch.Tensor:  # fmt: skip
        """Set the gradients of the mean (weighted) loss; returns the TD errors ``Q(s, a) - target``."""
        x = obs if obs.dtype == torch.float32 else obs.float()
        inputs = [x]
        *hidden, (w_out, b_out) = self.online
        for w, b in hidden:
            x = torch.addmm(b, x, w.t()).relu_()
            inputs.append(x)
        q = torch.addmm(b_out, x, w_out.t()).numpy()
        # The loss's per-sample arithmetic is exactly rounded: numpy's numbers are torch's, for less.
        rows, chosen = np.arange(len(q)), actions.numpy()
        error = q[rows, chosen] - target.numpy()
        if huber:  # d loss / d error
            slope = np.minimum(np.maximum(error, np.float32(-1.0)), np.float32(1.0))
        else:
            slope = error * np.float32(2.0)
        if weights is not None:
            slope = slope * weights.numpy()
        grad_q = np.zeros_like(q)
        grad_q[rows, chosen] = slope / np.float32(len(error))
        grad = torch.from_numpy(grad_q)
        for layer in range(len(self.online) - 1, -1, -1):
            w, b = self.online[layer]
            below = inputs[layer]
            if self.grads is not None:
                w_grad, b_grad = self.grads[layer]
            else:
                if w.grad is None:
                    w.grad, b.grad = torch.empty_like(w), torch.empty_like(b)
                w_grad, b_grad = w.grad, b.grad
            torch.mm(grad.t(), below, out=w_grad)
            torch.sum(grad, 0, out=b_grad)
            if layer:  # through the ReLU: zero where its output was zero
                grad = torch.ops.aten.threshold_backward(grad.mm(w), below, 0.0)
        return torch.from_numpy(error)

    @staticmethod
    def loss(error: torch.Tensor, huber: bool, weights: torch.Tensor | None = None) -> torch.Tensor:
        per_sample = (
            F.huber_loss(error, torch.zeros_like(error), reduction="none") if huber else error.square()
        )
        return (per_sample if weights is None else weights * per_sample).mean()


# What seeding="sb3" needs: the settings under which stable-baselines3's DQN draws its random numbers
SB3_SEEDING_NEEDS: dict[str, Any] = {"n_envs": 1, "prioritized": False, "n_step": 1}


class DQN(Agent):
    """Deep Q-learning on any Discrete-action env, from vectors, state numbers or pixels."""

    name: ClassVar[str] = "dqn"
    defaults: ClassVar[dict[str, Any]] = {
        "learning_rate": 1e-4,
        "buffer_size": 100_000,
        "learning_starts": 100,
        "batch_size": 32,
        "tau": 1.0,
        "train_freq": 4,
        "gradient_steps": 1,
        "target_update_interval": 10_000,
        "exploration_fraction": 0.1,
        "exploration_initial_eps": 1.0,
        "exploration_final_eps": 0.05,
        "max_grad_norm": 10.0,
        "policy_kwargs": {"net_arch": [64, 64]},
        "double_q": False,
        "dueling": False,
        "n_step": 1,
        "prioritized": False,
        "per_alpha": 0.6,
        "per_beta": 0.4,
        "loss": "huber",
        "save_replay_buffer": False,
        "n_envs": 1,
        "seeding": "lab",
    }

    @classmethod
    def check_env(cls, env: gym.Env) -> None:
        if not isinstance(env.action_space, spaces.Discrete):
            raise AgentError(f"DQN needs a Discrete action space; this env has {env.action_space}")

    def _check_hyperparameter(self, name: str, value: Any) -> Any:
        def whole(v: Any) -> bool:
            return not isinstance(v, bool) and isinstance(v, (int, np.integer))

        def number(v: Any) -> bool:
            return not isinstance(v, bool) and isinstance(v, (int, float, np.number)) and math.isfinite(v)

        if name in ("buffer_size", "batch_size", "train_freq", "target_update_interval", "n_step", "n_envs"):
            return whole_number(name, value, 1)
        if name == "learning_starts":
            return whole_number(name, value, 0)
        if name == "gradient_steps":  # SB3: -1 means as many gradient steps as env steps since the last
            try:
                return whole_number(name, value, -1)
            except AgentError:
                raise AgentError(
                    f"gradient_steps must be a whole number >= 0, or -1 (= train_freq); got {value!r}"
                ) from None
        if name in ("tau", "exploration_fraction", "exploration_initial_eps", "exploration_final_eps",
                    "per_alpha", "per_beta"):  # fmt: skip
            if not number(value) or not 0.0 <= value <= 1.0:
                raise AgentError(f"{name} must be a number in [0, 1]; got {value!r}")
            if name == "tau" and value == 0.0:
                raise AgentError("tau must be in (0, 1]: 0 would never update the target network")
            return float(value)
        if name == "max_grad_norm":
            if not number(value) or value <= 0:
                raise AgentError(f"max_grad_norm must be a positive number; got {value!r}")
            return float(value)
        if name == "learning_rate":
            try:
                rate, _ = zoo_schedule(value)
            except ValueError:
                rate = -1.0
            if not (math.isfinite(rate) and rate > 0):
                raise AgentError(f"learning_rate must be a positive number or 'lin_<number>'; got {value!r}")
            return value if isinstance(value, str) else float(value)
        if name in ("double_q", "dueling", "prioritized", "save_replay_buffer"):
            if not isinstance(value, (bool, np.bool_)):
                raise AgentError(f"{name} must be true or false; got {value!r}")
            return bool(value)
        if name == "seeding":
            return check_seeding(value)
        if name == "loss" and value not in ("huber", "mse"):
            raise AgentError(f"loss must be 'huber' or 'mse'; got {value!r}")
        if name == "policy_kwargs":
            if not isinstance(value, dict) or set(value) - {"net_arch"}:
                raise AgentError(
                    f"policy_kwargs takes net_arch only (e.g. dict(net_arch=[64, 64])); got {value!r}"
                )
            arch = value.get("net_arch", [64, 64])
            if not isinstance(arch, (list, tuple)) or not all(whole(w) and w > 0 for w in arch):
                raise AgentError(f"net_arch must be a list of layer widths; got {arch!r}")
            return {"net_arch": [int(w) for w in arch]}
        return value

    def _setup(self) -> None:
        hp = self.hyperparameters
        space = self.env.observation_space
        n_actions = int(self.env.action_space.n)
        arch = hp["policy_kwargs"]["net_arch"]
        with torch.random.fork_rng(devices=[]):  # seeded initial weights without touching torch's global RNG
            torch.manual_seed(self.seed)
            try:
                self.q_net = QNetwork(space, n_actions, arch, hp["dueling"])
            except ValueError as exc:
                raise AgentError(f"DQN cannot read this env's observations: {exc}") from None
            self.target_net = QNetwork(space, n_actions, arch, hp["dueling"])
        self.target_net.load_state_dict(self.q_net.state_dict())
        self.target_net.requires_grad_(False)
        self._params = list(self.q_net.parameters())
        # What _update_target copies (every few steps): the lists made once, as modules list them slowly
        self._target_pairs = (
            (list(self.target_net.parameters()), self._params),
            (list(self.target_net.buffers()), list(self.q_net.buffers())),
        )
        self._base_lr, self._lr_decays = zoo_schedule(hp["learning_rate"])
        self._epsilon = LinearSchedule(
            hp["exploration_initial_eps"], hp["exploration_final_eps"], hp["exploration_fraction"]
        )
        self._epsilon_at = self._epsilon.bind(None)
        sb3 = hp["seeding"] == "sb3"
        # SB3 builds a default Adam, which rounds differently from the fused kernel
        options = {} if sb3 else fast_adam_options()
        self.optimizer = torch.optim.Adam(self._params, lr=self._base_lr, **options)
        linears = self.q_net.linear_layers()
        # A plain MLP trains through the hand-written backward pass and one Adam step on flat buffers.
        self._flat = None if linears is None else FlatParameters(self._params, self.optimizer)
        self._flat_grads = None if self._flat is None else [self._flat.grad(p) for p in self._params]
        self._adam_kernel = adam_kernel(self.optimizer)
        target_linears = self.target_net.linear_layers() or []
        self._trainer = None if linears is None else MLPTrainer(linears, target_linears, self._flat)
        self._greedy = self.q_net.numpy_greedy()  # after the flat buffers: it keeps views of the weights
        if sb3:  # numpy rounds differently: near-equal Q-values could pick another action
            self._greedy = self.q_net.torch_greedy()
        shape = space.shape if space.shape else ()
        dtype = space.dtype if space.dtype is not None else np.int64
        if hp["prioritized"]:
            self.buffer: ReplayBuffer = PrioritizedReplayBuffer(
                hp["buffer_size"], shape, dtype, hp["n_step"], self.gamma, alpha=hp["per_alpha"]
            )
        else:
            self.buffer = ReplayBuffer(hp["buffer_size"], shape, dtype, hp["n_step"], self.gamma)
        self._sampler = np.random.Generator(np.random.PCG64(self.seed + 1))
        if hp["n_envs"] > 1 and hp["n_step"] > 1:
            raise AgentError(
                "n_step returns need one env (n_envs=1): the buffer folds in one stream of steps"
            )
        self._sb3: SB3Random | None = None
        if sb3:
            unlike = [f"{k}={hp[k]!r}" for k, v in SB3_SEEDING_NEEDS.items() if hp[k] != v]
            if unlike:
                raise AgentError(
                    "seeding='sb3' draws stable-baselines3's random numbers for one env and uniform "
                    f"1-step replay; this DQN has {', '.join(unlike)}"
                )
            self._sb3 = SB3Random(self.seed, self.env.action_space)
            self._sb3_seed_next_reset = True  # SB3 seeds the env at its first reset only
        self._steps: VectorSteps | None = None  # n_envs > 1: made on the first learn()
        self._n_actions = n_actions
        self._action_start = int(self.env.action_space.start)
        self._obs_shape = tuple(shape)

    # ----- acting -----

    def exploration_rate(self) -> float:
        """The current epsilon (see :meth:`exploration_rate_at`)."""
        return self.exploration_rate_at(self.num_timesteps)

    def exploration_rate_at(self, t: int) -> float:
        """SB3's linear epsilon: from initial to final over the first ``exploration_fraction`` of training."""
        return self._epsilon.value(t, self._total_timesteps)

    @torch.no_grad()
    def q_values(self, observation: Any) -> np.ndarray:
        """``Q(s, .)`` for one observation ``(n_actions,)`` or a batch ``(N, n_actions)``."""
        obs = np.asarray(observation)
        single = obs.shape == self._obs_shape
        batch = torch.as_tensor(obs[None] if single else obs)
        values = self.q_net(batch).numpy()
        return values[0] if single else values

    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray | int, None]:
        values = self.q_values(observation)
        greedy = values.argmax(axis=-1) + self._action_start
        if not deterministic:
            explore = self._sampler.random(np.shape(greedy)) < self.exploration_rate()
            random_actions = (
                self._sampler.integers(0, self._n_actions, size=np.shape(greedy)) + self._action_start
            )
            greedy = np.where(explore, random_actions, greedy)
        return (int(greedy), None) if np.ndim(greedy) == 0 else (greedy, None)

    # ----- learning -----

    def _start_learning(self, total_timesteps: int) -> None:
        self._epsilon_at = self._epsilon.bind(total_timesteps)

    def _reset_seed(self, episode: int) -> int | None:
        if self._sb3 is None:
            return super()._reset_seed(episode)
        seed = self.seed if self._sb3_seed_next_reset else None
        self._sb3_seed_next_reset = False
        return seed

    def learn(
        self, total_timesteps: int, callback: Callback | None = None, reset_num_timesteps: bool = True
    ) -> Self:
        """As :meth:`Agent.learn`; with ``n_envs > 1`` the steps come from that many copies of the env
        in a vector env, with SB3's meaning of the step counts: ``train_freq`` and
        ``target_update_interval // n_envs`` count steps of all copies at once, ``gradient_steps=-1``
        is one per transition collected. (Exact resume holds for ``n_envs=1``.)"""
        if self.hyperparameters["n_envs"] == 1:
            return super().learn(total_timesteps, callback, reset_num_timesteps)
        total = check_total_timesteps(total_timesteps)
        n = self.hyperparameters["n_envs"]
        if self._steps is None:
            self._steps = VectorSteps(self, make_vector_env(self.env, n))
        if reset_num_timesteps:
            self.num_timesteps = self.num_episodes = 0
            self._steps.obs = None
        self._total_timesteps = total
        self._start_learning(total)
        self._learn_from_copies(self._steps, total, callback)
        return self

    def _learn_from_copies(self, steps: VectorSteps, total: int, callback: Callback | None) -> None:
        hp = self.hyperparameters
        n, train_freq = hp["n_envs"], hp["train_freq"]
        gradient_steps = hp["gradient_steps"] if hp["gradient_steps"] >= 0 else train_freq * n
        target_every = max(hp["target_update_interval"] // n, 1)
        rng, calls = self._sampler, 0
        while self.num_timesteps < total:
            obs = np.array(steps.obs if steps.obs is not None else steps.reset())
            t = self.num_timesteps
            explore = rng.random(n) < (1.0 if t < hp["learning_starts"] else self._epsilon_at(t))
            actions = rng.integers(0, self._n_actions, size=n)
            if not explore.all():
                actions = np.where(explore, actions, self.q_values(obs).argmax(axis=-1))
            step = steps.step(actions + self._action_start)
            for i in np.flatnonzero(step.valid):
                self.buffer.add(
                    obs[i],
                    actions[i],
                    step.rewards[i],
                    step.next_obs[i],
                    step.terminated[i],
                    step.truncated[i],
                )
            calls += 1
            if steps.report(step, callback):
                return
            if self.num_timesteps > hp["learning_starts"] and calls % train_freq == 0:
                self._train(gradient_steps, self.num_timesteps)
            if calls % target_every == 0:
                self._update_target()

    def _run_episode(self, observation: Any, max_steps: int) -> tuple[float, int, bool, bool]:
        hp = self.hyperparameters
        step, add, greedy, start = self.env.step, self.buffer.add, self._greedy, self._action_start
        epsilon_at = self._epsilon_at
        if self._sb3 is not None:
            coin, random_action = self._sb3.coin, self._sb3.random_action
        else:
            coin, n_actions = self._stream.draw, self._n_actions

            def random_action() -> int:
                return int(coin() * n_actions)

        learning_starts, train_freq, target_every = (
            hp["learning_starts"],
            hp["train_freq"],
            hp["target_update_interval"],
        )
        gradient_steps = hp["gradient_steps"] if hp["gradient_steps"] >= 0 else train_freq
        self.buffer.start_episode()
        episode_return = 0.0
        t = self.num_timesteps
        for i in range(max_steps):
            if t < learning_starts or coin() < epsilon_at(t):  # SB3: random actions until learning starts
                action = random_action()
            elif greedy is not None:
                action = greedy(observation)
            else:
                action = int(self.q_values(observation).argmax())
            next_observation, reward, terminated, truncated, _ = step(action + start)
            episode_return += float(reward)
            add(observation, action, reward, next_observation, terminated, truncated)
            t += 1
            if t > learning_starts and t % train_freq == 0:
                self._train(gradient_steps, t)
            if t % target_every == 0:
                self._update_target()
            if terminated or truncated:
                return episode_return, i + 1, terminated, True
            observation = next_observation
        return episode_return, max_steps, False, False

    def _update_target(self) -> None:
        tau = self.hyperparameters["tau"]
        (targets, onlines), (target_buffers, online_buffers) = self._target_pairs
        with torch.no_grad():
            if tau == 1.0:
                torch._foreach_copy_(targets, onlines)
            else:
                torch._foreach_lerp_(targets, onlines, tau)  # target + tau * (online - target)
            if target_buffers:
                torch._foreach_copy_(target_buffers, online_buffers)

    def _train(self, gradient_steps: int, t: int) -> None:
        hp = self.hyperparameters
        batch_size = hp["batch_size"]
        buffer = self.buffer
        if len(buffer) < batch_size or gradient_steps == 0:
            return
        total = self._total_timesteps
        if self._lr_decays:  # rl-zoo's "lin_<x>": from x to 0 over training
            rate = LinearSchedule(self._base_lr, 0.0, 1.0).value(t, total)
            for group in self.optimizer.param_groups:
                group["lr"] = rate
        huber, double_q = hp["loss"] == "huber", hp["double_q"]
        q_net, target_net, trainer = self.q_net, self.target_net, self._trainer
        prioritized = isinstance(buffer, PrioritizedReplayBuffer)
        beta = hp["per_beta"]
        if prioritized and total:  # annealed to 1 over training, as in Schaul et al.
            beta += (1.0 - beta) * min(1.0, t / total)
        targets = None
        if not prioritized:  # every mini-batch of the burst in one draw and one gather
            if self._sb3 is not None:
                index = self._sb3.batch_indices(len(buffer), batch_size, gradient_steps)
            else:
                index = buffer.sample_indices((gradient_steps, batch_size), self._sampler)
            batches = [torch.from_numpy(a) for a in buffer.gather(index)]
            if not double_q:  # the target network is fixed during a burst: all its values in one pass
                _, _, rewards, next_obs, discounts = batches
                with torch.no_grad():
                    flat = next_obs.reshape(gradient_steps * batch_size, *next_obs.shape[2:])
                    net = trainer.target_values if trainer else target_net
                    best = torch.cat(
                        [net(flat[i : i + 1024]).max(dim=1).values for i in range(0, len(flat), 1024)]
                    )
                    targets = rewards + discounts * best.view(gradient_steps, batch_size)
        weights = None
        for g in range(gradient_steps):
            if prioritized:
                index = buffer.sample_indices(batch_size, self._sampler)
                obs, actions, rewards, next_obs, discounts = (
                    torch.from_numpy(a) for a in buffer.gather(index)
                )
                weights = torch.from_numpy(buffer.weights(index, beta))
            else:
                obs, actions, rewards, next_obs, discounts = (b[g] for b in batches)
            if targets is not None:
                target = targets[g]
            else:
                with torch.no_grad():
                    next_target = target_net(next_obs)
                    if double_q:
                        best = q_net(next_obs).argmax(dim=1, keepdim=True)
                        next_value = next_target.gather(1, best).squeeze(1)
                    else:
                        next_value = next_target.max(dim=1).values
                    target = rewards + discounts * next_value
            if trainer is not None:
                error = trainer.backward(obs, actions, target, huber, weights)
            else:
                self.optimizer.zero_grad(set_to_none=True)
                predicted = q_net(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
                error = predicted - target
                MLPTrainer.loss(error, huber, weights).backward()
                error = error.detach()
            self._clip_and_step(error, t, huber, weights)
            if prioritized:
                buffer.update_priorities(index, error.numpy())

    def _clip_and_step(self, error: torch.Tensor, t: int, huber: bool, weights: torch.Tensor | None) -> None:
        """Clip the gradient norm to max_grad_norm (as ``clip_grad_norm_``) and step, unless something is
        not finite: then stop before the step, so the network keeps its last good weights."""
        flat = self._flat
        grads = [p.grad for p in self._params] if self._flat_grads is None else self._flat_grads
        norm = total_grad_norm(grads)
        if not np.isfinite(norm.numpy() + np.add.reduce(error.numpy())):
            loss = MLPTrainer.loss(error, huber, weights).item()
            raise AgentError(
                f"non-finite loss ({loss}) at step {t}: lower learning_rate or check the rewards "
                "and observations (the network keeps its last good weights)"
            )
        scale = float(clip_coefficient(norm, self.hyperparameters["max_grad_norm"]))
        if flat is None:
            torch._foreach_mul_(grads, scale)
            self.optimizer.step()
        else:  # the same arithmetic as above in two calls: torch.optim's per-step overhead is a
            flat.grads.mul_(scale)  # large share of a step for networks this small
            flat.adam_step(self._adam_kernel)

    # ----- checkpoints: weights, target and optimizer state as plain arrays -----

    def _checkpoint_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"q.{k}": v.numpy().copy() for k, v in self.q_net.state_dict().items()}
        arrays.update({f"target.{k}": v.numpy().copy() for k, v in self.target_net.state_dict().items()})
        for i, state in self.optimizer.state_dict()["state"].items():
            for key, value in state.items():
                arrays[f"adam.{i}.{key}"] = np.array(value.numpy() if torch.is_tensor(value) else value)
        arrays["sampler"] = pcg_state_array(self._sampler)
        if self._sb3 is not None:
            arrays.update(self._sb3.state_arrays("sb3"))
        if self.hyperparameters["save_replay_buffer"]:
            arrays.update({f"buffer.{k}": v for k, v in self.buffer.state_arrays().items()})
        return arrays

    def _restore_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        for prefix, net in (("q.", self.q_net), ("target.", self.target_net)):
            saved = {k[len(prefix) :]: torch.as_tensor(v) for k, v in arrays.items() if k.startswith(prefix)}
            expected = net.state_dict()
            if set(saved) != set(expected) or any(saved[k].shape != expected[k].shape for k in expected):
                raise AgentError(
                    "the checkpoint's network does not fit this DQN (another net_arch, dueling setting or "
                    "observation space); load it with the hyperparameters it was saved with"
                )
            net.load_state_dict(saved)  # copies into the existing tensors: the numpy views stay valid
        state = self.optimizer.state_dict()
        params = state["param_groups"][0]["params"]
        try:
            state["state"] = {
                i: {k: torch.as_tensor(arrays[f"adam.{i}.{k}"]) for k in ("step", "exp_avg", "exp_avg_sq")}
                for i in params
                if f"adam.{i}.exp_avg" in arrays
            }
        except KeyError as exc:
            raise AgentError(f"the checkpoint's optimizer state is incomplete (no {exc})") from None
        self.optimizer.load_state_dict(state)
        if self._flat is not None:  # the loaded moments back into the flat buffers the step uses
            self._flat.bind_optimizer_state()
        if "sampler" in arrays:
            set_pcg_state(self._sampler, arrays["sampler"])
        if self._sb3 is not None and "sb3.mt19937" in arrays:
            self._sb3.restore(arrays, "sb3")
        if "buffer.obs" in arrays:
            saved_buffer = {k[len("buffer.") :]: v for k, v in arrays.items() if k.startswith("buffer.")}
            if saved_buffer["obs"].shape[1:] != self.buffer.obs.shape[1:]:
                raise AgentError("the checkpoint's replay buffer holds observations of another shape")
            self.buffer.restore(saved_buffer)
