"""Named reward scorers of a finished sentence, combined with weights.

Terminal scorers (paid on the step that emits the end token, each in [0, 1]):

- ``task``: the task succeeded (arithmetic right, sentiment positive, word reversed, ...);
- ``grammatical``: the whole sentence is in the language;
- ``keyword``: the answer contains ``keyword``;
- ``length``: ``1 - |answer length - target_length| / target_length``, floored at 0;
- any callable ``scorers={"name": f}`` handed to the environment, ``f(text) -> float`` (learned
  reward models live above ``envs/`` and come in this way).

The dense scorer ``viability`` pays ``-1`` on the step whose token leaves no grammatical way to
go on (a potential-based shaping: the potential is 1 while the prefix is viable).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from envs.errors import TextError
from envs.text.languages import GENERIC_TASKS, Language

BUILT_IN = ("task", "grammatical", "keyword", "length", "viability")


@dataclass(frozen=True)
class Ending:
    """A finished episode as the scorers see it: token ids without the end token."""

    prompt: tuple[int, ...]
    answer: tuple[int, ...]
    grammatical: bool


class RewardSpec:
    """Weights of named scorers for one language and task, validated."""

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
            if not isinstance(w, (int, float)) or w != w or abs(w) == float("inf"):
                raise TextError(f"the weight of scorer {name!r} must be a finite number; got {w!r}")
        self.weights = {k: float(v) for k, v in weights.items() if v != 0}
        uses = set(self.weights) | {task}
        self.keyword = None
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

    def success(self, e: Ending) -> bool:
        if self.task == "keyword":
            return self.keyword in e.answer and (e.grammatical or self.language.pcfg is None)
        if self.task == "length":
            return len(e.answer) == self.target_length
        return self.language.success(self.task, e.prompt, e.answer, e.grammatical)

    def score(self, name: str, e: Ending) -> float:
        if name == "task":
            return float(self.success(e))
        if name == "grammatical":
            return float(e.grammatical)
        if name == "keyword":
            return float(self.keyword in e.answer)
        if name == "length":
            assert self.target_length is not None
            return max(0.0, 1.0 - abs(len(e.answer) - self.target_length) / self.target_length)
        return float(self.custom[name](self.language.text(e.prompt + e.answer)))

    def final_reward(self, e: Ending) -> float:
        """The weighted sum of the terminal scorers."""
        return sum(w * self.score(name, e) for name, w in self.terminal.items())


def task_names(language: Language) -> Sequence[str]:
    return (*language.tasks, *(t for t in GENERIC_TASKS if t not in language.tasks))
