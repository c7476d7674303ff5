"""The viewer, headless: keys fed to the real loop (pause, step, seek, speed, restart, screenshot, quit),
live sources, overlays, and the value heatmap."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import imageio.v3 as iio
import numpy as np
import pytest

from envs.window import FrameWindow
from lab.core.errors import LabError
from lab.replay_cmd import play_replay, replay_source
from lab.replays import load_episode
from lab.viewer import (
    FPS_STEPS,
    LiveSource,
    Overlay,
    Viewer,
    ViewFrame,
    episode_stream,
    value_heatmap,
    value_overlay,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "replays" / "examples"


class Keys:
    """A key reader that hands out the given keys (None = the wait ran out) and records, before each,
    the position and play state the viewer is in."""

    def __init__(self, viewer_of, keys: list[str | None]) -> None:
        self.viewer_of, self.keys, self.seen = viewer_of, list(keys), []
        self.timeouts: list[int] = []

    def __call__(self, timeout_ms: int) -> str | None:
        viewer = self.viewer_of()
        source = viewer.source
        self.seen.append((source.position if source.seekable else source.current().step, viewer.playing))
        self.timeouts.append(timeout_ms)
        return self.keys.pop(0) if self.keys else "q"


def run(source, keys: list[str | None], **kwargs) -> tuple[Viewer, Keys]:
    holder: list[Viewer] = []
    reader = Keys(lambda: holder[0], keys)
    viewer = Viewer(source, keys=reader, **kwargs)
    holder.append(viewer)
    viewer.run()
    return viewer, reader


@pytest.fixture
def maze():
    return load_episode(EXAMPLES / "Maze-v0.npz")  # 24 steps


def test_play_pause_step_and_seek(maze):
    source, _ = replay_source(maze)
    keys = [
        None,
        None,
        "space",
        "right",
        "right",
        "left",
        "end",
        "home",
        "]",
        "page down",
        "[",
        "page up",
        "left",
    ]
    viewer, reader = run(source, keys)
    positions = [p for p, _ in reader.seen]
    playing = [p for _, p in reader.seen]
    # two timeouts play two frames; space pauses; right x2, left; End, Home; +10, +10, -10, -10; left at 0
    assert positions == [0, 1, 2, 2, 3, 4, 3, 24, 0, 10, 20, 10, 0, 0]
    assert playing == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
        False,
        False,
        False,
        False,
        False,
        False,
        False,
    ]
    assert viewer.window.closed  # q closed the window it opened


def test_playing_stops_at_the_end_and_space_plays_again(maze):
    source, _ = replay_source(maze)
    viewer, reader = run(source, [None] * 26 + ["space", None])
    assert reader.seen[25] == (24, False) and reader.seen[26] == (24, False)
    assert reader.seen[27] == (0, True) and reader.seen[28] == (1, True)
    assert viewer.hud()[1].startswith("step 1/24")


def test_paused_start_waits_idle_and_right_pauses_a_playing_viewer(maze):
    source, _ = replay_source(maze)
    _, reader = run(source, [None, None, "space", None, "right"], paused=True)
    assert [p for p, _ in reader.seen] == [0, 0, 0, 0, 1, 2]
    assert reader.timeouts[0] == 250  # paused: wait for keys, redraw now and then
    assert reader.seen[-1] == (2, False)


def test_speed_keys_step_through_the_ladder_and_show_in_the_hud(maze):
    source, _ = replay_source(maze)
    viewer, _ = run(source, ["+", "=", "[+]", "-"], fps=8)
    assert viewer.fps == 16
    viewer, _ = run(source, ["-"] * 20)
    assert viewer.fps == FPS_STEPS[0]
    viewer, _ = run(source, ["+"] * 20)
    assert viewer.fps == FPS_STEPS[-1]
    assert viewer.hud()[2].startswith(f"{FPS_STEPS[-1]:g} fps")


def test_speed_keys_off_the_ladder_never_go_the_wrong_way():
    from lab.viewer.loop import _next_speed

    assert [_next_speed(fps, faster=True) for fps in (1000, 128, 100, 0.01, 5)] == [1000, 128, 128, 0.5, 6]
    assert [_next_speed(fps, faster=False) for fps in (0.01, 0.5, 0.7, 1000, 5)] == [0.01, 0.5, 0.5, 128, 4]


def test_restart_and_escape(maze):
    source, _ = replay_source(maze)
    _, reader = run(source, ["end", "r", "escape", "right"], paused=True)
    assert [p for p, _ in reader.seen] == [0, 24, 0]  # escape quit before the last key


def test_hud_names_the_step_action_reward_return_and_ending():
    episode = load_episode(EXAMPLES / "KeyDoor-v0.npz")
    source, _ = replay_source(episode, EXAMPLES / "KeyDoor-v0.npz")
    viewer, _ = run(source, [], paused=True)
    hud = viewer.hud()
    assert hud[0].startswith("KeyDoor-v0 - KeyDoor-v0.npz") and "seed 0" in hud[0]
    assert hud[1] == "step 0/9   last action -   reward -   return 0"
    assert "paused" in hud[2] and "8 fps" in hud[2]
    source.seek(9)
    assert viewer.hud()[1] == "step 9/9   last action right   reward +1   return 0.92   goal reached!"


def test_screenshot_is_saved_in_the_current_folder_and_named_on_the_status_line(
    tmp_path, maze, capsys, monkeypatch
):
    replay = tmp_path / "replays" / "maze.npz"  # like replays/examples/: screenshots must not land there
    replay.parent.mkdir()
    replay.write_bytes((EXAMPLES / "Maze-v0.npz").read_bytes())
    monkeypatch.chdir(tmp_path)
    holder: list = []

    def keys(timeout_ms):
        return ["right", "s", "s", None, "q"][len(holder) - 1 if holder.append(0) is None else 0]

    shots = play_replay(maze, replay, keys=keys, paused=True)
    assert [p.name for p in shots] == ["maze_step0001.png", "maze_step0001_1.png"]
    assert all(p.parent == tmp_path for p in shots) and list(replay.parent.iterdir()) == [replay]
    image = iio.imread(shots[0])
    assert image.ndim == 3 and image.shape[2] in (3, 4) and image.shape[0] > 594  # the frame and the HUD
    assert "screenshot: " + str(shots[0]) in capsys.readouterr().out


def test_screenshot_message_shows_on_the_hud(tmp_path, maze):
    source, _ = replay_source(maze)
    viewer, _ = run(source, ["s"], paused=True, screenshot_dir=tmp_path, screenshot_stem="shot")
    assert (tmp_path / "shot_step0000.png").exists()
    assert "saved shot_step0000.png" in viewer.hud()[3]


def test_a_screenshot_that_cannot_be_saved_is_said_on_the_hud_and_the_viewer_goes_on(tmp_path, maze):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where the screenshot folder would be")
    source, _ = replay_source(maze)
    viewer, reader = run(source, ["s", "right"], paused=True, screenshot_dir=blocker / "shots")
    assert viewer.screenshots == [] and [p for p, _ in reader.seen] == [0, 0, 1]  # it went on
    assert viewer.hud()[3] == f"could not save screenshot in {blocker / 'shots'}: Not a directory"


def test_the_default_key_reader_drives_the_loop_through_the_window(monkeypatch, maze):
    import pygame

    codes = [pygame.K_RIGHT, pygame.K_RIGHT, pygame.K_PAGEDOWN, pygame.K_q]
    monkeypatch.setattr(FrameWindow, "wait_key", lambda self, timeout_ms=50: codes.pop(0))
    source, _ = replay_source(maze)
    viewer = Viewer(source, paused=True)
    viewer.run()
    assert source.position == 12 and not codes


def test_closing_the_window_quits(maze):
    import pygame

    source, _ = replay_source(maze)
    window = FrameWindow("test")
    calls = []

    def keys(timeout_ms):
        calls.append(timeout_ms)
        pygame.event.post(pygame.event.Event(pygame.QUIT))
        window.poll()
        return None

    Viewer(source, window=window, keys=keys).run()
    assert window.closed and len(calls) == 1
    window.close()


def live_factory(counter: list[int]):
    def factory() -> Iterator[ViewFrame]:
        counter.append(1)
        for t in range(5):
            yield ViewFrame(
                np.full((8, 8, 3), 40 * t, np.uint8), step=t, episode=len(counter), total=float(t)
            )

    return factory


def test_live_sources_play_and_restart_but_do_not_seek():
    made: list[int] = []
    source = LiveSource(live_factory(made), title="live")
    viewer, reader = run(source, [None, None, "left", "home", "r", None, None, None, None, None, None])
    steps = [s for s, _ in reader.seen]
    assert steps == [0, 1, 2, 2, 2, 0, 1, 2, 3, 4, 4, 4]
    assert len(made) == 2 and viewer.at_end
    assert "cannot seek" in viewer.hud()[3]
    assert "step 4   " in viewer.hud()[1] and "/" not in viewer.hud()[1].split()[1]


def test_a_viewer_that_closes_at_the_end_says_so_rather_than_that_space_plays_again(monkeypatch):
    shown: list[list[str]] = []
    show = FrameWindow.show
    monkeypatch.setattr(
        FrameWindow, "show", lambda self, frame, lines=(): shown.append(lines) or show(self, frame, lines)
    )
    run(LiveSource(live_factory([]), title="live"), [None] * 5, quit_at_end=True)  # plays to the end
    assert shown[-1][2] == "8 fps   end (closing; any key closes now)"
    run(LiveSource(live_factory([]), title="live"), ["right"] * 5, paused=True, quit_at_end=True)
    assert shown[-1][2] == "8 fps   end (space plays again)"  # stepped there by hand: it stays open


def test_a_live_agent_streams_episode_after_episode_with_its_values():
    grid, plan = grid_and_plan("lab/KeyDoor-v0")
    env = gym.make("lab/KeyDoor-v0", render_mode="rgb_array")
    source = LiveSource(
        lambda: episode_stream(env, lambda obs, info: int(plan.policy[info["state"]])), "watch"
    )
    overlay = value_overlay(grid.model, plan.V, plan.policy)
    viewer, reader = run(source, ["v", *[None] * 11], overlays=[overlay])
    view = source.current()
    assert [s for s, _ in reader.seen][-3:] == [9, 0, 1]  # the optimal 9 steps, then the next episode
    assert view.episode == 2 and view.action == "down" and view.state == env.unwrapped.state
    assert "V here" in viewer.hud()[2] and viewer.hud()[0] == "watch   episode 2"
    frames = list(episode_stream(env, lambda obs, info: int(plan.policy[info["state"]]), episodes=1))
    assert (
        len(frames) == 10 and frames[-1].note == "goal reached!" and frames[-1].total == pytest.approx(0.92)
    )


def test_overlays_toggle_with_their_key_and_describe_themselves(maze):
    def invert(frame, view):
        return 255 - frame

    overlay = Overlay("x", "inverted", invert, describe=lambda view: f"inverted at {view.step}")
    source, _ = replay_source(maze)
    viewer, _ = run(source, ["x"], paused=True, overlays=[overlay])
    assert overlay.enabled
    np.testing.assert_array_equal(viewer.frame(), 255 - source.current().frame)
    assert "inverted at 0" in viewer.hud()[2] and "x inverted" in viewer.hud()[5]
    viewer.handle("x")
    np.testing.assert_array_equal(viewer.frame(), source.current().frame)


def test_replays_of_grid_worlds_toggle_the_optimal_value_overlay(tmp_path):
    episode = load_episode(EXAMPLES / "KeyDoor-v0.npz")
    source, overlays = replay_source(episode)
    (values,) = overlays
    assert values.key == "v" and not values.enabled
    keys = ["end", "left", "left", "left", "v", "s"]
    options = {"paused": True, "overlays": overlays, "screenshot_dir": tmp_path, "screenshot_stem": "heat"}
    viewer, _ = run(source, keys, **options)
    assert values.enabled and "V here" in viewer.hud()[2]
    shot = iio.imread(tmp_path / "heat_step0006.png")
    frame = source.current().frame
    assert not np.array_equal(shot[: frame.shape[0], : frame.shape[1], :3], frame)  # the heatmap is drawn


# ----- the heatmap -----


def grid_and_plan(env_id: str, **kwargs):
    from agents.planning import value_iteration

    grid = gym.make(env_id, **kwargs).unwrapped
    plan = value_iteration(grid.transition_model(), gamma=0.99)
    return grid, plan


def cell(frame: np.ndarray, grid, row: int, col: int) -> np.ndarray:
    t = grid.render_tile_size
    return frame[row * t : (row + 1) * t, col * t : (col + 1) * t]


def test_heatmap_tints_live_cells_by_value_and_leaves_terminal_and_agent_cells():
    grid, plan = grid_and_plan("lab/CliffWalk-v0")
    grid.reset(seed=0)
    frame = grid.frame()
    model = grid.model
    start = int(model.start_states[0])
    out = value_heatmap(frame, model, plan.V, None, agent_state=start)
    assert out.shape == frame.shape and out.dtype == np.uint8
    goal = model.state_of(3, 11)
    for s in (goal, model.state_of(3, 5), start):  # goal, a cliff cell, the agent
        r, c = model.state_row[s], model.state_col[s]
        np.testing.assert_array_equal(cell(out, grid, r, c), cell(frame, grid, r, c))
    # viridis grows brighter with value: the cell next to the goal is brighter than the far corner
    near, far = cell(out, grid, 2, 11).mean(), cell(out, grid, 0, 0).mean()
    assert plan.V[model.state_of(2, 11)] > plan.V[model.state_of(0, 0)] and near > far


def test_heatmap_arrows_point_along_the_greedy_action():
    grid = gym.make("lab/FourRooms-v0").unwrapped
    model = grid.model
    frame = np.full_like(grid.frame(), 128)
    V = np.zeros(model.n_states)
    s = model.state_of(1, 1)
    for action, (dr, dc) in enumerate(model.moves):
        policy = np.full(model.n_states, action)
        with_arrow = cell(value_heatmap(frame, model, V, policy), grid, 1, 1).astype(int)
        without = cell(value_heatmap(frame, model, V, None), grid, 1, 1).astype(int)
        ink = np.abs(with_arrow - without).sum(axis=2) > 0
        rows, cols = np.nonzero(ink)
        t = grid.render_tile_size
        # the head is the heavy end: the ink's centre of mass sits forward of the cell's centre
        assert np.sign(round(cols.mean() - (t - 1) / 2)) == np.sign(dc), (action, s)
        assert np.sign(round(rows.mean() - (t - 1) / 2)) == np.sign(dr), (action, s)


def test_heatmap_follows_the_key_door_phase_and_checks_its_input():
    grid, plan = grid_and_plan("lab/KeyDoor-v0")
    model = grid.model
    grid.reset(seed=0)
    frame = grid.frame()
    phases = [value_heatmap(frame, model, plan.V, plan.policy, phase) for phase in range(3)]
    assert not np.array_equal(phases[0], phases[2])
    with pytest.raises(ValueError, match="phase"):
        value_heatmap(frame, model, plan.V, plan.policy, 3)
    with pytest.raises(ValueError, match="one entry per state"):
        value_heatmap(frame, model, plan.V[:-1])
    with pytest.raises(ValueError, match="tile size"):
        value_heatmap(frame[:-1], model, plan.V)


def test_value_overlay_reads_the_phase_from_the_state_and_accepts_a_function():
    grid, plan = grid_and_plan("lab/KeyDoor-v0")
    model = grid.model
    grid.reset(seed=0)
    frame = grid.frame()
    calls = []

    def current():
        calls.append(1)
        return plan.V, plan.policy

    overlay = value_overlay(model, current, enabled=True)
    in_phase_2 = model.n_cells * 2 + int(model.start_states[0])
    drawn = overlay.draw(frame.copy(), ViewFrame(frame, 0, state=in_phase_2))
    np.testing.assert_array_equal(
        drawn, value_heatmap(frame, model, plan.V, plan.policy, 2, agent_state=in_phase_2)
    )
    assert calls and "V here" in overlay.describe(ViewFrame(frame, 0, state=in_phase_2))


def test_a_message_takes_its_own_line_so_the_help_lines_stay(maze):
    source, _ = replay_source(maze)
    viewer, _ = run(source, [], paused=True)
    quiet = viewer.hud()
    viewer.say("saved a_rather_long_screenshot_name_step0000.png")
    loud = viewer.hud()
    assert len(quiet) == len(loud) and quiet[3] == "" and "saved" in loud[3]
    assert loud[-1].endswith("q quit") and loud[-2].startswith("space pause")


def fake_screen(monkeypatch, size):
    import pygame

    monkeypatch.setattr(pygame.display, "get_driver", lambda: "x11")
    monkeypatch.setattr(pygame.display, "get_desktop_sizes", lambda: [size])


def test_a_window_larger_than_the_screen_is_scaled_to_fit(monkeypatch):
    fake_screen(monkeypatch, (1280, 800))
    window = FrameWindow("big", scale=2)  # the pixel maze at --scale 2: 1188 x 1622 pixels
    try:
        frame = np.full((811, 594, 3), 200, dtype=np.uint8)
        window.show(frame, ["one", "two", "three", "", "five"])
        w, h = window._screen.get_size()
        assert h <= 800 - 40 and w <= 1280 and window.shrink < 0.5
        shot = window.snapshot()
        assert shot.shape == (h, w, 3) and (shot[:10, w // 2] > 190).all()  # the frame, smoothly scaled
        window.show(frame, ["one", "two", "three", "", "five"])
        assert window._screen.get_size() == (w, h)
    finally:
        window.close()


def test_the_window_keeps_its_size_for_smaller_frames():
    window = FrameWindow("scenes")
    try:
        window.show(np.zeros((300, 600, 3), dtype=np.uint8), ["a"])
        size = window._screen.get_size()
        window.show(np.full((100, 200, 3), 255, dtype=np.uint8), ["a"])
        assert window._screen.get_size() == size
        window.reserve(400, 600)  # room for a bigger scene to come
        window.show(np.zeros((100, 200, 3), dtype=np.uint8), ["a"])
        assert window._screen.get_size()[1] == size[1] + 100
    finally:
        window.close()


def test_video_frames_carry_the_hud_lines(maze):
    from lab.viewer import video_frames

    source, _ = replay_source(maze)
    plain = video_frames(source)
    hud = video_frames(source, hud=True)
    assert len(plain) == len(hud) == maze.length + 1
    assert plain[0].shape == source.current().frame.shape
    assert hud[0].shape[0] > plain[0].shape[0] and len({f.shape for f in hud}) == 1
    np.testing.assert_array_equal(hud[5][: plain[5].shape[0], : plain[5].shape[1]], plain[5])


def test_video_frames_stop_at_the_memory_bound(maze, monkeypatch):
    from lab.viewer import loop, video_frames

    source, _ = replay_source(maze)
    frame_bytes = source.current().frame.nbytes
    monkeypatch.setattr(loop, "MAX_VIDEO_BYTES", 3 * frame_bytes)  # room for three frames
    with pytest.raises(LabError, match=r"4 frames passed it: ask for fewer --episodes"):
        video_frames(source)
