"""The languages of the text environment: each with a vocabulary, prompts, tasks and an exact verifier.

- :class:`GrammarLanguage`: a PCFG file (``english``, ``dyck`` or a user's ``.pcfg``); the prompt is
  the start of the sentence, and the whole sentence must be in the language.
- :class:`ArithmeticLanguage`: prompts ``37+45=``, answers in digits; right or wrong exactly.
- :class:`CopyLanguage`: prompts ``abb|``, answers the word reversed (or copied).
- :class:`~envs.text.textfile.TextFileLanguage`: a user's text file, characters or subwords.

Prompts and corpus items fall into the train / validation / test split by a hash of their text
(80/10/10), so the splits are disjoint and the same on every machine.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

import numpy as np

from envs.errors import TextError
from envs.text.grammar import GRAMMARS, load_grammar, parse_grammar
from envs.text.pcfg import PCFG
from envs.text.vocabulary import Vocabulary

SPLITS = ("train", "validation", "test")
# Tasks every language has, scored on the answer: it contains ``keyword``; it has ``target_length`` tokens.
GENERIC_TASKS = ("keyword", "length")
MAX_PROMPTS = 1_000_000
"""Prompts an environment enumerates at most (an env keeps them all, with their prefix states)."""


def check_prompt_count(count: int, options: str, at_least: bool = False) -> None:
    """A :class:`TextError` when a language's options make over :data:`MAX_PROMPTS` prompts
    (``count`` of them, or at least that many)."""
    if count > MAX_PROMPTS:
        raise TextError(
            f"{options} makes {'over ' if at_least else ''}{count:,} prompts; an environment enumerates at "
            f"most {MAX_PROMPTS:,}"
        )


def split_of(key: str) -> str:
    """The split of a prompt or corpus item: 80% train, 10% validation, 10% test, by a stable hash."""
    bucket = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little") % 10
    return SPLITS[0] if bucket < 8 else SPLITS[1 if bucket == 8 else 2]


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise TextError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    return split


@dataclass
class Language:
    """What the environment needs from a language.

    ``pcfg`` is the grammar of the generated text (``None``: anything goes); with
    ``prompt_in_grammar`` the prompt is the start of that text (English), otherwise it is context and
    the grammar covers the answer alone (arithmetic: a number). ``tasks`` are the language's own
    tasks: ``grammatical``, ``positive`` / ``negative`` (grammatical, and the words' summed
    ``sentiment`` above / below 0) and tasks with one right answer per prompt (:meth:`answer`); the
    scorers in ``envs.text.scorers`` decide them, for a batch of sentences at once.
    """

    name: str
    vocabulary: Vocabulary
    pcfg: PCFG | None
    prompt_in_grammar: bool
    tasks: tuple[str, ...]
    separator: str = " "
    sentiment: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def text(self, ids: Sequence[int]) -> str:
        return self.separator.join(self.vocabulary.decode(ids))

    def tokenize(self, text: str) -> list[str]:
        return text.split() if self.separator == " " else list(text)

    def encode(self, text: str, what: str = "text") -> tuple[int, ...]:
        return self.vocabulary.encode(self.tokenize(text), what=f"{what} {text!r}")

    def prompts(self, split: str = "train") -> list[tuple[int, ...]]:
        """The task's prompts in one split (token ids); the empty prompt when the language has none."""
        check_split(split)
        return [()]

    def answer(self, task: str, prompt: Sequence[int]) -> tuple[int, ...] | None:
        """The one right answer (token ids, without the end token) to ``prompt`` for ``task``;
        ``None`` for tasks judged otherwise (grammaticality, sentiment, keyword, length)."""
        return None

    def corpus_item(self, rng: np.random.Generator) -> tuple[str, tuple[int, ...]]:
        """One random item of the language's corpus: (its split key, its token ids)."""
        assert self.pcfg is not None
        ids = self._from_words(self.pcfg.sample(rng))
        return self.text(ids), ids

    def _from_words(self, words: Sequence[int]) -> tuple[int, ...]:
        assert self.pcfg is not None
        return tuple(self.vocabulary.index[self.pcfg.words[w]] for w in words)


class GrammarLanguage(Language):
    """The sentences of a PCFG file; tasks ``grammatical``, and ``positive`` / ``negative`` when the
    grammar marks sentiment (grammatical, and the sum of the words' sentiment above / below 0)."""

    def __init__(self, grammar: str | Path = "english", max_vocabulary: int | None = None) -> None:
        g = load_grammar(grammar)
        pcfg = PCFG(g)
        vocab = Vocabulary(g.words, max_size=max_vocabulary)
        tasks = ("grammatical", "positive", "negative") if g.sentiment else ("grammatical",)
        sentiment = np.array([g.sentiment.get(t, 0) for t in vocab.tokens], dtype=np.int64)
        super().__init__(Path(str(grammar)).stem, vocab, pcfg, True, tasks, " ", sentiment)


_NUMBER = "Number -> Digit [0.5] | Digit Number [0.5]\nDigit -> " + " | ".join(f'"{d}"' for d in range(10))


