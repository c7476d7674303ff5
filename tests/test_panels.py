"""The action panel: a bar chart of Q-values under the frame, and `lab watch` showing a DQN's."""

from __future__ import annotations

import numpy as np
import pytest

from lab.panels import (
    BAR,
    CHOSEN,
    HEIGHT,
    TEXT_ROWS,
    action_labels,
    action_panel,
    bar_chart,
    spread_format,
)
from lab.viewer import ViewFrame


def bar_extent(strip: np.ndarray, column: int) -> tuple[int, int, tuple[int, ...]]:
    """The first and last row of the bar drawn through ``column`` and its colour."""
    rows = [y for y in range(strip.shape[0]) if tuple(strip[y, column]) in (BAR, CHOSEN)]
    return rows[0], rows[-1], tuple(strip[rows[0], column])


def test_bars_are_proportional_to_the_values_and_the_chosen_one_is_highlighted():
    strip = bar_chart([1.0, 2.0, 4.0], ["a", "b", "c"], width=300, chosen=2)
    assert strip.shape == (HEIGHT, 300, 3) and strip.dtype == np.uint8
    heights = []
    for i in range(3):
        top, bottom, colour = bar_extent(strip, int(100 * i + 50))
        heights.append(bottom - top + 1)
        assert colour == (CHOSEN if i == 2 else BAR)
    assert heights[2] == HEIGHT - 2 * TEXT_ROWS  # the largest fills the plot area
    assert heights[1] == pytest.approx(heights[2] / 2, abs=1)
    assert heights[0] == pytest.approx(heights[2] / 4, abs=1)


def test_negative_values_hang_below_the_baseline():
    strip = bar_chart([-3.0, 1.0], ["neg", "pos"], width=200, chosen=1)
    neg_top, neg_bottom, _ = bar_extent(strip, 50)
    pos_top, pos_bottom, _ = bar_extent(strip, 150)
    assert pos_bottom < neg_top + 1  # the positive bar ends where the negative one starts: the baseline
    assert (neg_bottom - neg_top) == pytest.approx(3 * (pos_bottom - pos_top), abs=2)


def test_labels_must_match_the_values():
    with pytest.raises(ValueError, match="3 values but 2 labels"):
        bar_chart([1, 2, 3], ["a", "b"], width=90)


def test_the_panel_adds_a_strip_and_names_the_values_in_the_hud():
    frame = np.zeros((40, 160, 3), dtype=np.uint8)
    panel = action_panel(lambda obs: np.array([obs, 2 * obs]), ["left", "right"])
    shown = panel.draw(frame, ViewFrame(frame, 0, obs=1.5))
    assert shown.shape == (40 + HEIGHT, 160, 3) and (shown[:40] == 0).all()
    assert panel.describe(ViewFrame(frame, 0, obs=1.5)) == "Q-values: left 1.5  right 3"
    last = panel.draw(frame, ViewFrame(frame, 3, obs=None))  # an episode's end: same size, no bars
    assert last.shape == shown.shape
    assert not np.isin(last[40:].reshape(-1, 3).tolist(), [list(BAR), list(CHOSEN)]).all(axis=1).any()


def test_action_labels_name_known_actions_and_number_the_others():
    import gymnasium as gym

    import envs  # noqa: F401  (registers the lab's environments)

    assert action_labels(gym.make("lab/CliffWalk-v0")) == ["up", "right", "down", "left"]
    assert len(action_labels(gym.make("lab/WindyGrid-v0", king_moves=True))) == 8
    assert action_labels(gym.make("CartPole-v1")) == ["left", "right"]
    assert action_labels(gym.make("Acrobot-v1")) == ["torque -1", "torque 0", "torque +1"]
    # an env this module does not know, and a known id whose action space is not the documented one
    assert action_labels(gym.make("FrozenLake-v1")) == ["0", "1", "2", "3"]
    assert action_labels(gym.make("CartPole-v1").unwrapped) == ["left", "right"]

    class FiveActions(gym.ActionWrapper):
        def __init__(self, env):
            super().__init__(env)
            self.action_space = gym.spaces.Discrete(5)

        def action(self, action):
            return int(action) % 2

    assert action_labels(FiveActions(gym.make("CartPole-v1"))) == ["0", "1", "2", "3", "4"]


def test_a_text_envs_tokens_are_named_as_its_frames_show_them(tmp_path):
    from envs.text import TextGenEnv

    corpus = tmp_path / "odd.txt"
    corpus.write_text("a\x00b\u200bc d\n", encoding="utf-8")
    labels = action_labels(TextGenEnv(f"text:{corpus}", "length", target_length=3))
    assert labels == ["<eos>", "\\x00", "\u00b7", "a", "b", "c", "d", "\\u200b"]
    strip = bar_chart(np.arange(len(labels), dtype=float), labels, width=400)  # pygame draws every label
    assert strip.shape == (HEIGHT, 400, 3)


