"""Two-domain data for translation: the blueprint and paper themes, boards that decode exactly, unpaired
training domains over disjoint states, paired held-out states, a user's two folders."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from envs.errors import EnvError
from envs.grid.layout import TILE_CHAR, Tile, parse_map
from envs.grid.painter import GridPainter
from envs.grid.themes import THEMES, cell_drawer
from generative.data import load_dataset, scale_levels
from generative.translation_boards import CELL_KINDS, world_boards
from generative.translation_data import KIND_NAMES, CellDecoder, render, theme_templates
from generative.translation_metrics import psnr
from lab.cli import main
from lab.core.errors import LabError

KINDS = ("agent", "agent on ice", "agent on start", "start", "goal", "wall", "pit", "ice", "key")
AGENT, AGENT_ICE, AGENT_START, START, GOAL, WALL, PIT, ICE, KEY = map(KIND_NAMES.index, KINDS)
CLOSED, OPEN = KIND_NAMES.index("door closed"), KIND_NAMES.index("door open")

SMALL = {"train": 40, "test": 24}


@pytest.fixture(scope="module")
def unpaired():
    return load_dataset("themes", SMALL, seed=3)


def boards(images, theme):
    return CellDecoder(theme, 8, 4, 4).decode(images)


def test_the_themes_draw_every_cell_kind_differently_from_each_other_and_within_each():
    for theme in THEMES:
        templates = theme_templates(theme, 8).reshape(len(KIND_NAMES), -1).astype(int)
        assert len({t.tobytes() for t in templates.astype(np.uint8)}) == len(KIND_NAMES), theme
    classic, blueprint, paper = (theme_templates(t, 8).astype(int) for t in THEMES)
    assert np.abs(classic - blueprint).mean() > 60  # a different palette, not a tint
    assert np.abs(classic - paper).mean() > 15  # classic's silhouettes and colour families, redrawn


@pytest.mark.parametrize("theme", ["blueprint", "paper"])
def test_leaving_an_image_in_the_source_theme_scores_no_cell_and_a_low_psnr(theme):
    data = load_dataset("themes", {**SMALL, "themes": ["classic", theme]}, seed=4)
    a, b = data.test_x[:, :3], data.test_x[:, 3:]
    decode_b = CellDecoder(theme, 8, 4, 4, rival="classic").decode
    assert np.array_equal(decode_b(b), data.test_y)  # a clean render of the target theme: exact
    assert (decode_b(a) == -1).all()  # the untranslated image: every cell nearest the source's look
    assert psnr(a, b) < 21  # 10 dB below the target: the identity is far from a translation
    assert (CellDecoder("classic", 8, 4, 4, rival=theme).decode(b) == -1).all()


def test_a_rival_only_takes_cells_that_look_more_like_it():
    decoder = CellDecoder("paper", 8, 4, 4, rival="classic")
    paper, classic = (
        scale_levels(theme_templates(t, 8).transpose(0, 3, 1, 2), 256) for t in ("paper", "classic")
    )
    board = np.arange(16) % len(KIND_NAMES)
    image = render(board[None], theme_templates("paper", 8), 4, 4)
    mixed = image.copy()
    mixed[0, :, :8, :8] = 0.7 * classic[board[0]] + 0.3 * paper[board[0]]  # mostly classic
    mixed[0, :, :8, 8:16] = 0.3 * classic[board[1]] + 0.7 * paper[board[1]]  # mostly paper
    got = decoder.decode(mixed)[0]
    assert got[0] == -1 and got[1] == board[1] and np.array_equal(got[2:], board[2:])
    alone = CellDecoder("paper", 8, 4, 4).decode(mixed)[0]  # without a rival: always a kind
    assert alone[0] >= 0 and np.array_equal(alone[1:], board[1:])


def test_the_painter_takes_a_theme_and_keeps_the_classic_one_by_default():
    tiles = np.array([[Tile.FLOOR, Tile.WALL], [Tile.GOAL, Tile.PIT]])
    args = (tiles, np.zeros_like(tiles, dtype=bool), np.zeros(2, dtype=int), 8)
    classic, named = GridPainter(*args).frame(0, 0, 0), GridPainter(*args, theme="classic").frame(0, 0, 0)
    blueprint = GridPainter(*args, theme="blueprint").frame(0, 0, 0)
    assert np.array_equal(classic, named) and not np.array_equal(classic, blueprint)
    assert np.array_equal(blueprint[8:, 8:], cell_drawer("blueprint")(8, Tile.PIT, False, 0, 0, False))
    with pytest.raises(EnvError, match="unknown theme 'neon'; the themes are: classic, blueprint, paper"):
        GridPainter(*args, theme="neon")


@pytest.mark.parametrize("side", [0, 1])
def test_decoding_a_clean_render_gives_the_state_exactly(unpaired, side):
    theme = unpaired.info["themes"][side]
    held = unpaired.test_x[:, 3 * side : 3 * side + 3]
    assert np.array_equal(boards(held, theme), unpaired.test_y)
    templates = theme_templates(theme, 8)
    assert np.array_equal(render(unpaired.test_y, templates, 4, 4), held)


def test_unpaired_domains_show_disjoint_states_and_the_held_out_pairs_others(unpaired):
    a = boards(unpaired.train_x[:, :3], "classic")
    b = boards(unpaired.train_x[:, 3:], "paper")
    assert np.array_equal(a, unpaired.train_y)
    keys = [{row.tobytes() for row in s} for s in (a, b, unpaired.test_y)]
    assert [len(k) for k in keys] == [40, 40, 24]  # distinct states
    assert not (keys[0] & keys[1]) and not (keys[2] & (keys[0] | keys[1]))
    assert ((unpaired.test_y >= 9).sum(1) == 1).all()  # one agent on every board
    assert unpaired.shape == (6, 32, 32) and unpaired.info["paired"] is False


def connected(mask):
    """Whether the True cells of ``mask`` form one 4-connected group (or none)."""
    cells = {tuple(c) for c in np.argwhere(mask)}
    todo = [next(iter(cells))] if cells else []
    seen = set(todo)
    while todo:
        r, c = todo.pop()
        for near in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if near in cells and near not in seen:
                seen.add(near)
                todo.append(near)
    return seen == cells


@pytest.mark.parametrize(("rows", "cols"), [(4, 4), (3, 6), (2, 5)])
def test_every_board_follows_the_worlds_rules(rows, cols):
    boards = world_boards(500, rows, cols, np.random.default_rng(rows * cols))
    assert len({b.tobytes() for b in boards}) == 500
    for board in boards.reshape(-1, rows, cols):
        count = np.bincount(board.ravel(), minlength=len(KIND_NAMES))
        assert count[[AGENT, AGENT_ICE, AGENT_START]].sum() == 1  # one agent
        assert count[START] + count[AGENT_START] == 1 and count[GOAL] == 1
        assert count[KEY] == count[CLOSED] <= 1 and count[OPEN] + count[CLOSED] <= 1
        assert count[PIT] <= 2 and count[ICE] + count[AGENT_ICE] <= 4
        assert connected(board == PIT) and connected((board == ICE) | (board == AGENT_ICE))
        doors = np.argwhere((board == CLOSED) | (board == OPEN))
        walls = board == WALL
        assert len(doors) == walls.any()  # a wall comes with its door
        for r, c in doors:  # in one whole row or column of walls
            assert walls.sum() in (cols - 1, rows - 1)
            assert walls[r].sum() == cols - 1 or walls[:, c].sum() == rows - 1
        # without its agent (and with the used key put back) the board is a map of the lab's worlds
        tiles = [[TILE_CHAR[Tile(CELL_KINDS[KIND_NAMES[k]][0])] for k in row] for row in board]
        if count[OPEN]:
            spare = np.argwhere(board == 0)
            tiles[spare[0][0]][spare[0][1]] = "K"
        parse_map(["".join(row) for row in tiles])


def test_a_closed_door_keeps_the_agent_and_the_key_on_the_start_side():
    boards = world_boards(400, 4, 4, np.random.default_rng(0)).reshape(-1, 4, 4)
    closed = [b for b in boards if (b == CLOSED).any()]
    assert len(closed) > 50
    for board in closed:
        walls = (board == WALL) | (board == CLOSED)
        across = walls.all(1).any()
        sides = np.cumsum(walls.all(1 if across else 0))  # 0 before the wall, 1 on it or after
        side = sides[:, None] if across else sides[None, :]
        side = np.broadcast_to(side, board.shape)
        start = side[np.isin(board, [START, AGENT_START])][0]
        assert {int(s) for s in side[np.isin(board, [KEY, AGENT, AGENT_ICE, AGENT_START])]} == {int(start)}
        assert side[board == GOAL][0] != start


def test_paired_training_images_show_the_same_state_in_both_themes():
    data = load_dataset("themes", {**SMALL, "paired": True, "rows": 3, "cols": 5, "tile": 4}, seed=1)
    assert data.shape == (6, 12, 20)
    a = CellDecoder("classic", 4, 3, 5).decode(data.train_x[:, :3])
    b = CellDecoder("paper", 4, 3, 5).decode(data.train_x[:, 3:])
    assert np.array_equal(a, b) and np.array_equal(a, data.train_y)


def test_a_theme_order_can_be_swapped():
    data = load_dataset("themes", {**SMALL, "themes": ["blueprint", "classic"]}, seed=3)
    assert np.array_equal(boards(data.test_x[:, :3], "blueprint"), data.test_y)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"themes": ["classic", "neon"]}, "unknown theme 'neon'"),
        ({"themes": ["classic"]}, "names two themes"),
        ({"themes": ["classic", "classic"]}, "two different themes"),
        ({"rows": 0}, "rows must be a whole number >= 1"),
        ({"train": 5000, "rows": 1, "cols": 2}, "too few distinct states"),
        ({"rows": 1, "cols": 1}, "a 1x1 board has no room for a start, a goal and a key"),
        ({"colour": 1}, "unknown option of the themes data set"),
    ],
)
def test_bad_theme_options_are_one_line(options, message):
    with pytest.raises(LabError, match=message) as info:
        load_dataset("themes", {**SMALL, **options})
    assert "\n" not in str(info.value)


def write_images(folder, sizes, colour=(200, 30, 30)):
    folder.mkdir(parents=True, exist_ok=True)
    for i, (h, w) in enumerate(sizes):
        Image.new("RGB", (w, h), colour).save(folder / f"{i}.png")


def test_two_folders_make_an_unpaired_two_domain_set(tmp_path):
    write_images(tmp_path / "a", [(8, 8)] * 5)
    write_images(tmp_path / "b", [(8, 8)] * 12, colour=(0, 0, 255))
    data = load_dataset("folders", {"path_a": str(tmp_path / "a"), "path_b": str(tmp_path / "b")}, seed=0)
    assert data.shape == (6, 8, 8)
    assert len(data.train_x) == 10  # the larger folder's training images; the smaller is cycled
    assert np.allclose(data.train_x[:, 0], 200 / 127.5 - 1) and np.allclose(data.train_x[:, 5], 1.0)


@pytest.mark.parametrize("case", ["empty", "mixed", "differ", "missing"])
def test_bad_folders_are_one_line_through_the_lab_command(tmp_path, capsys, case):
    a, b = tmp_path / "a", tmp_path / "b"
    write_images(a, [(8, 8)] * 3)
    write_images(b, {"empty": [], "mixed": [(8, 8), (8, 12)], "differ": [(16, 16)] * 3, "missing": []}[case])
    if case == "missing":
        b.rmdir()
    runs = str(tmp_path / "runs")
    args = ["gen", "train", "--model", "cyclegan", "--dataset", "folders", "--runs-dir", runs,
            "--set", f"dataset_options.path_a={a}", "--set", f"dataset_options.path_b={b}"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    expected = {"empty": "no readable images in", "mixed": "have 2 sizes (8x8, 8x12)",
                "differ": "differ in size (8x8 in", "missing": "no image folder at"}[case]  # fmt: skip
    assert expected in err and "\n" not in err
    assert not (tmp_path / "runs").exists()


def test_a_cyclegan_trains_on_two_folders_and_reports_its_cycle_error(tmp_path, capsys):
    write_images(tmp_path / "a", [(16, 16)] * 6)
    write_images(tmp_path / "b", [(16, 16)] * 4, colour=(0, 0, 255))
    settings = [f"dataset_options.path_a={tmp_path / 'a'}", f"dataset_options.path_b={tmp_path / 'b'}",
                "hyperparameters.channels=2", "hyperparameters.d_channels=2", "hyperparameters.blocks=1",
                "hyperparameters.batch_size=2", "eval_interval=0", "checkpoint_interval=0",
                "samples=2"]  # fmt: skip
    args = ["gen", "train", "--model", "cyclegan", "--dataset", "folders", "--name", "f", "--steps", "2",
            "--runs-dir", str(tmp_path / "runs"), "--no-progress",
            *[a for s in settings for a in ("--set", s)]]  # fmt: skip
    assert main(args) == 0
    assert "cycle L1 A" in capsys.readouterr().out
    with open(tmp_path / "runs" / "f" / "eval.csv") as f:
        header, final = (line.strip().split(",") for line in f.readlines()[::-1][:2][::-1])
    assert final[header.index("cycle_l1_a")] != "" and final[header.index("accuracy_ab")] == ""
