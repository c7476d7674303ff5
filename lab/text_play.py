"""``lab play`` on the text environment: a person builds the sentence one token per turn.

The tokens on offer are listed in columns, likeliest first by the language's exact next-token
probability: with the env's masks (its default) only the grammatical ones, without them every token,
the grammatical ones first and the rest faint. A page holds :data:`PAGE` tokens, each picked by the key
beside it (``1``-``9``, ``0``, then letters other than ``q``, ``r``, ``s``; a token that is itself one
of those, a digit of arithmetic or a letter of the copy task, by its own key), or by moving the highlight
with the arrows and pressing Enter; PageUp/PageDown turn pages. A token cannot be taken back (the MDP
has no undo); ``r`` starts a new episode, ``s`` saves a screenshot, ``q``/Esc quits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from envs.text import TextGenEnv
from envs.text.automaton import DEAD
from envs.text.painter import COLUMNS, Choice, Picker
from lab.text_prefix import prefix_state

if TYPE_CHECKING:
    from envs.window import FrameWindow

LABELS = "1234567890abcdefghijklmnoptuvwxyz"  # q, r and s are taken: quit, restart, screenshot
PAGE = len(LABELS)  # 33 tokens a page: 11 rows of 3 columns (fewer rows for a small vocabulary)
KEYPAD = {f"[{d}]": d for d in "0123456789"}
PICK_KEYS = {"return", "enter", "space"}
MODIFIERS = ("shift", "ctrl", "alt", "meta", "lock", "super")  # pressed alone, they say nothing
CONTROLS = "1-9 0 a-z pick a token, arrows + Enter choose, PgUp/PgDn pages, r restart, s screenshot, q quit"


@dataclass(frozen=True)
class Token:
    """A token on offer: its id, its string, the language's probability of it next, and whether it
    keeps the sentence grammatical."""

    id: int
    text: str
    probability: float | None
    grammatical: bool


def offered_tokens(text: TextGenEnv, state: int, info: dict[str, Any], generated: int) -> list[Token]:
    """The tokens a player may pick in parser ``state`` with ``generated`` tokens written: the env's
    mask when it masks (``info["action_mask"]``), else every token; grammatical ones first, likeliest
    first, then by id. Probabilities are None without a grammar, and once the sentence is dead."""
    grammatical = text.automaton.mask(state, text.max_length - generated)
    known = text.language.pcfg is not None and state != DEAD
    probs = text.automaton.next_prob[state]
    allowed = np.asarray(info["action_mask"], dtype=bool) if "action_mask" in info else None
    tokens = [
        Token(t, text.vocabulary.tokens[t], float(probs[t]) if known else None, bool(grammatical[t]))
        for t in range(text.n_tokens)
        if allowed is None or allowed[t]
    ]
    return sorted(tokens, key=lambda tok: (not tok.grammatical, -(tok.probability or 0.0), tok.id))


def page_keys(tokens: Sequence[Token]) -> list[str]:
    """The key of each token on a page (at most :data:`PAGE`): a token that is one letter or digit of
    :data:`LABELS` has its own key (``7`` picks the token 7), the others the free keys in order."""
    keys: list[str | None] = [None] * len(tokens)
    for i, tok in enumerate(tokens):
        if len(tok.text) == 1 and tok.text in LABELS and tok.text not in keys:
            keys[i] = tok.text
    free = iter(k for k in LABELS if k not in keys)
    return [k if k is not None else next(free) for k in keys]


class TextGame:
    """One player's episodes of a text env (wrapped as ``lab play`` makes it): what to draw, and what
    each key does. :meth:`press` returns the episode's return when that key finished it."""

    def __init__(self, env: Any, name: str, recording: bool, window: FrameWindow) -> None:
        self.env = env
        self.text = env.unwrapped
        self.name = name
        self.recording = recording
        self.window = window  # the screenshot key saves it, in the current folder
        self.rows = math.ceil(min(PAGE, self.text.n_tokens) / COLUMNS)  # one page, filled down columns
        self.tokens: list[Token] = []
        self.dead = False  # no grammatical sentence starts with the text so far
        self.cursor = 0
        self.total = 0.0
        self.generated = 0
        self.over = False
        self.message = ""

    def reset(self, seed: int) -> None:
        self.message = "new episode" if self.message else "your move: pick the first token"
        obs, info = self.env.reset(seed=seed)
        self.total, self.generated, self.over = 0.0, 0, False
        self._offer(obs, info)

    def _offer(self, obs: Any, info: dict[str, Any]) -> None:
        state = prefix_state(self.text, obs)
        self.tokens = offered_tokens(self.text, state, info, self.generated)
        self.dead = self.text.language.pcfg is not None and state == DEAD
        self.cursor = 0

    # ----- drawing -----

    def page(self) -> int:
        return self.cursor // PAGE

    def picker(self) -> Picker:
        """The page of tokens on screen (none once the sentence is over: the frame shows the return,
        at the same height)."""
        if self.over:
            return Picker([], self.rows)
        first = self.page() * PAGE
        shown = self.tokens[first : first + PAGE]
        choices = [
            Choice(key, tok.text, tok.probability, tok.grammatical)
            for key, tok in zip(page_keys(shown), shown, strict=True)
        ]
        pages = math.ceil(len(self.tokens) / PAGE)
        heading = (
            "your next token (the grammatical ones), likeliest first"
            if self.text.action_mask
            else "your next token: grammatical ones first, likeliest first; the rest faint"
        )
        if self.text.language.pcfg is None:
            heading = "your next token"
        elif self.dead:
            heading = "no grammatical sentence starts like this: any token"
        corner = f"page {self.page() + 1}/{pages}  PgUp/PgDn" if pages > 1 else f"{len(self.tokens)} tokens"
        return Picker(choices, self.rows, self.cursor - first, heading, corner)

    def frame(self) -> np.ndarray:
        return self.text.frame(picker=self.picker())

    def lines(self) -> list[str]:
        return [f"{self.name}: {self.message}", self.text.status_line(), CONTROLS]

    # ----- keys -----

    def press(self, key: str) -> float | None:
        if key == "s":
            self.screenshot()
            return None
        if self.over:
            self.message = "the sentence is finished - r to play again, q to quit"
            return None
        key = KEYPAD.get(key, key)
        n = len(self.tokens)
        rows = self.rows
        moves = {"up": -1, "down": 1, "left": -rows, "right": rows, "page up": -PAGE, "page down": PAGE}
        if key in moves:
            self.cursor = int(np.clip(self.cursor + moves[key], 0, n - 1))
            if key.startswith("page"):
                self.cursor = self.page() * PAGE
            return None
        if key in ("home", "end"):
            self.cursor = 0 if key == "home" else n - 1
            return None
        if key in PICK_KEYS:
            return self._take(self.tokens[self.cursor])
        if len(key) == 1 and key in LABELS:
            first = self.page() * PAGE
            shown = self.tokens[first : first + PAGE]
            keys = page_keys(shown)
            if key not in keys:
                self.message = f"no token on key {key} on this page (keys: {' '.join(keys)})"
                return None
            return self._take(shown[keys.index(key)])
        if not any(word in key for word in MODIFIERS):
            self.message = f"key {key!r} picks no token: {CONTROLS}"
        return None

    def _take(self, token: Token) -> float | None:
        obs, reward, terminated, truncated, info = self.env.step(token.id)
        self.generated += 1
        self.total += float(reward)
        self.message = f"{token.text!r}: reward {reward:+g}"
        if not (terminated or truncated):
            self._offer(obs, info)
            return None
        self.over = True
        if terminated:
            outcome = "succeeded" if info.get("success") else "failed"
            verdict = outcome if info.get("grammatical") else f"{outcome} (not grammatical)"
        else:
            verdict = f"no end token within {self.text.max_length} tokens"
        saved = ", replay saved" if self.recording else ""
        self.message = f"return {self.total:g}, {verdict}{saved} - r to play again, q to quit"
        return self.total

    def screenshot(self) -> None:
        from lab.viewer import save_screenshot, screenshot_failure

        stem = f"{self.name.removeprefix('lab/')}_step{self.generated:02d}"
        try:
            path = save_screenshot(self.window, Path.cwd(), stem)
        except OSError as exc:  # the game goes on; the message line says why
            self.message = screenshot_failure("the current folder", exc)
            return
        self.message = f"saved {path.name}"
