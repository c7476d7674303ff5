"""Frames of the text environment, drawn with pygame (fonts and rounded boxes) off-screen.

The sentence is a row of token chips (prompt grey, generated blue, red from the token after which
no grammatical sentence was possible; the end token green when the sentence is grammatical, red
when not), then the tokens allowed next with their exact probabilities
as bars (scaled to the likeliest; a language without a grammar, a text file, lists the tokens
alone), and the return once the episode has ended. ``lab play`` passes a
:class:`Picker` instead: every token it may choose, in columns, each with the key that picks it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

WIDTH, HEIGHT = 760, 440
PAD = 18
BG = (244, 246, 250)
HEADER = (36, 41, 51)
HEADER_TEXT = (226, 230, 238)
MUTED = (110, 118, 134)
FAINT = (170, 176, 190)
PROMPT_CHIP, PROMPT_TEXT = (214, 219, 228), (52, 61, 79)
GEN_CHIP, GEN_TEXT = (52, 102, 236), (255, 255, 255)
DEAD_CHIP = (214, 96, 72)
GOOD, BAD = (72, 176, 110), (214, 96, 72)
CURSOR = (150, 160, 180)
BAR_BG, BAR = (226, 230, 238), (122, 139, 168)
PANEL = (255, 255, 255)
EDGE = (214, 219, 228)
HIGHLIGHT = (222, 232, 255)
MAX_LISTED = 18
COLUMNS = 3
ROW = 30  # pixels per listed token
SENTENCE_ROW = 42  # pixels per row of chips
SENTENCE_ROWS = 2  # a picker frame keeps room for this many rows, so its height stays put
LIST_PANEL = 36 + (MAX_LISTED // COLUMNS) * ROW + 8  # pixels: the panel under the sentence, at least


def visible(token: str) -> str:
    """``token`` as frames and charts show it: a character that is not printable (NUL and other
    controls, a tab, zero-width and format characters such as a BOM) as its escape (``\\x00``,
    ``\\u200b``), and a token of spaces alone as middle dots, so that every token draws something
    (pygame refuses NUL and text of zero width)."""
    if token and not token.strip(" "):
        return "\u00b7" * len(token)
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in token)


@dataclass(frozen=True)
class Choice:
    """One token of a :class:`Picker`: the key that picks it, the token, the language's probability
    of it next (None when the language has no probabilities), and whether it keeps the sentence
    grammatical (others are drawn faint)."""

    key: str
    token: str
    probability: float | None
    grammatical: bool = True


@dataclass(frozen=True)
class Picker:
    """The page of tokens ``lab play`` offers: listed down ``rows`` rows, then across columns; the
    one at ``cursor`` highlighted; ``heading`` over the list, ``corner`` at its top right (the page)."""

    choices: Sequence[Choice]
    rows: int
    cursor: int | None = None
    heading: str = ""
    corner: str = ""


class TextPainter:
    """Draws one frame from plain values (no environment state of its own besides fonts)."""

    def __init__(self) -> None:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame

        pygame.font.init()
        self.pg = pygame
        self.font = pygame.font.Font(None, 30)
        self.small = pygame.font.Font(None, 22)
        self.bold = pygame.font.Font(None, 26)
        self.bold.set_bold(True)

    @staticmethod
    def _shown(font, token: str) -> str:
        """:func:`visible` ``token``, or every character escaped where ``font`` draws that as nothing."""
        text = visible(token)
        if font.size(text)[0] == 0:
            text = token.encode("unicode_escape").decode("ascii") or "''"
        return text

    def _chip(self, surface, x: int, y: int, text: str, fill, ink, outline=None) -> int:
        label = self.font.render(text, True, ink)
        w, h = label.get_width() + 18, 34
        rect = self.pg.Rect(x, y, w, h)
        if fill is not None:
            self.pg.draw.rect(surface, fill, rect, border_radius=8)
        if outline is not None:
            self.pg.draw.rect(surface, outline, rect, width=2, border_radius=8)
        surface.blit(label, (x + 9, y + (h - label.get_height()) // 2 + 1))
        return w

    def frame(
        self,
        prompt: Sequence[str],
        generated: Sequence[str],
        valid: Sequence[tuple[str, float | None]],
        title: str,
        step: str,
        reward: float | None,
        dead_from: int | None,
        verdict: str = "",
        picker: Picker | None = None,
    ) -> np.ndarray:
        """An ``(H, W, 3)`` uint8 frame. ``valid`` holds the tokens allowed next and the language's
        probability of each (None without a grammar: no bars then); ``dead_from`` is the first
        generated token after which no grammatical sentence was possible (``None`` while one is). With
        ``picker`` (and no ``reward``) its tokens replace the list of ``valid`` ones; the frame grows
        to hold ``picker.rows`` rows (with ``reward`` too, so that a game's frames keep one size)."""
        alive = dead_from is None
        pg = self.pg
        ended = bool(generated) and generated[-1] == "<eos>"
        chips: list[tuple[str, tuple, tuple]] = [
            (self._shown(self.font, t), PROMPT_CHIP, PROMPT_TEXT) for t in prompt
        ]
        words = [self._shown(self.font, t) for t in (generated[:-1] if ended else generated)]
        chips += [
            (t, GEN_CHIP if alive or i < dead_from else DEAD_CHIP, GEN_TEXT) for i, t in enumerate(words)
        ]
        if ended:
            chips.append(("<eos>", GOOD if alive else BAD, GEN_TEXT))
        # the sentence, wrapped: where each chip goes
        x, y = PAD, 58
        places = []
        for text, _, _ in chips:
            w = self.font.size(text)[0] + 18
            if x + w > WIDTH - PAD:
                x, y = PAD, y + SENTENCE_ROW
            places.append((x, y))
            x += w + 6
        cursor = None
        if not ended and reward is None:
            if x + 34 > WIDTH - PAD:
                x, y = PAD, y + SENTENCE_ROW
            cursor = (x, y)
        if picker is not None:
            y = max(y, 58 + (SENTENCE_ROWS - 1) * SENTENCE_ROW)
            height = max(HEIGHT, y + 58 + 36 + picker.rows * ROW + 8 + PAD)
        else:  # a long sentence makes the frame taller, so the panel under it stays whole
            height = max(HEIGHT, y + 58 + LIST_PANEL + PAD)

        surface = pg.Surface((WIDTH, height))
        surface.fill(BG)
        pg.draw.rect(surface, HEADER, pg.Rect(0, 0, WIDTH, 40))
        surface.blit(self.bold.render(title, True, HEADER_TEXT), (PAD, 12))
        right = self.small.render(f"step {step}", True, HEADER_TEXT)
        surface.blit(right, (WIDTH - PAD - right.get_width(), 13))
        for (text, fill, ink), (cx, cy) in zip(chips, places, strict=True):
            self._chip(surface, cx, cy, text, fill, ink)
        if cursor is not None:
            self._chip(surface, *cursor, " ", None, CURSOR, outline=CURSOR)

        # the next tokens, or the result
        top = y + 58
        panel = pg.Rect(PAD, top, WIDTH - 2 * PAD, height - top - PAD)
        pg.draw.rect(surface, PANEL, panel, border_radius=10)
        pg.draw.rect(surface, EDGE, panel, width=1, border_radius=10)
        if reward is not None:
            colour = GOOD if reward > 0 else (BAD if reward < 0 else MUTED)
            big = pg.font.Font(None, 56).render(f"return {reward:g}", True, colour)
            surface.blit(big, (panel.x + 24, panel.y + 24))
            surface.blit(self.font.render(verdict, True, MUTED), (panel.x + 26, panel.y + 80))
        elif picker is not None:
            self._picker(surface, panel, picker)
        else:
            known = all(p is not None for _, p in valid)
            note = "allowed next tokens (exact probability)" if known else "tokens that may come next"
            if not alive:
                note = "no grammatical sentence starts like this: every token is allowed"
            surface.blit(self.small.render(note, True, MUTED), (panel.x + 14, panel.y + 10))
            ranked = sorted(valid, key=lambda tp: -(tp[1] or 0.0)) if known else list(valid)
            listed = ranked[:MAX_LISTED] if alive else []
            scale = max([p or 0.0 for _, p in listed], default=0.0) or 1.0
            col_w = (panel.width - 28) // COLUMNS
            for i, (token, p) in enumerate(listed):
                cx = panel.x + 14 + (i % COLUMNS) * col_w
                cy = panel.y + 36 + (i // COLUMNS) * ROW
                if cy + 26 > panel.bottom:
                    break
                surface.blit(
                    self.small.render(self._shown(self.small, token), True, PROMPT_TEXT), (cx, cy + 4)
                )
                if p is not None:
                    self._bar(surface, cx + 92, cy, col_w - 160, p / scale, f"{100 * p:.1f}%")
            if len(valid) > len(listed) and alive:
                more = self.small.render(f"+{len(valid) - len(listed)} more", True, MUTED)
                surface.blit(more, (panel.right - more.get_width() - 14, panel.y + 10))
        return np.ascontiguousarray(pg.surfarray.array3d(surface).transpose(1, 0, 2))

    def _bar(self, surface, x: int, y: int, width: int, fraction: float, label: str) -> None:
        """A rounded bar ``fraction`` full in a row at ``y``, ``label`` after it."""
        pg = self.pg
        bar = pg.Rect(x, y + 6, width, 12)
        pg.draw.rect(surface, BAR_BG, bar, border_radius=6)
        fill = bar.copy()
        fill.width = max(4, int(bar.width * min(max(fraction, 0.0), 1.0)))
        pg.draw.rect(surface, BAR, fill, border_radius=6)
        surface.blit(self.small.render(label, True, MUTED), (bar.right + 8, y + 4))

    def _picker(self, surface, panel, picker: Picker) -> None:
        """The tokens of ``picker`` down its rows, then across: key, token, probability bar."""
        pg = self.pg
        surface.blit(self.small.render(picker.heading, True, MUTED), (panel.x + 14, panel.y + 10))
        corner = self.small.render(picker.corner, True, MUTED)
        surface.blit(corner, (panel.right - corner.get_width() - 14, panel.y + 10))
        known = [c.probability for c in picker.choices if c.probability is not None and c.grammatical]
        scale = max(known, default=0.0) or 1.0
        col_w = (panel.width - 28) // COLUMNS
        for i, choice in enumerate(picker.choices):
            column, row = divmod(i, max(1, picker.rows))
            cx = panel.x + 14 + column * col_w
            cy = panel.y + 36 + row * ROW
            if i == picker.cursor:
                pg.draw.rect(surface, HIGHLIGHT, pg.Rect(cx - 6, cy, col_w - 4, ROW - 4), border_radius=6)
            ink = PROMPT_TEXT if choice.grammatical else FAINT
            key = self.small.render(choice.key, True, HEADER_TEXT)
            badge = pg.Rect(cx, cy + 2, max(20, key.get_width() + 10), 20)
            pg.draw.rect(surface, HEADER if choice.grammatical else FAINT, badge, border_radius=5)
            surface.blit(key, (badge.centerx - key.get_width() // 2, badge.y + 3))
            token = self._shown(self.small, choice.token)
            while self.small.size(token)[0] > 84 and len(token) > 2:  # a long subword: shortened
                token = token[:-2] + "\u2026"
            surface.blit(self.small.render(token, True, ink), (cx + 28, cy + 4))
            if choice.probability is not None and choice.grammatical:
                p = choice.probability
                self._bar(surface, cx + 118, cy, col_w - 180, p / scale, f"{100 * p:.1f}%")