class ArithmeticLanguage(Language):
    """``a+b=`` prompts for ``0 <= a, b <= max_operand``; the answer is ``a+b`` in digits (task ``add``)."""

    def __init__(self, max_operand: int = 99) -> None:
        if isinstance(max_operand, bool) or not isinstance(max_operand, int) or max_operand < 1:
            raise TextError(f"max_operand must be a positive integer; got {max_operand!r}")
        self.max_operand = max_operand
        vocab = Vocabulary([*"0123456789", "+", "="])
        super().__init__("arithmetic", vocab, PCFG(parse_grammar(_NUMBER, "numbers")), False, ("add",), "")

    def prompts(self, split: str = "train") -> list[tuple[int, ...]]:
        check_split(split)
        n = self.max_operand + 1
        check_prompt_count(n * n, f"max_operand={self.max_operand}")
        texts = [f"{a}+{b}=" for a in range(n) for b in range(n)]
        return [self.encode(t) for t in texts if split_of(t) == split]

    def answer(self, task: str, prompt: Sequence[int]) -> tuple[int, ...] | None:
        if task != "add":
            return None
        text = self.text(prompt)
        if not re.fullmatch(r"[0-9]+\+[0-9]+=", text):
            raise TextError(f"arithmetic prompt {text!r} must read like 37+45=")
        a, b = text[:-1].split("+")
        return self.encode(str(int(a) + int(b)))

    def corpus_item(self, rng: np.random.Generator) -> tuple[str, tuple[int, ...]]:
        a, b = (int(x) for x in rng.integers(self.max_operand + 1, size=2))
        prompt = f"{a}+{b}="
        return prompt, self.encode(prompt + str(a + b))


class CopyLanguage(Language):
    """Prompts ``w|`` for words ``w`` over ``alphabet`` of 1..``max_word`` letters; the answer is ``w``
    reversed (task ``reverse``) or ``w`` itself (task ``copy``)."""

    def __init__(self, alphabet: str = "abc", max_word: int = 4) -> None:
        if (
            len(set(alphabet)) != len(alphabet)
            or not alphabet
            or "|" in alphabet
            or any(c.isspace() for c in alphabet)
        ):
            raise TextError(f"alphabet must be distinct letters other than '|' and spaces; got {alphabet!r}")
        if isinstance(max_word, bool) or not isinstance(max_word, int) or max_word < 1:
            raise TextError(f"max_word must be a positive integer; got {max_word!r}")
        self.alphabet, self.max_word = alphabet, max_word
        grammar = "Word -> Letter [0.5] | Letter Word [0.5]\nLetter -> " + " | ".join(
            f'"{c}"' for c in alphabet
        )
        vocab = Vocabulary([*alphabet, "|"])
        super().__init__("copy", vocab, PCFG(parse_grammar(grammar, "words")), False, ("reverse", "copy"), "")

    def _words(self) -> list[str]:
        count, n = 0, 0
        while n < self.max_word and count <= MAX_PROMPTS:  # max_word may be huge: stop past the bound
            n += 1
            count += len(self.alphabet) ** n
        check_prompt_count(
            count, f"alphabet={self.alphabet!r} with max_word={self.max_word}", n < self.max_word
        )
        return ["".join(w) for n in range(1, self.max_word + 1) for w in product(self.alphabet, repeat=n)]

    def prompts(self, split: str = "train") -> list[tuple[int, ...]]:
        check_split(split)
        words = self._words()
        chosen = [w for w in words if split_of(w + "|") == split]
        # tiny alphabets may leave a split empty: then every split uses every word
        return [self.encode(w + "|") for w in (chosen or words)]

    def answer(self, task: str, prompt: Sequence[int]) -> tuple[int, ...] | None:
        if task not in ("reverse", "copy"):
            return None
        bar = self.vocabulary.index["|"]
        if len(prompt) < 2 or prompt[-1] != bar or bar in prompt[:-1]:
            raise TextError(f"{task} prompt {self.text(prompt)!r} must be a word then '|', like abb|")
        word = tuple(prompt[:-1])
        return word[::-1] if task == "reverse" else word

    def corpus_item(self, rng: np.random.Generator) -> tuple[str, tuple[int, ...]]:
        n = int(rng.integers(1, self.max_word + 1))
        word = "".join(self.alphabet[i] for i in rng.integers(len(self.alphabet), size=n))
        return word + "|", self.encode(f"{word}|{word[::-1]}")


def make_language(language: str | Path | Language, **kwargs) -> Language:
    """A language by name (``english``, ``dyck``, ``arithmetic``, ``copy``), a ``.pcfg`` grammar file
    or a text file (``text:path`` or any path not ending in ``.pcfg``); ``kwargs`` go to its class."""
    if isinstance(language, Language):
        return language
    name = str(language)
    if name == "arithmetic":
        return ArithmeticLanguage(**kwargs)
    if name == "copy":
        return CopyLanguage(**kwargs)
    if name.startswith("text:") or (Path(name).suffix and Path(name).suffix != ".pcfg"):
        from envs.text.textfile import TextFileLanguage

        return TextFileLanguage(name.removeprefix("text:"), **kwargs)
    if not Path(name).suffix and not Path(name).exists():  # a name, not a file
        names = ["arithmetic", "copy", *sorted(f.stem for f in GRAMMARS.glob("*.pcfg"))]
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TextError(
                f"unknown language {name!r}{hint} (the lab's: {', '.join(names)}; or a .pcfg grammar "
                "file, or text:FILE)"
            )
    return GrammarLanguage(name, **kwargs)
