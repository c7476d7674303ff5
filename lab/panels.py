"""A bar chart of what an agent thinks of each action, drawn as a strip under the frame.

``lab watch`` shows a DQN's Q-values of the state on screen this way (and a policy's action
probabilities, for the policy-gradient agents): one bar per action, the chosen one highlighted, each
labelled with its action name and number. Bars are drawn with numpy; the labels use pygame's
default font when pygame is importable (it always is where a window opens) and are left out
otherwise, so the chart also works in plain image pipelines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lab.evaluation import uses_masking
from lab.text_prefix import allowed_tokens, next_token_probabilities, text_env
from lab.viewer import Overlay, ViewFrame

BACKGROUND = (30, 34, 43)
BAR = (96, 140, 200)
CHOSEN = (240, 176, 64)
AXIS = (150, 156, 170)
TEXT = (226, 230, 238)
HEIGHT = 120  # pixels of the strip
TEXT_ROWS = 16  # pixels reserved above and below the bars for labels
STUB = 0.1  # with relative bars, the smallest value's bar is this fraction of the plot's height
REFERENCE = (112, 178, 132)  # a ranked chart's second bar: the language's probability
TOP_K = 8  # rows of a ranked chart
RANK_ROW = 20  # pixels per row of a ranked chart
RANK_FONT = 18
MANY_ACTIONS = 16  # above this many actions, a ranked chart of the top ones instead of a bar each


def _text(
    strip: np.ndarray,
    text: str,
    x: int,
    top: int,
    size: int = 16,
    anchor: str = "centre",
    colour: tuple[int, int, int] = TEXT,
) -> None:
    """Write ``text`` into ``strip`` (H, W, 3) centred on ``x`` (``anchor="left"``: starting at it;
    skipped without pygame)."""
    from envs.window import quiet_sdl

    quiet_sdl()
    try:
        import pygame
    except ImportError:  # pragma: no cover - pygame-ce is a dependency of the lab
        return
    if not pygame.font.get_init():
        pygame.font.init()
    surface = pygame.font.Font(None, size).render(text, True, colour, BACKGROUND)
    glyphs = pygame.surfarray.array3d(surface).swapaxes(0, 1)
    h, w = glyphs.shape[:2]
    left = max(0, min(strip.shape[1] - w, x - w // 2 if anchor == "centre" else x))
    h, w = min(h, strip.shape[0] - top), min(w, strip.shape[1] - left)
    if h > 0 and w > 0:
        strip[top : top + h, left : left + w] = glyphs[:h, :w]


def bar_chart(
    values: Sequence[float] | np.ndarray,
    labels: Sequence[str],
    width: int,
    chosen: int | None = None,
    height: int = HEIGHT,
    fmt: str = "{:.3g}",
    relative: bool = False,
) -> np.ndarray:
    """An ``(height, width, 3)`` uint8 strip with one bar per value, from a zero baseline.

    Bars scale to the largest magnitude, so negative values (a penalty-heavy task's Q-values) hang
    below the baseline. With ``relative`` they span the values' own range instead: the smallest a
    short stub, the largest the full height, so Q-values of 95.12 and 95.15 look different (the
    numbers above the bars say what they are). The bar at ``chosen`` is highlighted. Each bar
    carries its value above and its label below.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if len(labels) != len(values):
        raise ValueError(f"{len(values)} values but {len(labels)} labels")
    strip = np.empty((height, width, 3), dtype=np.uint8)
    strip[:] = BACKGROUND
    n = len(values)
    if n == 0:
        return strip
    finite = np.where(np.isfinite(values), values, 0.0)
    top, bottom = TEXT_ROWS, height - TEXT_ROWS
    if relative:
        low, high = finite.min(), finite.max()
        spread = (finite - low) / (high - low) if high > low else np.ones(n)
        finite = STUB + (1 - STUB) * spread  # heights as fractions of the plot: in [STUB, 1]
        high, low = 1.0, 0.0
    else:
        high, low = max(finite.max(), 0.0), min(finite.min(), 0.0)
    span = high - low or 1.0
    baseline = top + round((bottom - top) * high / span)
    slot = width / n
    bar_width = max(1, int(slot * 0.6))
    strip[baseline, :] = AXIS
    for i, value in enumerate(finite):
        left = int(i * slot + (slot - bar_width) / 2)
        end = baseline - round((bottom - top) * value / span)
        y0, y1 = sorted((baseline, end))
        strip[y0 : max(y1, y0 + 1), left : left + bar_width] = CHOSEN if i == chosen else BAR
        centre = left + bar_width // 2
        _text(strip, fmt.format(values[i]), centre, 1)
        _text(strip, labels[i], centre, height - TEXT_ROWS + 1)
    return strip


def spread_format(values: np.ndarray, least: int = 2, most: int = 6) -> str:
    """A format with enough decimals (``least`` to ``most``) for the values' spread to show in their
    numbers: 95.123 and 95.153 rather than 95.12 and 95.15, or 0.13 four times."""
    finite = np.asarray(values, dtype=np.float64)[np.isfinite(values)]
    span = float(finite.max() - finite.min()) if finite.size > 1 else 0.0
    decimals = least if span <= 0 else int(np.clip(np.ceil(-np.log10(span)) + 1, least, most))
    return f"{{:.{decimals}f}}"


def action_panel(
    readout: Callable[[Any], np.ndarray],
    labels: Sequence[str],
    *,
    key: str = "b",
    name: str = "Q-values",
    enabled: bool = True,
    pick: Callable[[np.ndarray], int | None] = lambda v: int(np.argmax(v)),
    fmt: str = "{:.3g}",
    note: Callable[[Any], str] | None = None,
    relative: bool = False,
) -> Overlay:
    """An :class:`~lab.viewer.Overlay` adding a :func:`bar_chart` of ``readout(obs)`` under the frame.

    ``readout`` maps the observation the agent is about to act on (``ViewFrame.obs``) to one number
    per action; ``pick`` says which bar to highlight (the greedy action by default; None for none);
    ``note(obs)`` adds a few words to the HUD (a policy's value estimate, a Gaussian's spread);
    ``relative`` draws the bars from the state's smallest to largest value (:func:`bar_chart`), with
    as many decimals as the values' spread needs (:func:`spread_format`; ``fmt`` is then unused). Frames
    without an observation (an episode's last frame) get an empty strip.
    """

    def draw(frame: np.ndarray, view: ViewFrame) -> np.ndarray:
        if view.obs is None:  # an episode's last frame: an empty strip keeps the window's size
            return np.concatenate([frame, bar_chart([], [], frame.shape[1])], axis=0)
        values = np.asarray(readout(view.obs), dtype=np.float64).ravel()
        shown = spread_format(values) if relative else fmt
        chart = bar_chart(values, labels, frame.shape[1], chosen=pick(values), fmt=shown, relative=relative)
        return np.concatenate([frame, chart], axis=0)

    def describe(view: ViewFrame) -> str:
        if view.obs is None:
            return ""
        values = np.asarray(readout(view.obs), dtype=np.float64).ravel()
        shown = spread_format(values) if relative else fmt
        text = f"{name}: " + "  ".join(
            f"{label} {shown.format(v)}" for label, v in zip(labels, values, strict=True)
        )
        if relative:
            text += "   (bars from lowest to highest)"
        return text + (f"   {note(view.obs)}" if note is not None else "")

    return Overlay(key=key, name=name, draw=draw, enabled=enabled, describe=describe)


def top_k(values: np.ndarray, k: int) -> np.ndarray:
    """The indices of the ``k`` largest values, largest first (ties: the smaller index first)."""
    values = np.asarray(values, dtype=np.float64)
    return np.lexsort((np.arange(len(values)), -np.nan_to_num(values, nan=-np.inf)))[:k]


def ranked_chart(
    values: np.ndarray,
    labels: Sequence[str],
    width: int,
    k: int = TOP_K,
    reference: np.ndarray | None = None,
    names: tuple[str, str] = ("probability", "reference"),
    fmt: str = "{:.3f}",
    relative: bool = False,
) -> np.ndarray:
    """An ``(H, width, 3)`` strip: the ``k`` actions with the largest ``values`` as rows, largest
    first (the first, the greedy action, highlighted), each labelled, with a horizontal bar and its
    number; with ``reference`` (say a language's probability of each action) a second bar per row.

    Bars share one scale, the largest value shown, so a probability and a reference probability are
    comparable; with ``relative`` (Q-values) the value bars span all values' own range as in
    :func:`bar_chart`, and the reference bars keep their own scale. Rows whose reference is 0 (an
    action the reference rules out) have their label dimmed.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if len(labels) != len(values):
        raise ValueError(f"{len(values)} values but {len(labels)} labels")
    rows = top_k(values, k)
    height = TEXT_ROWS + 4 + RANK_ROW * len(rows) + 4
    strip = np.empty((height, width, 3), dtype=np.uint8)
    strip[:] = BACKGROUND
    finite = np.where(np.isfinite(values), values, 0.0)
    if reference is not None:
        reference = np.asarray(reference, dtype=np.float64).ravel()
    ref_top = 0.0 if reference is None else float(reference[rows].max(initial=0.0))
    if relative:
        low, high = finite.min(), finite.max()
        spread = (finite - low) / (high - low) if high > low else np.ones(len(finite))
        fractions = STUB + (1 - STUB) * spread
        ref_scale = ref_top or 1.0
    else:
        ref_scale = max(float(finite[rows].max(initial=0.0)), ref_top) or 1.0  # one scale for both
        fractions = finite / ref_scale
    label_w = min(150, width // 4)
    columns = 1 if reference is None else 2
    column_w = (width - label_w - 10) // columns
    bar_w = max(8, column_w - 70)
    headers = [f"top {len(rows)} of {len(values)}", *names[:columns]]
    if reference is not None:
        j = int(np.argmax(reference))  # the reference's own favourite, even when it is off the list
        headers[2] += f"; likeliest {labels[j]} {reference[j]:.3f}" if reference[j] > 0 else "; all 0"
    for c, header in enumerate(headers):
        _text(strip, header, 8 if c == 0 else label_w + (c - 1) * column_w, 3, anchor="left", colour=AXIS)
    for r, i in enumerate(rows):
        y = TEXT_ROWS + 4 + r * RANK_ROW
        dim = reference is not None and reference[i] <= 0
        label = _clip(labels[i], label_w - 16, RANK_FONT)
        _text(strip, label, 8, y + 3, RANK_FONT, anchor="left", colour=AXIS if dim else TEXT)
        bars = [(fractions[i], values[i], CHOSEN if r == 0 else BAR, fmt)]
        if reference is not None:
            bars.append((reference[i] / ref_scale, reference[i], REFERENCE, "{:.3f}"))
        for c, (fraction, value, colour, shown_fmt) in enumerate(bars):
            x = label_w + c * column_w
            length = max(1, round(bar_w * float(np.clip(fraction, 0.0, 1.0))))
            strip[y + 4 : y + RANK_ROW - 4, x : x + length] = colour
            _text(strip, shown_fmt.format(value), x + length + 6, y + 3, RANK_FONT, anchor="left")
    return strip


def _clip(text: str, pixels: int, size: int = 16) -> str:
    """``text`` shortened with an ellipsis to fit ``pixels`` (at the chart's font)."""
    try:
        import pygame
    except ImportError:  # pragma: no cover - pygame-ce is a dependency of the lab
        return text
    if not pygame.font.get_init():
        pygame.font.init()
    font = pygame.font.Font(None, size)
    while font.size(text)[0] > pixels and len(text) > 2:
        text = text[:-2] + "\u2026"
    return text


def ranked_panel(
    readout: Callable[[Any], np.ndarray],
    labels: Sequence[str],
    *,
    key: str = "b",
    name: str = "action probabilities",
    k: int = TOP_K,
    reference: Callable[[Any], np.ndarray | None] | None = None,
    reference_name: str = "reference",
    relative: bool = False,
    fmt: str = "{:.3f}",
    note: Callable[[Any], str] | None = None,
) -> Overlay:
    """An :class:`~lab.viewer.Overlay` adding a :func:`ranked_chart` of ``readout(obs)`` under the
    frame: the top ``k`` actions of many (a text env's tokens), beside ``reference(obs)`` when it
    gives one; the HUD names the top three. Frames without an observation get an empty strip of the
    same size."""

    def measure(obs: Any) -> tuple[np.ndarray, np.ndarray | None]:
        values = np.asarray(readout(obs), dtype=np.float64).ravel()
        return values, None if reference is None else reference(obs)

    def draw(frame: np.ndarray, view: ViewFrame) -> np.ndarray:
        width = frame.shape[1]
        if view.obs is None:  # an episode's last frame: an empty strip keeps the window's size
            blank = ranked_chart(np.zeros(len(labels)), labels, width, k)
            blank[:] = BACKGROUND
            return np.concatenate([frame, blank], axis=0)
        values, ref = measure(view.obs)
        shown = spread_format(values) if relative else fmt
        names = (name, reference_name)
        chart = ranked_chart(values, labels, width, k, ref, names, shown, relative)
        return np.concatenate([frame, chart], axis=0)

    def describe(view: ViewFrame) -> str:
        if view.obs is None:
            return ""
        values, _ = measure(view.obs)
        shown = spread_format(values) if relative else fmt
        best = ", ".join(f"{labels[i]} {shown.format(values[i])}" for i in top_k(values, 3))
        return f"{name}, top 3: {best}" + (f"   {note(view.obs)}" if note is not None else "")

    return Overlay(key=key, name=name, draw=draw, enabled=True, describe=describe)


def action_labels(env: Any) -> list[str]:
    """Names for a Discrete action space's actions (:func:`lab.action_names.action_names`), else the
    numbers."""
    from lab.action_names import action_names

    space = env.action_space
    start = int(getattr(space, "start", 0))
    return list(action_names(env)) or [str(start + i) for i in range(int(space.n))]


def agent_panel(agent: Any, env: Any) -> Overlay | None:
    """The panel for an agent: a DQN's Q-values, a policy's action probabilities and value estimate,
    or a Gaussian policy's mean per action dimension (its std and the value in the HUD); None for
    agents with none of these (the tabular ones show their values on the grid instead).

    On a text env, and wherever there are more than :data:`MANY_ACTIONS` actions, it is a
    :func:`ranked_panel` of the top tokens, beside the language's exact next-token probability."""
    ranked = text_env(env) is not None or int(getattr(env.action_space, "n", 0)) > MANY_ACTIONS
    language = language_reference(env)
    if hasattr(agent, "q_values"):
        if ranked:
            return ranked_panel(agent.q_values, action_labels(env), name="Q-value", relative=True, **language)
        return action_panel(agent.q_values, action_labels(env), name="Q-values", relative=True)
    if not hasattr(agent, "value"):
        return None

    def value_note(obs: Any) -> str:
        return f"V {agent.value(obs):.3g}"

    if hasattr(env.action_space, "n"):
        if ranked:
            probabilities = agent.action_probabilities
            text = text_env(env)
            if text is not None and uses_masking(agent):

                def probabilities(obs: Any) -> np.ndarray:  # what the agent acts on: its masked policy
                    return agent.action_probabilities(obs, action_masks=allowed_tokens(text, obs))

            labels = action_labels(env)
            return ranked_panel(probabilities, labels, name="policy p", note=value_note, **language)
        return action_panel(
            agent.action_probabilities, action_labels(env), name="action probabilities", fmt="{:.2f}",
            note=value_note,
        )  # fmt: skip

    def spread(obs: Any) -> str:
        _, std = agent.action_distribution(obs)
        return "std " + " ".join(f"{s:.3g}" for s in np.ravel(std)) + f"   {value_note(obs)}"

    dims = int(np.prod(env.action_space.shape))
    return action_panel(
        lambda obs: agent.action_distribution(obs)[0], [f"a{i}" for i in range(dims)],
        name="action mean", pick=lambda v: None, note=spread,
    )  # fmt: skip


def language_reference(env: Any) -> dict[str, Any]:
    """:func:`ranked_panel`'s ``reference`` for a text env whose language has exact probabilities: the
    next-token probability after the text on screen; empty for other envs."""
    text = text_env(env)
    if text is None or text.language.pcfg is None:
        return {}
    return {
        "reference": lambda obs: next_token_probabilities(text, obs),
        "reference_name": "language p (exact)",
    }