def test_lunar_lander_actions_are_named():
    import gymnasium as gym

    pytest.importorskip("Box2D", reason="LunarLander needs the box2d extra")
    assert action_labels(gym.make("LunarLander-v3")) == ["none", "left engine", "main engine", "right engine"]


def test_hud_numbers_are_short():
    from lab.viewer import short_number

    assert [short_number(x) for x in (0.0, -13.0, 0.92, 46.8139, 500.0, -100.5)] == [
        "0", "-13", "0.92", "46.81", "500", "-100.5"
    ]  # fmt: skip
    assert [short_number(x, sign=True) for x in (1.0, 0.214319, -0.0012)] == ["+1", "+0.21", "-0.0012"]


@pytest.mark.parametrize(
    ("env_id", "agent", "hyperparameters", "words"),
    [
        ("CartPole-v1", "dqn", {"learning_starts": 50, "policy_kwargs": {"net_arch": [8]}}, "Q-values: left"),
        ("CartPole-v1", "ppo", {"n_steps": 64, "batch_size": 64}, "action probabilities: left 0."),
        ("Pendulum-v1", "ppo", {"n_steps": 64, "batch_size": 64}, "action mean: a0 "),
    ],
)
def test_watch_shows_the_agents_view_of_each_action(tmp_path, env_id, agent, hyperparameters, words):
    import gymnasium as gym
    import imageio.v3 as iio

    from lab.spec import spec_from_dict
    from lab.train import train
    from lab.viewer import Viewer
    from lab.watch import watch

    spec = {
        "name": "panel",
        "env": env_id,
        "agent": agent,
        "hyperparameters": hyperparameters,
        "total_timesteps": 300,
        "eval_interval": 0,
        "eval_episodes": 1,
        "record_episodes": 0,
        "checkpoint_interval": 0,
    }
    [(run, _)] = train(spec_from_dict(spec), runs_dir=tmp_path / "runs", progress=False)
    queue = ["right", "s", "b", "s"]
    huds: list[list[str]] = []
    hud = Viewer.hud

    def spy(viewer):
        huds.append(hud(viewer))
        return huds[-1]

    Viewer.hud = spy  # type: ignore[method-assign]
    try:
        watch(run.path, paused=True, keys=lambda ms: queue.pop(0) if queue else "q", screenshot_dir=tmp_path)
    finally:
        Viewer.hud = hud  # type: ignore[method-assign]
    with_chart, without = (iio.imread(p)[..., :3] for p in sorted(tmp_path.glob("*.png")))
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    below_frame = slice(env.render().shape[0], env.render().shape[0] + HEIGHT)  # where the chart goes

    def bars(image):
        return int((image[below_frame] == BAR).all(axis=-1).sum())

    assert bars(with_chart) > 100 and bars(without) == 0  # 'b' toggled the chart off
    assert with_chart.shape == without.shape  # the window keeps its size; the chart's rows go blank
    assert any(words in line for lines in huds for line in lines)
    if agent == "ppo":
        assert any("V " in line for lines in huds for line in lines)


def test_relative_bars_span_the_states_own_range_so_close_values_differ():
    from lab.panels import STUB

    values = [95.12, 95.15, 95.0]
    strip = bar_chart(values, ["a", "b", "c"], width=300, chosen=1, relative=True)
    heights = [bar_extent(strip, int(100 * i + 50)) for i in range(3)]
    plot = HEIGHT - 2 * TEXT_ROWS
    size = [bottom - top + 1 for top, bottom, _ in heights]
    assert size[1] == plot and size[2] == pytest.approx(STUB * plot, abs=1)  # highest full, lowest a stub
    assert size[0] == pytest.approx(plot * (STUB + (1 - STUB) * 0.12 / 0.15), abs=1)
    assert heights[1][2] == CHOSEN
    absolute = bar_chart(values, ["a", "b", "c"], width=300)
    assert len({bar_extent(absolute, int(100 * i + 50))[0] for i in range(3)}) == 1  # all look the same
    panel = action_panel(lambda obs: np.array(values), ["a", "b", "c"], relative=True)
    frame = np.zeros((10, 300, 3), dtype=np.uint8)
    assert "a 95.12  b 95.15  c 95.00" in panel.describe(ViewFrame(frame, 0, obs=0))
    # as many decimals as the spread needs: a spread of 0.03 gets three, of 0.0003 five
    assert spread_format([95.12, 95.15]) == "{:.3f}" and spread_format([0.1301, 0.1304]) == "{:.5f}"
    assert spread_format([1.0, 2.0]) == "{:.2f}"
    assert spread_format([5.0, 5.0]) == "{:.2f}" and spread_format([1e-9, 2e-9]) == "{:.6f}"
