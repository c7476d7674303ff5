"""Exact probabilities of a PCFG: inside algorithm, prefix probabilities, entropy, sampling.

Words are numbered by their position in ``Grammar.words``. Prefix probabilities come from a
probabilistic top-down (leftmost-derivation) parser: after reading a prefix ``u`` the parser holds
every stack of symbols ``g`` still to derive with ``S =>* u g``, weighted by the probability of the
derivation steps taken. As every symbol derives something with probability 1 (the grammar is
consistent), ``P(u...) = sum of the weights`` and ``P(u exactly) = weight of the empty stack``:
exact, with no truncation. The grammar has no left recursion and no empty rules, so expanding a
stack until a word surfaces always ends.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import cache

import numpy as np

from envs.errors import GrammarError, TextError
from envs.text.grammar import Grammar, expected_children, first_symbol_order

# A stack: words as their index (>= 0), nonterminals as -(index + 1); the leftmost symbol first.
Stack = tuple[int, ...]
ParserState = dict[Stack, float]
MAX_LEFT_CORNER_SYMBOLS = 5_000_000
"""The most stack symbols the prefix parser's table of first expansions may hold (English needs 163)."""


class PCFG:
    """A validated :class:`Grammar` compiled to integers, with its exact probability algorithms."""

    def __init__(self, grammar: Grammar) -> None:
        self.grammar = grammar
        self.words = grammar.words
        self.word_index = {w: i for i, w in enumerate(self.words)}
        self.nonterminals = list(grammar.rules)
        nt = {n: i for i, n in enumerate(self.nonterminals)}
        self.start = -(nt[grammar.start] + 1)

        def code(s) -> int:
            return self.word_index[s.name] if s.terminal else -(nt[s.name] + 1)

        # rules[i] = [(probability, rhs codes)] of nonterminal i
        self.rules: list[list[tuple[float, Stack]]] = [
            [(r.prob, tuple(code(s) for s in r.rhs)) for r in grammar.rules[n]] for n in self.nonterminals
        ]
        self.min_length = self._min_lengths()
        # expansions[i][w] = [(rest of the stack, probability)] for nonterminal i =>* w rest
        self.expansions: list[dict[int, list[tuple[Stack, float]]]] = []
        for corners in self._left_corners():
            by_word: dict[int, dict[Stack, float]] = defaultdict(lambda: defaultdict(float))
            for w, rest, p in corners:
                by_word[w][rest] += p
            self.expansions.append({w: list(d.items()) for w, d in by_word.items()})
        # first[i][w] = P(nonterminal i derives a string starting with word w)
        self.first = np.zeros((len(self.nonterminals), len(self.words)))
        for i, by_word in enumerate(self.expansions):
            for w, outs in by_word.items():
                self.first[i, w] = sum(p for _, p in outs)

    # ----- structure -----

    def _min_lengths(self) -> list[int]:
        big = 1 << 30
        best = [big] * len(self.nonterminals)
        changed = True
        while changed:
            changed = False
            for i, rs in enumerate(self.rules):
                for _, rhs in rs:
                    n = sum(1 if s >= 0 else best[-s - 1] for s in rhs)
                    if n < best[i]:
                        best[i], changed = n, True
        return best

    def stack_min_length(self, stack: Stack) -> int:
        """The fewest words that complete ``stack``."""
        return sum(1 if s >= 0 else self.min_length[-s - 1] for s in stack)

    def _left_corners(self) -> list[list[tuple[int, Stack, float]]]:
        """For each nonterminal, every ``(word, rest, probability)`` it rewrites to by expanding the
        first symbol until a word leads: built once each, in the grammar's first-symbol order (what a
        rule starts with first), without recursion; refused past :data:`MAX_LEFT_CORNER_SYMBOLS`."""
        index = {name: i for i, name in enumerate(self.nonterminals)}
        corners: list[list[tuple[int, Stack, float]]] = [[] for _ in self.rules]
        size = 0
        for name in first_symbol_order(self.grammar):  # a Grammar built by hand is checked here too
            i = index[name]
            for p, rhs in self.rules[i]:
                head, tail = rhs[0], rhs[1:]
                if head >= 0:
                    corners[i].append((head, tail, p))
                else:
                    corners[i].extend((w, rest + tail, p * q) for w, rest, q in corners[-head - 1])
            size += sum(1 + len(rest) for _, rest, _ in corners[i])
            if size > MAX_LEFT_CORNER_SYMBOLS:
                raise GrammarError(
                    f"{self.grammar.source}: the ways its symbols begin expand to over "
                    f"{MAX_LEFT_CORNER_SYMBOLS:,} stack symbols, which the prefix parser keeps; "
                    "shorten the chains of rules that begin with another symbol"
                )
        return corners

    # ----- the prefix parser -----

    def initial_state(self) -> ParserState:
        return {(self.start,): 1.0}

    def advance(self, state: ParserState, word: int) -> ParserState:
        """The parser state after reading ``word`` (empty when no sentence continues that way)."""
        out: dict[Stack, float] = defaultdict(float)
        for stack, weight in state.items():
            if not stack:
                continue
            top = stack[0]
            if top >= 0:
                if top == word:
                    out[stack[1:]] += weight
            else:
                for rest, p in self.expansions[-top - 1].get(word, ()):
                    out[rest + stack[1:]] += weight * p
        return dict(out)

    def next_word_weights(self, state: ParserState) -> tuple[np.ndarray, float]:
        """Unnormalised ``(P(prefix, next word) for every word, P(prefix is a whole sentence))``."""
        words = np.zeros(len(self.words))
        end = 0.0
        for stack, weight in state.items():
            if not stack:
                end += weight
            elif stack[0] >= 0:
                words[stack[0]] += weight
            else:
                words += weight * self.first[-stack[0] - 1]
        return words, end

    def parse_prefix(self, words: Sequence[int]) -> ParserState:
        state = self.initial_state()
        for w in words:
            state = self.advance(state, w)
        return state

    def prefix_probability(self, words: Sequence[int]) -> float:
        """P(a sentence starts with ``words``), exactly."""
        return float(sum(self.parse_prefix(words).values()))

    def sentence_probability(self, words: Sequence[int]) -> float:
        """P(the sentence is exactly ``words``), from the prefix parser (equals :meth:`inside`)."""
        return float(self.parse_prefix(words).get((), 0.0))

    def contains(self, words: Sequence[int]) -> bool:
        """Exact membership: some derivation yields exactly ``words``."""
        return () in self.parse_prefix(words)

    def next_word_distribution(self, words: Sequence[int]) -> tuple[np.ndarray, float]:
        """``(P(next word | prefix) for each word, P(end | prefix))``; zeros if no sentence has the prefix."""
        weights, end = self.next_word_weights(self.parse_prefix(words))
        total = weights.sum() + end
        return (weights / total, end / total) if total > 0 else (weights, 0.0)

    # ----- the inside algorithm -----

    def inside(self, words: Sequence[int], count_parses: bool = False) -> float:
        """P(sentence) summed over its parse trees (CKY-style inside algorithm over any rule length).

        With ``count_parses=True`` every rule weighs 1, so the result is the number of parse trees.
        Its time grows as the cube of the length (about a second at 300 words).
        """
        words = tuple(words)
        n = len(words)
        rules = [[(1.0 if count_parses else p, rhs) for p, rhs in rs] for rs in self.rules]

        @cache
        def span(sym: int, i: int, j: int) -> float:
            if sym >= 0:
                return 1.0 if j == i + 1 and words[i] == sym else 0.0
            return sum(p * seq(rhs, 0, i, j) for p, rhs in rules[-sym - 1])

        @cache
        def seq(rhs: Stack, k: int, i: int, j: int) -> float:
            if k == len(rhs) - 1:
                return span(rhs[k], i, j)
            left = len(rhs) - k - 1  # each later symbol covers at least one word
            # a part that cannot cover its span ends the split there, before the rest is parsed
            splits = range(i + 1, j - left + 1)
            return sum(a * seq(rhs, k + 1, m, j) for m in splits if (a := span(rhs[k], i, m)))

        # Shorter spans first, so that a call only recurses along one rule and a chain of unit
        # rules; top-down alone nests a call per word and met Python's limit near 300 words.
        for length in range(1, n):
            for i in range(n - length + 1):
                for sym in range(-len(rules), 0):
                    span(sym, i, i + length)
        return span(self.start, 0, n) if n else 0.0

    # ----- the whole language -----

    def entropy(self) -> float:
        """Entropy of the derivations in nats: ``sum_A E[uses of A] * H(A's rule choice)``.

        It equals the entropy of the sentences when the grammar is unambiguous (one parse per
        sentence, see :meth:`inside` with ``count_parses``). The expected uses solve the linear
        system ``c = e_start + M^T c`` of the expected-children matrix ``M``.
        """
        _, M = expected_children(self.grammar)
        e = np.zeros(len(M))
        e[-self.start - 1] = 1.0
        uses = np.linalg.solve(np.eye(len(M)) - M.T, e)
        h = np.array([-sum(p * np.log(p) for p, _ in rs) for rs in self.rules])
        return float(uses @ h)

    def length_distribution(self, max_length: int) -> np.ndarray:
        """``P(the sentence has n words)`` for n = 0..max_length, by dynamic programming over rules."""
        n_nt = len(self.nonterminals)
        dist = np.zeros((n_nt, max_length + 1))  # dist[i, n] = P(nonterminal i derives n words)

        def rhs_lengths(rhs: Stack, upto: int) -> np.ndarray:
            out = np.zeros(max_length + 1)
            out[0] = 1.0
            for s in rhs:
                part = np.zeros(max_length + 1)
                if s >= 0:
                    part[1] = 1.0
                else:
                    part[: upto + 1] = dist[-s - 1, : upto + 1]
                out = np.convolve(out, part)[: max_length + 1]
            return out

        # lengths grow with n; a rule's parts are shorter than the whole unless it is a unit rule,
        # and unit chains end (no left recursion), so enough sweeps per length settle the values
        for n in range(1, max_length + 1):
            for _ in range(n_nt + 1):
                for i, rs in enumerate(self.rules):
                    dist[i, n] = sum(p * rhs_lengths(rhs, n)[n] for p, rhs in rs)
        return dist[-self.start - 1]

    def sample(self, rng: np.random.Generator) -> list[int]:
        """One sentence drawn from the grammar, as word indices."""
        out: list[int] = []
        stack = [self.start]
        while stack:
            sym = stack.pop()
            if sym >= 0:
                out.append(sym)
                continue
            rs = self.rules[-sym - 1]
            _, rhs = rs[0] if len(rs) == 1 else rs[int(rng.choice(len(rs), p=[p for p, _ in rs]))]
            stack.extend(reversed(rhs))
        return out

    def enumerate(self, max_length: int, max_prefixes: int | None = None) -> dict[tuple[int, ...], float]:
        """Every sentence of at most ``max_length`` words with its exact probability. Their count
        grows exponentially with the length: past ``max_prefixes`` prefixes walked, a
        :class:`TextError` says so (a length a few words too long would otherwise run for hours)."""
        out: dict[tuple[int, ...], float] = {}
        walked = 0

        def walk(prefix: tuple[int, ...], state: ParserState) -> None:
            nonlocal walked
            walked += 1
            if max_prefixes is not None and walked > max_prefixes:
                raise TextError(
                    f"the sentences of up to {max_length} words have over {max_prefixes:,} prefixes"
                )
            weights, end = self.next_word_weights(state)
            if end > 0:
                out[prefix] = end
            if len(prefix) < max_length:
                for w in np.flatnonzero(weights):
                    walk((*prefix, int(w)), self.advance(state, int(w)))

        walk((), self.initial_state())
        return out
