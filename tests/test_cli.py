"""The ``lab`` command: listing, playing (keys fed to the real loop), the demo GIF, and one-line errors."""

from __future__ import annotations

import re
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
from play_keys import feed_keys

import envs
from envs.window import PAD, FrameWindow
from lab.cli import main
from lab.core.environments import parse_kwargs, resolve_env_id
from lab.core.errors import LabError


def run_lab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_envs_lists_every_registered_id():
    result = run_lab("envs")
    assert result.returncode == 0, result.stderr
    for entry in (*envs.ENTRIES, *envs.TEXT_ENTRIES):
        assert entry.id in result.stdout
    assert resolve_env_id("TextDyck") == "lab/TextDyck-v0"  # short names work for text presets too


def test_train_help_names_every_agent(capsys):
    from agents import AGENTS

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps the list across lines
    listed = re.search(r"--agent AGENT one of: ([\w, ]+)", help_text)
    assert listed is not None and set(listed.group(1).strip().split(", ")) == set(AGENTS)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("play", "Nope"), "unknown environment 'Nope'"),
        (("play", "Maz"), "did you mean"),
        (("play", "Maze", "-k", "size=4"), "maze size must be an odd integer >= 5"),
        (("play", "Maze", "-k", "bogus=1"), "takes no argument 'bogus' (see"),
        (("play", "Maze", "-k", "sise=7"), "takes no argument 'sise'; did you mean 'size'?"),
        (("play", "CliffWalk", "-k", "slip_prb=0.1"), "did you mean 'slip_prob'?"),  # GridWorld's
        (("play", "Maze", "-k", "obs_type=rgb"), "unknown observation type 'rgb'"),
        (("play", "Maze", "-k", "size"), "environment arguments are key=value"),
        (("play", "GridWorld", "-k", "ascii_map=[S.G, .x.G]"), "ragged map"),
        (("play", "GridWorld", "-k", "ascii_map=[S.x, ..G]"), "unknown map character 'x' at row 0, column 2"),
        (("play", "GridWorld", "-k", "ascii_map=[S#G]"), "no goal can be reached"),
        (("play", "GridWorld", "-k", "ascii_map=[..G]"), "no start"),
        (("demo", "--env", "Nope", "--gif", "x.gif"), "unknown environment"),
        (("eval", "runs/x", "--seed", "-1"), "a seed is a whole number from 0 to 2**64 - 1; got -1"),
        (("eval", "runs/x", "--debug"), "--debug goes before the command: lab --debug COMMAND"),
        (("watch", "runs/x", "--to", "x.gif", "--episodes", "100000"), "from 1 to 10000; got 100000"),
        (("train", "--resume", "runs/x", "--steps", "9", "--set", "a=1"), "leave out --steps and --set"),
        (("gen", "train", "--resume", "runs/x", "--minutes", "2"), "leave out --minutes (start"),
        (("lm", "train", "--resume", "runs/x", "--seed", "3"), "leave out --seed (start"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(args, message):
    result = run_lab(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback():
    result = run_lab("--debug", "play", "Maze", "-k", "size=4")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "MapError" in result.stderr


def test_a_status_line_wider_than_the_window_wraps_at_spaces():
    window = FrameWindow("wrap test")
    long_line = "30 fps   playing   Q-values: none 29.7  left engine 29.7  main engine 29.7  right engine 29"
    frame = np.zeros((40, 200, 3), dtype=np.uint8)  # narrower than the window's 480-pixel minimum
    try:
        window.show(frame, ["short", long_line])
        width = window._screen.get_width()
        rows = window.wrap(["short", long_line], width)
        assert len(rows) > 2 and rows[0] == "short"
        assert all(window._font.size(row)[0] <= width - 2 * PAD for row in rows)
        assert " ".join(rows[1:]).split() == long_line.split()  # every word, in order
        assert window._bar_lines >= len(rows)  # the status bar grew to hold them
    finally:
        window.close()


def test_resolve_env_id_accepts_short_names():
    assert resolve_env_id("lab/Maze-v0") == "lab/Maze-v0"
    assert resolve_env_id("Maze-v0") == "lab/Maze-v0"
    assert resolve_env_id("icelake8x8") == "lab/IceLake8x8-v0"
    assert resolve_env_id("FrozenLake-v1") == "FrozenLake-v1"  # any gymnasium id passes through
    with pytest.raises(LabError, match="did you mean 'KeyDoor'"):
        resolve_env_id("KeyDor")
    with pytest.raises(LabError, match="did you mean 'CartPole-v1'"):  # gymnasium's ids are suggested too
        resolve_env_id("CartPol-v1")
    # An id of a package that is not installed: said so, not a far-fetched suggestion ('Ant-v5')
    with pytest.raises(LabError, match="no such id is registered in this installation") as error:
        resolve_env_id("Pong-v5")
    assert "did you mean" not in str(error.value) and "lab envs --all" in str(error.value)


def test_envs_all_lists_gymnasium_ids_too():
    result = run_lab("envs", "--all")
    assert result.returncode == 0, result.stderr
    assert all(i in result.stdout for i in ("lab/Maze-v0", "CartPole-v1", "Pendulum-v1"))
    assert "CartPole-v1" not in run_lab("envs").stdout


def test_a_missing_optional_dependency_names_the_lab_extra(monkeypatch):
    import gymnasium as gym

    from lab.core.environments import make_env

    def missing(message):
        def make(*args, **kwargs):
            raise gym.error.DependencyNotInstalled(message)

        return make

    box2d = (  # gymnasium's own message
        "Box2D is not installed, you can install it by run `pip install swig` followed by "
        '`pip install "gymnasium[box2d]"`'
    )
    monkeypatch.setattr(gym, "make", missing(box2d))
    with pytest.raises(
        LabError, match=r"LunarLander-v3 needs Box2D: pip install -c constraints.txt -e '\.\[box2d\]'"
    ):
        make_env("LunarLander-v3")
    monkeypatch.setattr(gym, "make", missing("MuJoCo is not installed"))
    with pytest.raises(
        LabError, match="CartPole-v1 needs a package that is not installed: MuJoCo is not installed"
    ):
        make_env("CartPole-v1")


def test_an_env_whose_module_is_missing_names_the_package():
    """gymnasium's phys2d/ ids import jax on make: one line naming it, not an internal error."""
    import gymnasium as gym

    from lab.core.environments import make_env

    gym.register("labtest/Missing-v0", entry_point="no_such_package_xyz.envs:Missing")
    try:
        with pytest.raises(
            LabError,
            match="labtest/Missing-v0 needs the package 'no_such_package_xyz', which is not installed",
        ):
            make_env("labtest/Missing-v0")
    finally:
        del gym.registry["labtest/Missing-v0"]


def test_parse_kwargs_reads_yaml_scalars():
    assert parse_kwargs(["size=15", "king_moves=true", "slip_prob=0.5", "map_name=8x8"]) == {
        "size": 15,
        "king_moves": True,
        "slip_prob": 0.5,
        "map_name": "8x8",
    }


def test_play_walks_the_key_door_world_to_the_goal(monkeypatch):
    from lab.play import play

    # from (2,2): down, down picks up the key at (4,2); up, then right x6 opens the door, reaches the goal
    keys = ["down", "down", "up", *["right"] * 6]
    shown = feed_keys(monkeypatch, keys)
    returns = play("KeyDoor", seed=0)
    assert returns == [pytest.approx(1.0 - 0.01 * 8)]
    last_lines = shown[-1][1]
    assert "goal reached!" in last_lines[0]
    assert "door open" in last_lines[1]
    assert "step 9" in last_lines[1]


def test_play_is_turn_based_and_restarts(monkeypatch):
    from lab.play import play

    # unknown keys and a diagonal on a 4-action env do not step; r restarts the episode
    shown = feed_keys(monkeypatch, ["x", "y", "right", "r", "down"])
    assert play("CliffWalk", seed=0) == []
    steps = [lines[1].split()[1] for _, lines in shown]
    assert steps == ["0", "0", "0", "1", "0", "1"]


def test_play_diagonals_with_king_moves(monkeypatch):
    from lab.play import play

    shown = feed_keys(monkeypatch, ["u"])
    play("WindyGrid", {"king_moves": True}, seed=0)
    assert "action up-right" in shown[-1][1][1]


def test_demo_writes_a_gif_of_the_window(tmp_path):
    out = tmp_path / "tour.gif"
    result = run_lab("demo", "--env", "Maze", "-k", "size=7", "--gif", str(out))
    assert result.returncode == 0, result.stderr
    frames = iio.imread(out)
    # one frame at the start and one per step (the held last frame merges into one GIF frame)
    from agents.planning import value_iteration

    maze = envs.grid.Maze(size=7)
    optimal_steps = (
        round((1.0 - value_iteration(maze.transition_model(), 1.0).V[maze.model.start_states[0]]) / 0.01) + 1
    )
    assert frames.shape[0] == 1 + optimal_steps
    assert frames.shape[-1] == 3
    assert not np.array_equal(frames[0], frames[-1])  # the agent moved
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_demo_gif_needs_a_gif_path(tmp_path):
    result = run_lab("demo", "--env", "Maze", "--gif", str(tmp_path / "tour.png"))
    assert result.returncode == 2
    assert "ending in .gif" in result.stderr


def test_main_returns_exit_codes():
    assert main(["play", "Nope"]) == 2


@pytest.mark.parametrize(
    "argv, wrong, right",
    [
        (["train", "--stpes", "10"], "--stpes", "--steps"),
        (["train", "--stpes=10"], "--stpes", "--steps"),
        (["watch", "runs/x", "--fsp", "3"], "--fsp", "--fps"),
        (["gen", "train", "--modle", "vae"], "--modle", "--model"),
        (["--debgu", "envs"], "--debgu", "--debug"),
    ],
)
def test_a_misspelt_option_names_the_closest_one(argv, wrong, right, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"unrecognized argument {wrong}; did you mean {right}?" in err


def test_an_option_like_nothing_known_keeps_argparse_message(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--zzzzzzzz"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --zzzzzzzz" in err and "did you mean" not in err


def test_every_option_of_every_command_has_help_text():
    import argparse

    from lab.cli import build_parser

    def undocumented(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
        missing = []
        for action in parser._actions:  # argparse keeps no public list of a parser's arguments
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    missing += undocumented(sub, f"{prefix} {name}")
            elif not action.help and action.dest != "help":
                missing.append(f"{prefix} {'/'.join(action.option_strings) or action.dest}")
        return missing

    assert undocumented(build_parser(), "lab") == []


def test_python_dash_m_lab_is_the_lab_command():
    done = subprocess.run(
        [sys.executable, "-m", "lab", "eval", "no/such/run"], capture_output=True, text=True
    )
    assert done.returncode == 2 and done.stderr.startswith("lab: error: no/such/run")


@pytest.mark.parametrize("command", [["play", "CliffWalk"], ["watch", "runs/any"]])
def test_replays_that_name_a_file_are_refused_as_the_arguments_are_read(command, tmp_path, capsys):
    # it was found only when the first finished episode was saved
    notes = tmp_path / "notes.txt"
    notes.write_text("not a folder")
    with pytest.raises(SystemExit) as stopped:
        main([*command, "--replays", str(notes)])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "--replays: " in err and "notes.txt is a file; give a folder" in err
