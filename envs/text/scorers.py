"""Named reward scorers of finished sentences, combined with weights, for a batch at once.

Terminal scorers (paid on the step that emits the end token, each in [0, 1]):

- ``task``: the task succeeded: ``grammatical``; ``positive`` / ``negative`` (grammatical, and the
  words' summed sentiment, prompt included, above / below 0); ``keyword`` (the answer contains
  ``keyword``, and is grammatical where the language has a grammar); ``length`` (the answer has
  ``target_length`` tokens); or the one right answer (arithmetic, copy, reverse);
- ``grammatical``: the whole sentence is in the language;
- ``keyword``: the answer contains ``keyword``;
- ``length``: ``1 - |answer length - target_length| / target_length``, floored at 0;
- any callable ``scorers={"name": f}`` handed to the environment, ``f(text) -> float``, a finite
  number (else a :class:`TextError` names the scorer); learned reward models live above ``envs/``
  and come in this way.

The dense scorer ``viability`` pays minus its weight on the step whose token leaves no grammatical
way to go on (a potential-based shaping: the potential is 1 while the prefix is viable).

Sentences come as rows of a token buffer, ``(n, width)``: the prompt, the answer and the end token,
padded with ``V``; the single environment passes one row, the batched one all that ended.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from envs.errors import TextError
from envs.text.languages import GENERIC_TASKS, Language

BUILT_IN = ("task", "grammatical", "keyword", "length", "viability")


class RewardSpec:
    """Weights of named scorers for one language, task and prompt set, validated."""

    def __init__(
        self,
        language: Language,
        task: str,
        weights: Mapping[str, float],
        keyword: str | None,
        target_length: int | None,
        scorers: Mapping[str, Callable[[str], float]] | None,
    ) -> None:
        self.language, self.task = language, task
        self.custom = dict(scorers or {})
        for name, f in self.custom.items():
            if name in BUILT_IN or not callable(f):
                raise TextError(
                    f"scorer {name!r} must be a callable f(text) -> float not named like a built-in one"
                )
        known = (*BUILT_IN, *self.custom)
        for name, w in weights.items():
            if name not in known:
                raise TextError(f"unknown scorer {name!r} in reward=; choose from: {', '.join(known)}")
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not np.isfinite(w):
                raise TextError(f"the weight of scorer {name!r} must be a finite number; got {w!r}")
        self.weights = {k: float(v) for k, v in weights.items() if v != 0}
        uses = set(self.weights) | {task}
        self.keyword = -1
        if keyword is not None:
            ids = language.encode(keyword, "keyword")
            if len(ids) != 1:
                raise TextError(f"keyword {keyword!r} must be one token; it is {len(ids)}")
            self.keyword = ids[0]
        elif "keyword" in uses:
            raise TextError("the keyword task and scorer need keyword= (a token of the vocabulary)")
        if target_length is not None and (
            isinstance(target_length, bool) or not isinstance(target_length, int) or target_length < 1
        ):
            raise TextError(f"target_length must be a positive integer; got {target_length!r}")
        if target_length is None and "length" in uses:
            raise TextError("the length task and scorer need target_length= (tokens in the answer)")
        self.target_length = target_length
        self.viability = self.weights.get("viability", 0.0)
        self.terminal = {k: w for k, w in self.weights.items() if k != "viability"}
        v = len(language.vocabulary)
        self.sentiment = np.zeros(v + 1, dtype=np.int64)  # the padding id V counts 0
        if len(language.sentiment) == v:
            self.sentiment[:v] = language.sentiment
        self.expected: np.ndarray | None = None

    def bind(self, prompts: Sequence[tuple[int, ...]], width: int) -> None:
        """Prepare the right answers of an exact-answer task: one padded row per prompt."""
        answers = [self.language.answer(self.task, p) for p in prompts]
        if all(a is None for a in answers):
            return
        v = len(self.language.vocabulary)
        self.expected = np.full((len(prompts), width + 1), v, dtype=np.int64)
        for i, (p, a) in enumerate(zip(prompts, answers, strict=True)):
            row = (*p, *(a or ()), self.language.vocabulary.eos)
            self.expected[i, : min(len(row), width + 1)] = row[: width + 1]

    def finals(
        self,
        tokens: np.ndarray,
        prompt_length: np.ndarray,
        length: np.ndarray,
        grammatical: np.ndarray,
        prompt: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The terminal reward and task success of ``n`` ended sentences.

        ``tokens`` ``(n, width)``: prompt, answer, end token, padding; ``length`` counts all but the
        padding; ``prompt`` is each sentence's prompt index (for exact answers).
        """
        cols = np.arange(tokens.shape[1])
        answer_len = length - 1 - prompt_length
        scores: dict[str, np.ndarray] = {"grammatical": grammatical.astype(np.float64)}
        need = set(self.terminal) | {"task"}
        if "keyword" in need or self.task == "keyword":
            answer = (cols >= prompt_length[:, None]) & (cols < (length - 1)[:, None])
            scores["keyword"] = ((tokens == self.keyword) & answer).any(axis=1).astype(np.float64)
        if "length" in need and self.target_length is not None:
            t = self.target_length
            scores["length"] = np.maximum(0.0, 1.0 - np.abs(answer_len - t) / t)
        success = self._success(tokens, answer_len, grammatical, prompt, scores)
        scores["task"] = success.astype(np.float64)
        reward = np.zeros(len(tokens))
        for name, w in self.terminal.items():
            if name in self.custom:
                f, lang = self.custom[name], self.language
                values = [
                    _score(name, f, lang.text(row[: n - 1].tolist()))
                    for row, n in zip(tokens, length, strict=True)
                ]
                reward += w * np.asarray(values)
            else:
                reward += w * scores[name]
        return reward, success

    def _success(
        self,
        tokens: np.ndarray,
        answer_len: np.ndarray,
        grammatical: np.ndarray,
        prompt: np.ndarray,
        scores: dict[str, np.ndarray],
    ) -> np.ndarray:
        task = self.task
        if task == "grammatical":
            return grammatical.copy()
        if task in ("positive", "negative"):
            mood = self.sentiment[tokens].sum(axis=1)
            return grammatical & (mood > 0 if task == "positive" else mood < 0)
        if task == "keyword":
            has = scores["keyword"] > 0
            return has & grammatical if self.language.pcfg is not None else has
        if task == "length":
            return answer_len == self.target_length
        assert self.expected is not None, "bind() the prompts first"
        return (tokens == self.expected[prompt, : tokens.shape[1]]).all(axis=1)


def _score(name: str, f: Callable[[str], float], text: str) -> float:
    """A custom scorer's value of ``text`` as a finite float, or a :class:`TextError` naming the scorer
    (a NaN or infinite reward would spoil every return it enters, silently)."""
    value = f(text)
    try:
        number = float(value)  # numpy and torch scalars convert too
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number):
        raise TextError(f"scorer {name!r} returned {value!r} for {text!r}; a scorer returns a finite number")
    return number


def task_names(language: Language) -> Sequence[str]:
    return (*language.tasks, *(t for t in GENERIC_TASKS if t not in language.tasks))
