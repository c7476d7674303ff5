"""The prefix parser as a lazily built automaton over token ids: the environments' fast path.

A state is a prefix parser state (see :mod:`envs.text.pcfg`) with its weights normalised, so two
prefixes that leave the parser in the same situation ("the good dog" and "the bad dog") share one
state. States are numbered as they are first reached and their rows (the state after each token)
are filled on first visit, so recursive grammars, whose parser states never run out, cost only
what is visited. Tables are numpy arrays that single and batched environments read alike.

State 0 is *dead*: no sentence of the language starts with the prefix. For languages without a
grammar (a user's text file) every prefix is alive and complete: one state, 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from envs.text.pcfg import PCFG, ParserState
from envs.text.vocabulary import Vocabulary

DEAD = 0
UNREACHABLE = 1 << 40  # "no completion": larger than any length budget


class PrefixAutomaton:
    """States, per-state rows and the masks they give, for one grammar over one vocabulary.

    Tables (index by state; rows by token id): ``next[s, t]`` the state after token ``t`` (valid
    once ``expanded[s]``), ``after_min[s, t]`` the fewest words that complete the sentence after
    ``t`` (:data:`UNREACHABLE` for the end token and dead continuations), ``complete[s]`` whether the
    prefix is a whole sentence, ``eos_ok[s]`` whether ending is allowed (complete, or dead: nothing
    can save a dead sentence, so every token is allowed there), ``min_left[s]`` the fewest words to
    complete, and ``next_prob[s]`` the exact distribution of the next token (the end token at 0).
    ``mask_table[s, r]`` is :meth:`mask` of state ``s`` with ``r <= horizon`` tokens left, filled
    with the row, so that masks on the hot path are one lookup.
    """

    def __init__(self, pcfg: PCFG | None, vocabulary: Vocabulary, horizon: int) -> None:
        self.pcfg = pcfg
        self.n_tokens = n = len(vocabulary)
        self.word_of_token = (
            [pcfg.word_index.get(t, -1) for t in vocabulary.tokens] if pcfg is not None else [0] * n
        )
        self.eos = vocabulary.eos
        self.horizon = horizon
        self._budgets = np.arange(horizon + 1)[:, None] - 2
        self.mask_table = np.zeros((0, horizon + 1, n), dtype=bool)
        self._capacity = 0
        self.n_states = 0
        self.next = np.zeros((0, n), dtype=np.int64)
        self.after_min = np.zeros((0, n), dtype=np.int64)
        self.complete = np.zeros(0, dtype=bool)
        self.eos_ok = np.zeros(0, dtype=bool)
        self.min_left = np.zeros(0, dtype=np.int64)
        self.expanded = np.zeros(0, dtype=bool)
        self.next_prob = np.zeros((0, n))
        self._parser_states: list[ParserState] = []
        self._ids: dict[tuple, int] = {}
        dead = self._new_state({}, complete=False, eos_ok=True, min_left=0)
        self.after_min[dead] = 0
        self._fill_masks(dead)
        if pcfg is None:
            alive = self._new_state({(): 1.0}, complete=True, eos_ok=True, min_left=0)
            self.next[alive] = alive
            self.after_min[alive] = 0
            self.after_min[alive, self.eos] = UNREACHABLE
            self.next_prob[alive] = 1.0 / n
            self._fill_masks(alive)
            self.start = alive
        else:
            self.start = self._intern(pcfg.initial_state())
        self.expand(self.start)

    # ----- building -----

    def _grow(self) -> None:
        cap = max(64, 2 * self._capacity)

        def grown(a: np.ndarray) -> np.ndarray:
            out = np.zeros((cap, *a.shape[1:]), dtype=a.dtype)
            out[: len(a)] = a
            return out

        self.next, self.after_min, self.next_prob = (
            grown(self.next),
            grown(self.after_min),
            grown(self.next_prob),
        )
        self.mask_table = grown(self.mask_table)
        self.complete, self.eos_ok = grown(self.complete), grown(self.eos_ok)
        self.min_left, self.expanded = grown(self.min_left), grown(self.expanded)
        self._capacity = cap

    def _new_state(self, parser_state: ParserState, complete: bool, eos_ok: bool, min_left: int) -> int:
        if self.n_states == self._capacity:
            self._grow()
        s = self.n_states
        self.n_states += 1
        self._parser_states.append(parser_state)
        self.complete[s], self.eos_ok[s], self.min_left[s] = complete, eos_ok, min_left
        return s

    def _intern(self, parser_state: ParserState) -> int:
        if not parser_state:
            return DEAD
        total = sum(parser_state.values())
        normal = {k: v / total for k, v in parser_state.items()}
        key = tuple(sorted((k, round(v, 12)) for k, v in normal.items()))
        s = self._ids.get(key)
        if s is not None:
            return s
        pcfg = self.pcfg
        assert pcfg is not None
        complete = () in normal
        s = self._new_state(normal, complete, complete, min(pcfg.stack_min_length(k) for k in normal))
        self._ids[key] = s
        weights, end = pcfg.next_word_weights(normal)
        probs = np.array([weights[w] if w >= 0 else 0.0 for w in self.word_of_token])
        probs[self.eos] = end
        self.next_prob[s] = probs
        return s

    def expand(self, s: int) -> None:
        """Fill state ``s``'s row (the successor of every token), interning new states."""
        if self.expanded[s]:
            return
        pcfg = self.pcfg
        assert pcfg is not None
        parser_state = self._parser_states[s]
        row = np.zeros(self.n_tokens, dtype=np.int64)
        for t, w in enumerate(self.word_of_token):
            if t == self.eos or w < 0:
                continue
            row[t] = self._intern(pcfg.advance(parser_state, w))
        row[self.eos] = s
        after = np.where(row == DEAD, UNREACHABLE, self.min_left[row])
        after[self.eos] = UNREACHABLE
        self.next[s], self.after_min[s] = row, after
        self._fill_masks(s)

    def _fill_masks(self, s: int) -> None:
        table = self.after_min[s][None, :] <= self._budgets
        table[:, self.eos] = self.eos_ok[s]
        table[~table.any(axis=1)] = True  # too few tokens left to end well: as dead, any token goes
        self.mask_table[s] = table
        self.expanded[s] = True

    # ----- reading -----

    def run(self, tokens: Sequence[int], state: int | None = None) -> int:
        """The state after reading ``tokens`` from ``state`` (the start by default)."""
        s = self.start if state is None else state
        for t in tokens:
            self.expand(s)
            s = int(self.next[s, t])
        self.expand(s)
        return s

    def mask(self, s: int, remaining: int) -> np.ndarray:
        """Allowed tokens in expanded state ``s`` with ``0 <= remaining <= horizon`` tokens left (the
        end token counts): a word only if some sentence continues with it and can still end in
        time, the end token only when the prefix is a whole sentence (every token, once the prefix
        is dead or too few tokens are left for it to end well: a mask is never empty). A view into
        the table: copy it to keep it."""
        return self.mask_table[s, remaining]

    def masks(self, states: np.ndarray, remaining: np.ndarray) -> np.ndarray:
        """:meth:`mask` of many (state, remaining) pairs at once (a new array)."""
        table = self.mask_table.reshape(-1, self.n_tokens)  # one flat gather of rows: the fastest form
        return np.take(table, states * (self.horizon + 1) + remaining, axis=0)
