"""``lab/TextGen-v0``: text generation posed as an MDP, one token per step."""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from gymnasium import spaces

from envs.arguments import flag
from envs.errors import EnvError, TextError
from envs.grid import rng
from envs.grid.world import check_action
from envs.rendering import FrameRendering
from envs.text.automaton import DEAD, PrefixAutomaton
from envs.text.languages import Language, make_language
from envs.text.scorers import RewardSpec, task_names

if TYPE_CHECKING:
    from envs.grid.model import TransitionModel
    from envs.text.painter import Picker, TextPainter

OBS_TYPES = ("tokens", "index")


class TextGenEnv(FrameRendering):
    """Build a sentence token by token; the reward scores the finished text.

    ## Description
    A state is the prompt and the tokens generated so far; an action is the next token. Every
    language has an exact verifier and, where it has a grammar, exact probabilities: a prefix
    parser (``envs.text.automaton``) knows after every token which tokens can still lead to a
    grammatical sentence that ends within ``max_length``, which gives the action masks.

    ## Action Space
    ``Discrete(V)``: a token id of ``self.language.vocabulary``; id 0 is ``<eos>``, which ends the
    sentence.

    ## Observation Space
    ``obs_type="tokens"``: ``Dict(tokens=Box(0, V, (P + max_length,), int64), length=Box(0, P +
    max_length, (1,), int64))``: the prompt (at most ``P`` tokens) and the generated tokens, padded
    with ``V`` (no token), and how many slots are filled. ``obs_type="index"`` (finite versions
    only): ``Discrete(n_states)``, the node of the prefix tree that :meth:`transition_model` numbers.

    ## Starting State
    A prompt drawn uniformly from the task's prompts in ``split`` (or the ``prompts`` given).

    ## Rewards
    ``reward={"task": 1.0}`` by default: weights of named scorers (see ``envs.text.scorers``):
    ``task``, ``grammatical``, ``keyword``, ``length`` (paid at the end token), ``viability``
    (dense: minus its weight on the token that makes the prefix ungrammatical) and any callables
    passed as ``scorers=``.

    ## Episode End
    Terminated on ``<eos>``; truncated after ``max_length`` tokens without it (no terminal reward).

    ## Information
    ``info["action_mask"]`` (bool ``(V,)``, with ``action_mask=True``, the default): the tokens that
    keep the sentence grammatical and able to end in time; the same as :meth:`action_masks`.
    On ``<eos>``: ``info["success"]`` and ``info["grammatical"]``.

    ## Arguments
    ``language`` (``"english"``, ``"dyck"``, ``"arithmetic"``, ``"copy"``, a ``.pcfg`` file or
    ``"text:path"``), ``task`` (the language's first by default), ``reward``, ``max_length=12``,
    ``prompts`` (strings) or ``split="train"``, ``keyword``, ``target_length``, ``scorers``,
    ``action_mask=True``, ``obs_type="tokens"``, ``render_mode``; other keywords go to the language
    (``max_operand=``, ``alphabet=``, ``max_word=``, ``tokenizer=``, ``vocab_size=``, ``max_vocabulary=``).

    ## Version History
    * v0: initial version.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["human", "rgb_array", "ansi"], "render_fps": 4}
    max_index_states: ClassVar[int] = 200_000

    def __init__(
        self,
        language: str | Path | Language = "english",
        task: str | None = None,
        *,
        reward: Mapping[str, float] | None = None,
        max_length: int = 12,
        prompts: Sequence[str] | None = None,
        split: str = "train",
        keyword: str | None = None,
        target_length: int | None = None,
        scorers: Mapping[str, Callable[[str], float]] | None = None,
        action_mask: bool = True,
        obs_type: str = "tokens",
        render_mode: str | None = None,
        **language_options: Any,
    ) -> None:
        modes = self.metadata["render_modes"]
        if render_mode is not None and render_mode not in modes:
            raise EnvError(f"unknown render_mode {render_mode!r}; choose one of: {', '.join(modes)}")
        if obs_type not in OBS_TYPES:
            raise TextError(f"unknown obs_type {obs_type!r}; choose one of: {', '.join(OBS_TYPES)}")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise TextError(f"max_length must be a positive integer; got {max_length!r}")
        try:
            self.language = lang = make_language(language, **language_options)
        except TypeError as e:
            bad = re.search(r"unexpected keyword argument '(\w+)'", str(e))
            ours = [name for name in inspect.signature(TextGenEnv).parameters if name != "language_options"]
            close = difflib.get_close_matches(bad.group(1), ours, n=1) if bad else []
            hint = f" (did you mean the env's {close[0]!r}?)" if close else ""
            raise TextError(f"bad option for language {language!r}: {e}{hint}") from None
        tasks = task_names(lang)
        self.task = tasks[0] if task is None else task
        if self.task not in tasks:
            raise TextError(f"{lang.name} has no task {self.task!r}; choose one of: {', '.join(tasks)}")
        self.rewards = RewardSpec(lang, self.task, reward or {"task": 1.0}, keyword, target_length, scorers)
        self.vocabulary = vocab = lang.vocabulary
        self.n_tokens = len(vocab)
        self.eos = vocab.eos
        self.max_length = max_length
        self.automaton = PrefixAutomaton(lang.pcfg, vocab, max_length)
        self.action_mask = flag("action_mask", action_mask)
        if prompts is not None:
            if isinstance(prompts, str) or not prompts:
                raise TextError("prompts= takes a non-empty list of strings")
            self.prompts = [lang.encode(p, "prompt") for p in prompts]
        else:
            self.prompts = lang.prompts(split)
        if not self.prompts:
            raise TextError(f"the {split} split of {lang.name} has no prompts")
        self.prompt_states = [self._prompt_state(p) for p in self.prompts]
        self.max_prompt = max(len(p) for p in self.prompts)
        self.width = self.max_prompt + max_length
        self.rewards.bind(self.prompts, self.width)
        self.obs_type = obs_type
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(self.n_tokens)
        if obs_type == "tokens":
            self.observation_space = spaces.Dict(
                {
                    "tokens": spaces.Box(0, self.n_tokens, (self.width,), np.int64),
                    "length": spaces.Box(0, self.width, (1,), np.int64),
                }
            )
        else:
            self.observation_space = spaces.Discrete(self.n_index_states())
        # index observations: node = offsets[k] + the k generated tokens read as a base-V number
        self.offsets = [(self.n_tokens**k - 1) // (self.n_tokens - 1) for k in range(max_length + 2)]
        self.per_prompt = self.offsets[-1]

        self._base_key: int | None = None
        self._episode = 0
        self._episode_key = 0
        self._prompt_index = 0
        self._tokens = np.full(self.width, self.n_tokens, dtype=np.int64)
        self._length = 0
        self._generated = 0
        self._state = self.automaton.start
        self._node = 0
        self._done = True
        self._dead_from = None
        self._verdict = ""
        self._mask = np.ones(self.n_tokens, dtype=bool)
        self._return = 0.0
        self._painter: TextPainter | None = None

    def _prompt_state(self, prompt: tuple[int, ...]) -> int:
        a = self.automaton
        if self.language.prompt_in_grammar:
            s, text = a.run(prompt), self.language.text(prompt)
            if s == DEAD:
                raise TextError(f"prompt {text!r} starts no sentence of {self.language.name}")
            needs = f"prompt {text!r} needs {a.min_left[s]} more words"
        else:  # the answer is a sentence of the grammar on its own
            s = a.start
            needs = f"an answer needs {a.min_left[s]} token(s)"
        if self.action_mask and a.min_left[s] + 1 > self.max_length:
            raise TextError(f"{needs} and the end token: over max_length={self.max_length}")
        return s

    # ----- the finite version -----

    def n_index_states(self) -> int:
        """Nodes of the prefix tree: prompts x every token string of at most ``max_length`` tokens."""
        v, n = self.n_tokens, self.max_length
        per_prompt = (v ** (n + 1) - 1) // (v - 1) if v > 1 else n + 1
        total = len(self.prompts) * per_prompt
        if total > self.max_index_states:
            raise TextError(
                f"the prefix tree has {total} nodes ({len(self.prompts)} prompts, {v} tokens, "
                f"max_length={n}), "
                f"over {self.max_index_states}: index observations and transition_model() need a finite "
                "version: lower max_length or use a smaller vocabulary or fewer prompts"
            )
        return total

    def transition_model(self) -> TransitionModel:
        """The exact MDP over the prefix tree (small vocabularies and lengths only)."""
        from envs.text.model import prefix_tree_model

        return prefix_tree_model(self)

    # ----- the MDP -----

    @property
    def text(self) -> str:
        """The prompt and the tokens generated so far (without the end token)."""
        ids = self._tokens[: self._length].tolist()
        return self.language.text([t for t in ids if t != self.eos])

    def action_masks(self) -> np.ndarray:
        """The tokens allowed now (all of them with ``action_mask=False``); sb3-contrib's hook."""
        return self._mask.copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self._base_key, self._episode, self._episode_key = rng.next_episode(
            seed, self._base_key, self._episode, self.np_random
        )
        n = len(self.prompts)
        i = 0 if n == 1 else int(rng.uniform(self._episode_key, 0) * n)
        self._prompt_index = i
        prompt = self.prompts[i]
        self._tokens[:] = self.n_tokens
        self._tokens[: len(prompt)] = prompt
        self._length = len(prompt)
        self._generated = 0
        self._state = self.prompt_states[i]
        self._node = 0
        self._done = False
        self._dead_from: int | None = None
        self._verdict = ""
        self._return = 0.0
        info: dict[str, Any] = {}
        if self.action_mask:
            self._mask = self.automaton.mask(self._state, self.max_length).copy()
            info["action_mask"] = self._mask
        if self.render_mode == "human":
            self.render()
        return self._observation(), info

    def _observation(self) -> Any:
        if self.obs_type == "index":
            return self._prompt_index * self.per_prompt + self._node
        return {"tokens": self._tokens.copy(), "length": np.array([self._length], dtype=np.int64)}

    def outcome(
        self, prompt: int, generated: Sequence[int], state: int, token: int
    ) -> tuple[int, float, bool, dict[str, Any]]:
        """What emitting ``token`` after prompt number ``prompt`` and ``generated`` (parser ``state``)
        does: the next parser state, the reward, whether the sentence ended, and the end's
        information. :meth:`step` and :meth:`transition_model` follow this one rule; the batched
        env applies the same rule to arrays."""
        automaton = self.automaton
        reward = 0.0
        info: dict[str, Any] = {}
        if token == self.eos:
            ids = (*self.prompts[prompt], *generated, self.eos)
            row = np.full((1, self.width), self.n_tokens, dtype=np.int64)
            row[0, : len(ids)] = ids
            grammatical = bool(automaton.complete[state])
            final, success = self.rewards.finals(
                row,
                np.array([len(self.prompts[prompt])]),
                np.array([len(ids)]),
                np.array([grammatical]),
                np.array([prompt]),
            )
            reward += float(final[0])
            info["success"] = bool(success[0])
            info["grammatical"] = grammatical
            return state, reward, True, info
        nxt = int(automaton.next[state, token])
        if not automaton.expanded[nxt]:
            automaton.expand(nxt)
        if nxt == DEAD and state != DEAD and self.rewards.viability:
            reward -= self.rewards.viability
        return nxt, reward, False, info

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        n_tokens = self.n_tokens
        a = action if type(action) is int and 0 <= action < n_tokens else check_action(action, n_tokens)
        if self._done:
            raise RuntimeError("call reset() before step() (the episode has ended, or never began)")
        s = self._state
        self._tokens[self._length] = a
        self._length += 1
        self._generated += 1
        if self.obs_type == "index":
            k = self._generated
            self._node = self.offsets[k] + (self._node - self.offsets[k - 1]) * n_tokens + a
        p = self._prompt_index
        start = len(self.prompts[p])
        generated = self._tokens[start : self._length - 1].tolist() if a == self.eos else ()
        self._state, reward, terminated, info = self.outcome(p, generated, s, a)
        if self._state == DEAD and s != DEAD:
            self._dead_from = self._generated - 1
        if terminated:
            self._verdict = (
                f"{'grammatical' if info['grammatical'] else 'not grammatical'}, "
                f"task {self.task}: {'succeeded' if info['success'] else 'failed'}"
            )
        elif self._generated >= self.max_length:
            self._verdict = f"unfinished after {self.max_length} tokens (truncated)"
        truncated = not terminated and self._generated >= self.max_length
        self._done = terminated or truncated
        if self.action_mask:
            self._mask = self.automaton.mask(self._state, self.max_length - self._generated).copy()
            info["action_mask"] = self._mask
        self._return += reward
        if self.render_mode == "human":
            self.render()
        return self._observation(), reward, terminated, truncated, info

    # ----- rendering -----

    def status_line(self) -> str:
        prompt = self.language.text(self.prompts[self._prompt_index])
        return (
            f"{self.language.name} / {self.task}   prompt {prompt!r}   "
            f"step {self._generated}/{self.max_length}   return {self._return:g}"
        )

    def ansi(self) -> str:
        """The text so far, ``|`` marking where the prompt ends, and a status line."""
        ids = [t for t in self._tokens[: self._length].tolist()]
        p = len(self.prompts[self._prompt_index])
        done = bool(ids) and len(ids) > p and ids[-1] == self.eos
        body = self.language.text(ids[p:][: -1 if done else None])
        head = self.language.text(ids[:p])
        sep = self.language.separator
        text = (head + sep + "| " if head else "| ") + body + (" <eos>" if done else " _")
        return text + "\n" + self.status_line() + "\n"

    def painter(self) -> TextPainter:
        if self._painter is None:
            from envs.text.painter import TextPainter

            self._painter = TextPainter()
        return self._painter

    def frame(self, picker: Picker | None = None) -> np.ndarray:
        """The current frame as an RGB array: the sentence, the valid next tokens (or ``picker``'s
        page of tokens: ``lab play``), the return at the end."""
        p = len(self.prompts[self._prompt_index])
        ids = self._tokens[: self._length].tolist()
        done = len(ids) > p and ids[-1] == self.eos
        mask = self.automaton.mask(self._state, self.max_length - self._generated)
        probs = self.automaton.next_prob[self._state] if self.language.pcfg is not None else None
        valid = [
            (self.vocabulary.tokens[t], float(probs[t]) if probs is not None else None)
            for t in np.flatnonzero(mask)
        ]
        return self.painter().frame(
            prompt=self.vocabulary.decode(ids[:p]),
            generated=self.vocabulary.decode(ids[p:]),
            valid=[] if done or self._generated >= self.max_length else valid,
            title=f"{self.language.name} / {self.task}",
            step=f"{self._generated}/{self.max_length}",
            reward=self._return if done or self._generated >= self.max_length else None,
            dead_from=self._dead_from,
            verdict=self._verdict,
            picker=picker,
        )

    def window_lines(self) -> list[str]:
        """The status lines under the picture in a ``human`` window."""
        return [self.status_line()]
