"""Frames of the text environment, drawn with pygame (fonts and rounded boxes) off-screen.

The sentence is a row of token chips (prompt grey, generated blue, red from the token after which
no grammatical sentence was possible; the end token green when the sentence is grammatical, red
when not), then the tokens allowed next with their exact probabilities
as bars (scaled to the likeliest), and the return once the episode has ended.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

WIDTH, HEIGHT = 760, 440
PAD = 18
BG = (244, 246, 250)
HEADER = (36, 41, 51)
HEADER_TEXT = (226, 230, 238)
MUTED = (110, 118, 134)
PROMPT_CHIP, PROMPT_TEXT = (214, 219, 228), (52, 61, 79)
GEN_CHIP, GEN_TEXT = (52, 102, 236), (255, 255, 255)
DEAD_CHIP = (214, 96, 72)
GOOD, BAD = (72, 176, 110), (214, 96, 72)
CURSOR = (150, 160, 180)
BAR_BG, BAR = (226, 230, 238), (122, 139, 168)
PANEL = (255, 255, 255)
EDGE = (214, 219, 228)
MAX_LISTED = 18


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
        valid: Sequence[tuple[str, float]],
        title: str,
        step: str,
        reward: float | None,
        dead_from: int | None,
        verdict: str = "",
    ) -> np.ndarray:
        """An ``(H, W, 3)`` uint8 frame; ``dead_from`` is the first generated token after which no
        grammatical sentence was possible (``None`` while one is)."""
        alive = dead_from is None
        pg = self.pg
        surface = pg.Surface((WIDTH, HEIGHT))
        surface.fill(BG)
        pg.draw.rect(surface, HEADER, pg.Rect(0, 0, WIDTH, 40))
        surface.blit(self.bold.render(title, True, HEADER_TEXT), (PAD, 12))
        right = self.small.render(f"step {step}", True, HEADER_TEXT)
        surface.blit(right, (WIDTH - PAD - right.get_width(), 13))

        # the sentence, wrapped
        x, y = PAD, 58
        ended = bool(generated) and generated[-1] == "<eos>"
        chips: list[tuple[str, tuple, tuple]] = [(t, PROMPT_CHIP, PROMPT_TEXT) for t in prompt]
        words = list(generated[:-1] if ended else generated)
        chips += [
            (t, GEN_CHIP if alive or i < dead_from else DEAD_CHIP, GEN_TEXT) for i, t in enumerate(words)
        ]
        if ended:
            chips.append(("<eos>", GOOD if alive else BAD, GEN_TEXT))
        for text, fill, ink in chips:
            w = self.font.size(text)[0] + 18
            if x + w > WIDTH - PAD:
                x, y = PAD, y + 42
            x += self._chip(surface, x, y, text, fill, ink) + 6
        if not ended and reward is None:
            if x + 34 > WIDTH - PAD:
                x, y = PAD, y + 42
            self._chip(surface, x, y, " ", None, CURSOR, outline=CURSOR)

        # the next tokens, or the result
        top = y + 58
        panel = pg.Rect(PAD, top, WIDTH - 2 * PAD, HEIGHT - top - PAD)
        pg.draw.rect(surface, PANEL, panel, border_radius=10)
        pg.draw.rect(surface, EDGE, panel, width=1, border_radius=10)
        if reward is not None:
            colour = GOOD if reward > 0 else (BAD if reward < 0 else MUTED)
            big = pg.font.Font(None, 56).render(f"return {reward:g}", True, colour)
            surface.blit(big, (panel.x + 24, panel.y + 24))
            surface.blit(self.font.render(verdict, True, MUTED), (panel.x + 26, panel.y + 80))
        else:
            note = (
                "allowed next tokens (exact probability)"
                if alive
                else "no grammatical sentence starts like this: every token is allowed"
            )
            surface.blit(self.small.render(note, True, MUTED), (panel.x + 14, panel.y + 10))
            listed = sorted(valid, key=lambda tp: -tp[1])[:MAX_LISTED] if alive else []
            scale = max([p for _, p in listed], default=0.0) or 1.0
            col_w = (panel.width - 28) // 3
            for i, (token, p) in enumerate(listed):
                cx = panel.x + 14 + (i % 3) * col_w
                cy = panel.y + 36 + (i // 3) * 30
                if cy + 26 > panel.bottom:
                    break
                surface.blit(self.small.render(token, True, PROMPT_TEXT), (cx, cy + 4))
                bar = pg.Rect(cx + 92, cy + 6, col_w - 160, 12)
                pg.draw.rect(surface, BAR_BG, bar, border_radius=6)
                fill = bar.copy()
                fill.width = max(4, int(bar.width * p / scale))
                pg.draw.rect(surface, BAR, fill, border_radius=6)
                share = self.small.render(f"{100 * p:.1f}%", True, MUTED)
                surface.blit(share, (bar.right + 8, cy + 4))
            if len(valid) > len(listed) and alive:
                more = self.small.render(f"+{len(valid) - len(listed)} more", True, MUTED)
                surface.blit(more, (panel.right - more.get_width() - 14, panel.y + 10))
        return np.ascontiguousarray(pg.surfarray.array3d(surface).transpose(1, 0, 2))
