"""A batched text environment: N copies of :class:`TextGenEnv` stepped with numpy array operations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from envs.errors import EnvError, InvalidActionError
from envs.grid import rng
from envs.seeding import SeededCopies
from envs.text.automaton import DEAD
from envs.text.env import TextGenEnv


class TextVectorEnv(SeededCopies):
    """N copies of one text environment in lockstep, reproducing N single ones exactly.

    Parser states, masks and token buffers are arrays; the automaton's tables are shared, so a
    step is a few gathers. Only copies that emit the end token call the (Python) terminal scorers.
    Prompts are drawn with the same counter-based random numbers as :class:`TextGenEnv`, so for the
    same seeds and actions it returns what a ``SyncVectorEnv`` of single environments returns:
    observations, rewards, flags and infos (``action_mask``; ``success`` and ``grammatical`` with
    their ``_`` masks on the end token). Autoreset is gymnasium's next-step convention;
    ``reset(seed=s)`` seeds copy ``i`` with ``s + i``, and ``reset(options={"reset_mask": mask})``
    starts only the copies ``mask`` marks.
    """

    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, env: TextGenEnv, num_envs: int, max_episode_steps: int | None = None) -> None:
        self._init_copies(num_envs, max_episode_steps)
        if env.render_mode is not None:
            raise EnvError(f"TextVectorEnv does not render; got render_mode={env.render_mode!r}")
        if env.obs_type != "tokens":
            raise EnvError(f"TextVectorEnv gives token observations; got obs_type={env.obs_type!r}")
        self.env = env
        n = self.num_envs
        # Truncated as a single env under gymnasium's TimeLimit: at its own max_length unless the
        # episode ended there, and at max_episode_steps whether it ended or not
        time_limit = env.max_length + 1 if max_episode_steps is None else int(max_episode_steps)
        self.limit, self._time_limit = min(env.max_length, time_limit), time_limit
        self.single_observation_space = env.observation_space
        self.single_action_space = env.action_space
        self.observation_space = batch_space(env.observation_space, n)
        self.action_space = batch_space(env.action_space, n)
        self.render_mode = None

        self._n_tokens = env.n_tokens
        self._prompt_len = np.array([len(p) for p in env.prompts], dtype=np.int64)
        self._prompt_tokens = np.full((len(env.prompts), env.width), env.n_tokens, dtype=np.int64)
        for i, p in enumerate(env.prompts):
            self._prompt_tokens[i, : len(p)] = p
        self._prompt_states = np.array(env.prompt_states, dtype=np.int64)

        self._tokens = np.zeros((n, env.width), dtype=np.int64)
        self._length = np.zeros(n, dtype=np.int64)
        self._generated = np.zeros(n, dtype=np.int64)
        self._state = np.zeros(n, dtype=np.int64)
        self._prompt = np.zeros(n, dtype=np.int64)
        self._needs_reset = np.zeros(n, dtype=bool)
        self._rows = np.arange(n)
        self._all = np.ones(n, dtype=bool)

    @classmethod
    def make(cls, num_envs: int = 1, max_episode_steps: int | None = None, **kwargs: Any) -> TextVectorEnv:
        """The ``vector_entry_point`` of ``lab/TextGen-v0``."""
        return cls(TextGenEnv(**kwargs), num_envs=num_envs, max_episode_steps=max_episode_steps)

    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        rows = self._reset_rows(options)
        self._seed_copies(seed, rows)
        fresh = self._rows if rows is None else rows  # the copies that start anew
        self._start(fresh)
        self._needs_reset[fresh] = False
        info = self._info(None)
        if rows is not None and "action_mask" in info:  # reset_mask: only those copies report
            reported = np.zeros(self.num_envs, dtype=bool)
            reported[rows] = True
            info["action_mask"][~reported] = False
            info["_action_mask"] = reported
        return self._observation(), info

    def _start(self, rows: np.ndarray) -> None:
        """Begin a new episode in copies ``rows`` (their episode numbers already set)."""
        n_prompts = len(self._prompt_len)
        if n_prompts == 1:  # nothing to draw
            prompt = np.zeros(len(rows), dtype=np.int64)
        else:
            keys = rng.episode_key_array(self._base[rows], self._episode[rows])
            draw = rng.uniform_array(keys, np.zeros(len(rows), dtype=np.int64))
            prompt = (draw * n_prompts).astype(np.int64)
        self._prompt[rows] = prompt
        self._tokens[rows] = self._prompt_tokens[prompt]
        self._length[rows] = self._prompt_len[prompt]
        self._generated[rows] = 0
        self._state[rows] = self._prompt_states[prompt]

    def _observation(self) -> dict[str, np.ndarray]:
        return {"tokens": self._tokens.copy(), "length": self._length[:, None].copy()}

    def _info(self, ended: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> dict[str, Any]:
        info: dict[str, Any] = {}
        if ended is not None:
            rows, success, grammatical = ended
            mask = np.zeros(self.num_envs, dtype=bool)
            mask[rows] = True
            info["success"] = np.zeros(self.num_envs, dtype=bool)
            info["success"][rows] = success
            info["_success"] = mask
            info["grammatical"] = np.zeros(self.num_envs, dtype=bool)
            info["grammatical"][rows] = grammatical
            info["_grammatical"] = mask.copy()
        if self.env.action_mask:
            info["action_mask"] = self.action_masks()
            info["_action_mask"] = self._all.copy()
        return info

    def action_masks(self) -> np.ndarray:
        """Every copy's allowed tokens, ``(num_envs, V)`` (all True with ``action_mask=False``)."""
        if not self.env.action_mask:
            return np.ones((self.num_envs, self._n_tokens), dtype=bool)
        return self.env.automaton.masks(self._state, self.env.max_length - self._generated)

    def _check_actions(self, actions: Any) -> np.ndarray:
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or actions.dtype.kind not in "iu":
            raise InvalidActionError(
                f"step() takes {self.num_envs} integer actions (shape ({self.num_envs},)); "
                f"got shape {actions.shape} of dtype {actions.dtype}"
            )
        bad = (actions < 0) | (actions >= self._n_tokens)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidActionError(
                f"action {actions[i]} of copy {i} is outside the action space Discrete({self._n_tokens})"
            )
        return actions.astype(np.int64, copy=False)

    def _truncated(self, eos: np.ndarray, generated: np.ndarray) -> np.ndarray:
        return (~eos & (generated >= self.limit)) | (generated >= self._time_limit)

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        self._check_started()
        actions = self._check_actions(actions)
        env, automaton = self.env, self.env.automaton
        n_tokens = self._n_tokens
        restart = np.flatnonzero(self._needs_reset)
        rows = self._rows if not len(restart) else np.flatnonzero(~self._needs_reset)
        acts = actions if not len(restart) else actions[rows]
        state = self._state[rows]
        length = self._length[rows]
        np.put(self._tokens, rows * self._tokens.shape[1] + length, acts)
        length += 1
        self._length[rows] = length
        generated = self._generated[rows] + 1
        self._generated[rows] = generated
        eos = acts == env.eos
        nxt = np.take(automaton.next, state * n_tokens + acts)  # the end token's column holds the state
        fresh = ~np.take(automaton.expanded, nxt)
        if fresh.any():
            for s in np.unique(nxt[fresh]).tolist():
                automaton.expand(s)
        part = np.zeros(len(rows))
        if env.rewards.viability:
            part[(nxt == DEAD) & (state != DEAD)] -= env.rewards.viability
        self._state[rows] = nxt
        ended = None
        if eos.any():
            at = np.flatnonzero(eos)
            done_rows = rows[at]
            grammatical = np.take(automaton.complete, state[at])
            prompt = self._prompt[done_rows]
            final, success = env.rewards.finals(
                self._tokens[done_rows], self._prompt_len[prompt], length[at], grammatical, prompt
            )
            part[at] += final
            ended = (done_rows, success, grammatical)
        if len(restart):
            reward = np.zeros(self.num_envs)
            reward[rows] = part
            terminated = np.zeros(self.num_envs, dtype=bool)
            terminated[rows] = eos
            truncated = np.zeros(self.num_envs, dtype=bool)
            truncated[rows] = self._truncated(eos, generated)
            self._episode[restart] += 1
            self._start(restart)
        else:
            reward, terminated, truncated = part, eos, self._truncated(eos, generated)
        self._needs_reset = terminated | truncated
        return self._observation(), reward, terminated, truncated, self._info(ended)
