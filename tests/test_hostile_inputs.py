"""A hostile corpus: files and flags made to run code, exhaust the machine or crash the lab.

Three tables, one per promise (docs/design.md, "Files that cross machines"):

1. ``MODULE_IDS`` x every reader: a file naming a ``module:Name`` env id never imports the module
   (a marker file the module would write never appears) and the refusal is one clear line.
2. ``EXHAUSTION``: small files and flags that declare huge sizes are refused before anything is
   allocated (tracemalloc's peak during the refusal stays under ``PEAK_LIMIT_MB``).
3. ``ONE_LINE``: every user or machine error through ``lab.cli.main`` is one line on stderr and
   exit status 2, and a command that was refused left the files on disk as they were.
"""

from __future__ import annotations

import errno
import io
import json
import shutil
import sys
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import agents
from agents import QLearning
from agents.common.errors import AgentError
from lab import cli
from lab.core.archive import write_archive
from lab.core.errors import LabError
from lab.replays import ReplayError, list_replays, load_episode, verify_episode

EXAMPLES = Path(__file__).resolve().parents[1] / "replays" / "examples"
PEAK_LIMIT_MB = 50.0


# ----- helpers -----


def lab(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    """``lab ARGS`` in this process: (exit status, stdout, stderr); argparse's exits count too."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``: its size and modification time."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def peak_mb(action: Callable[[], Any]) -> tuple[Any, float]:
    """``action()`` run twice (the first warms imports and caches), the peak of the second in MiB."""
    action()
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak / 2**20


def archive_contents(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    return json.loads(str(arrays.pop("meta")[()])), arrays


def rewrite(
    source: Path,
    target: Path,
    meta: Callable[[dict[str, Any]], None] = lambda m: None,
    arrays: Callable[[dict[str, np.ndarray]], None] = lambda a: None,
) -> Path:
    """A copy of an archive with its metadata and arrays changed in place by the two functions."""
    document, contents = archive_contents(source)
    meta(document)
    arrays(contents)
    return write_archive(target, document, contents)


def forge(source: Path, target: Path, declared: dict[str, tuple[tuple[int, ...], str]]) -> Path:
    """A copy of an archive whose entries in ``declared`` have ``.npy`` headers declaring those shapes
    and dtypes over a few bytes of data (added when the archive has no such entry)."""
    document, contents = archive_contents(source)
    entries = {"meta": np.array(json.dumps(document)), **contents, **dict.fromkeys(declared, None)}
    with zipfile.ZipFile(target, "w") as archive:
        for name, array in entries.items():
            buffer = io.BytesIO()
            if name in declared:
                shape, dtype = declared[name]
                header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False}
                np.lib.format.write_array_header_1_0(buffer, {**header, "shape": shape})
                buffer.write(b"\0" * 64)
            else:
                np.save(buffer, array)
            archive.writestr(f"{name}.npy", buffer.getvalue())
    return target


def many_entries(source: Path, target: Path, count: int) -> Path:
    """A copy of an archive with ``count`` extra tiny entries (a small file, a large directory)."""
    shutil.copy(source, target)
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(1, np.uint8))
    with zipfile.ZipFile(target, "a") as archive:
        for i in range(count):
            archive.writestr(f"x{i}.npy", buffer.getvalue())
    return target


def patched_count(source: Path, target: Path, count: int) -> Path:
    """:func:`many_entries`, its end record then saying one entry (zipfile walks the directory anyway)."""
    many_entries(source, target, count)
    data = bytearray(target.read_bytes())
    at = data.rfind(b"PK\x05\x06")
    data[at + 8 : at + 12] = (1).to_bytes(2, "little") * 2
    target.write_bytes(bytes(data))
    return target


def raw_entry(source: Path, target: Path, size: int) -> Path:
    """A copy of an archive with an entry that is no array: ``size`` zero bytes, deflated to little."""
    shutil.copy(source, target)
    with zipfile.ZipFile(target, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("junk", bytes(size))
    return target


def deep_meta(source: Path, target: Path, depth: int) -> Path:
    """A copy of an archive whose metadata holds lists nested ``depth`` deep (written as text)."""
    document, contents = archive_contents(source)
    text = json.dumps(document)[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
    np.savez(target, meta=np.array(text), **contents)
    return target


# ----- fixtures: one good file of each kind -----


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("good")


@pytest.fixture(scope="module")
def q_file(store: Path) -> Path:
    return QLearning("lab/CliffWalk-v0", seed=0).save(store / "q.npz")


@pytest.fixture(scope="module")
def dqn_file(store: Path) -> Path:
    from agents.dqn import DQN

    return DQN("lab/CliffWalk-v0", seed=0, buffer_size=100).save(store / "dqn.npz")


@pytest.fixture(scope="module")
def model_file(store: Path) -> Path:
    from generative.checkpoint import save_model
    from generative.models import model_class

    model = model_class("vae")((1, 8, 8), 10, {"channels": 4, "latent": 2})
    data = {"dataset": "digits", "size": 8, "seed": 0, "test_fraction": 0.2}
    return save_model(store / "vae.npz", model, {"data": data, "class_names": [str(d) for d in range(10)]})


@pytest.fixture
def replay_file(tmp_path: Path) -> Path:
    return Path(shutil.copy(EXAMPLES / "Maze-v0.npz", tmp_path / "maze.npz"))


@pytest.fixture
def evil(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``evilmod`` on ``sys.path``: importing it writes the marker file this fixture returns."""
    marker = tmp_path / "IMPORTED"
    package = tmp_path / "evilpath"
    package.mkdir()
    (package / "evilmod.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    monkeypatch.syspath_prepend(str(package))
    monkeypatch.delitem(sys.modules, "evilmod", raising=False)  # an earlier import would hide a new one
    yield marker
    sys.modules.pop("evilmod", None)


# ----- 1. loading a file never imports a module -----

MODULE_IDS = ("evilmod:Evil-v0", "evilmod:lab/Maze-v0", "evilmod:CartPole-v1")


def _agent_with_env_id(q_file: Path, tmp_path: Path, env_id: str) -> Path:
    return rewrite(q_file, tmp_path / "evil.npz", meta=lambda m: m["env"].update(id=env_id))


def _replay_with_env_id(replay_file: Path, env_id: str) -> Path:
    document, contents = archive_contents(replay_file)
    document["env_id"] = env_id
    contents["meta"] = np.array(json.dumps(document))
    np.savez(replay_file, **contents)
    return replay_file


READERS: dict[str, Callable[..., None]] = {
    "agents.load_agent": lambda q, r, m, t, i: agents.load_agent(_agent_with_env_id(q, t, i)),
    "QLearning.load": lambda q, r, m, t, i: QLearning.load(_agent_with_env_id(q, t, i)),
    "verify_episode": lambda q, r, m, t, i: verify_episode(load_episode(_replay_with_env_id(r, i))),
}
COMMANDS: dict[str, Callable[..., list[Any]]] = {
    "lab eval": lambda q, r, m, t, i: ["eval", _agent_with_env_id(q, t, i), "--episodes", 1],
    "lab replay --verify": lambda q, r, m, t, i: ["replay", _replay_with_env_id(r, i), "--verify"],
    "lab replay --to": lambda q, r, m, t, i: ["replay", _replay_with_env_id(r, i), "--to", t / "x.gif"],
    "lab gen eval (grid data)": lambda q, r, m, t, i: [
        "gen",
        "eval",
        rewrite(m, t / "evil-model.npz", meta=lambda d: d.update(data={"dataset": "grid", "env": i})),
    ],
}


@pytest.mark.parametrize("env_id", MODULE_IDS)
@pytest.mark.parametrize("reader", list(READERS))
def test_python_api_never_imports_a_module_named_by_a_file(
    reader, env_id, evil, q_file, replay_file, model_file, tmp_path
):
    with pytest.raises((AgentError, ReplayError)) as info:
        READERS[reader](q_file, replay_file, model_file, tmp_path, env_id)
    assert not evil.exists(), f"{reader} imported the module of {env_id!r}"
    assert env_id in str(info.value) and "\n" not in str(info.value)
    assert "would import that module" in str(info.value)


@pytest.mark.parametrize("env_id", MODULE_IDS)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_lab_command_never_imports_a_module_named_by_a_file(
    command, env_id, evil, q_file, replay_file, model_file, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    args = COMMANDS[command](q_file, replay_file, model_file, tmp_path, env_id)
    before = snapshot(tmp_path)
    code, _, err = lab(capsys, *args)
    assert not evil.exists(), f"{command} imported the module of {env_id!r}"
    assert_one_line_error(code, err, env_id, "would import that module")
    assert snapshot(tmp_path) == before


def test_the_marker_module_does_write_its_marker(evil):
    """The corpus's evil module works: importing it (as gym.make('evilmod:...') would) writes the marker."""
    import importlib

    importlib.import_module("evilmod")
    assert evil.exists()


# ----- 2. small inputs cannot exhaust the machine -----

LAUGHS = "\n".join(
    ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
)


def _spec(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(body)
    return path


BASE = "env: lab/CliffWalk-v0\nagent: q_learning\n"


def _archive_row(kind: str, declared: dict[str, tuple[tuple[int, ...], str]]) -> Callable[..., list[Any]]:
    def build(files: dict[str, Path], tmp_path: Path) -> list[Any]:
        forged = forge(files[kind], tmp_path / f"forged-{kind}.npz", declared)
        if kind == "replay":
            return ["replay", forged, "--verify"]
        if kind == "model":
            return ["gen", "sample", forged, "--out", tmp_path / "s.png"]
        return ["eval", forged, "--episodes", 1]

    return build


def _meta_row(kind: str, change: Callable[[dict[str, Any]], None]) -> Callable[..., list[Any]]:
    def build(files: dict[str, Path], tmp_path: Path) -> list[Any]:
        path = rewrite(files[kind], tmp_path / f"edited-{kind}.npz", meta=change)
        if kind == "replay":
            return ["replay", path, "--verify"]
        if kind == "model":
            return ["gen", "sample", path, "--out", tmp_path / "s.png"]
        return ["eval", path, "--episodes", 1]

    return build


def _hp(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda m: m["hyperparameters"].update(values)


EXHAUSTION: dict[str, tuple[Callable[..., list[Any]], str]] = {
    # YAML aliases: 10**9 "lol"s in a few hundred bytes, under each key a spec validates or prints
    "yaml laughs in total_timesteps": (
        lambda f, t: ["train", _spec(t, f"{LAUGHS}\n{BASE}total_timesteps: *a8\n")],
        "anchors (&a0) are not allowed",
    ),
    "yaml laughs in seeds": (lambda f, t: ["train", _spec(t, f"{LAUGHS}\n{BASE}seeds: *a8\n")], "anchors"),
    "yaml laughs in env_kwargs": (
        lambda f, t: ["train", _spec(t, f"{LAUGHS}\n{BASE}env_kwargs: {{x: *a8}}\n")],
        "anchors",
    ),
    "yaml laughs in net_arch": (
        lambda f, t: [
            "train",
            _spec(
                t,
                f"{LAUGHS}\nenv: lab/CliffWalk-v0\nagent: dqn\nhyperparameters: "
                "{policy_kwargs: {net_arch: *a8}}\n",
            ),
        ],
        "anchors",
    ),
    "yaml alias without anchor": (lambda f, t: ["train", _spec(t, f"{BASE}seeds: *a\n")], "line 3"),
    "yaml laughs in gen spec": (
        lambda f, t: ["gen", "train", _spec(t, f"{LAUGHS}\nmodel: vae\nhyperparameters: {{x: *a8}}\n")],
        "anchors",
    ),
    "spec file of 2 MiB": (lambda f, t: ["train", _spec(t, BASE + "#" * (2 << 20))], "over 1 MiB"),
    "replay maze size 4001": (
        _meta_row("replay", lambda m: m.update(env_id="lab/Maze-v0", env_kwargs={"size": 4001})),
        "16008001 cells",
    ),
    "replay map of 300 x 300": (
        _meta_row(
            "replay",
            lambda m: m.update(
                env_id="lab/GridWorld-v0", env_kwargs={"ascii_map": ["S" + "." * 298 + "G"] * 300}
            ),
        ),
        "90000 cells",
    ),
    "replay frames of 10**6 x 4096 x 4096": (
        _archive_row("replay", {"frames": ((10**6, 4096, 4096, 3), "u1")}),
        "'frames' entry declares",
    ),
    "replay observations declaring more than they hold": (
        _archive_row("replay", {"observations": ((1000,), "<i8")}),
        "damaged or forged",
    ),
    "archive of 20,000 entries": (
        lambda f, t: ["eval", many_entries(f["q"], t / "many.npz", 20_000)],
        "entries",
    ),
    "archive of 20,000 entries whose end record says 1": (
        lambda f, t: ["eval", patched_count(f["q"], t / "many.npz", 20_000)],
        "entries",
    ),
    "replay with a 256 MiB entry that is no array": (
        lambda f, t: ["replay", raw_entry(f["replay"], t / "raw.npz", 256 << 20), "--verify"],
        "its entry 'junk' is not an array (.npy)",
    ),
    "q_table header of 10**12 elements": (
        _archive_row("q", {"q_table": ((10**6, 10**6), "<f8")}),
        "'q_table' entry declares",
    ),
    "meta header of 10**8 characters": (_archive_row("q", {"meta": ((), "<U100000000")}), "'meta' entry"),
    "dqn buffer_size 1e12": (_meta_row("dqn", _hp(buffer_size=1e12)), "buffer_size is at most"),
    "dqn net_arch [1e6, 1e6]": (
        _meta_row("dqn", _hp(policy_kwargs={"net_arch": [10**6, 10**6]})),
        "net_arch widths are at most",
    ),
    "dqn net_arch of 10**10 weights": (
        _meta_row("dqn", _hp(policy_kwargs={"net_arch": [10**4] * 101})),
        "would hold",
    ),
    "model channels 200000": (_meta_row("model", _hp(channels=200_000)), "weights but holds"),
    "model image shape 10**6": (
        _meta_row("model", lambda m: m.update(shape=[1, 10**6, 10**6])),
        "image shape",
    ),
    "model timesteps 1e12": (
        _meta_row("model", lambda m: m.update(family="diffusion", hyperparameters={"timesteps": 10**12})),
        "at most 1,000,000",
    ),
    "gen spec channels 200000": (
        lambda f, t: [
            "gen",
            "train",
            _spec(t, "model: vae\nhyperparameters: {channels: 200000}\n"),
            "--no-progress",
        ],
        "the lab builds at most",
    ),
    "gen sample --n 2000000": (lambda f, t: ["gen", "sample", f["model"], "--n", 2_000_000], "--n"),
    "model data.path /": (
        lambda f, t: [
            "gen",
            "eval",
            rewrite(
                f["model"], t / "m.npz", meta=lambda m: m.update(data={"dataset": "folder", "path": "/"})
            ),
        ],
        "system or home folder",
    ),
    "spec threads 1e9": (
        lambda f, t: ["train", _spec(t, f"{BASE}threads: 1e9\n")],
        "threads must be at most",
    ),
    "gen --threads 1e9": (lambda f, t: ["gen", "sample", f["model"], "--threads", 10**9], "--threads"),
}


@pytest.mark.parametrize("row", list(EXHAUSTION))
def test_small_inputs_are_refused_before_allocating(
    row, q_file, dqn_file, model_file, replay_file, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    build, message = EXHAUSTION[row]
    files = {"q": q_file, "dqn": dqn_file, "model": model_file, "replay": replay_file}
    args = build(files, tmp_path)
    before = snapshot(tmp_path)
    (code, _, err), peak = peak_mb(lambda: lab(capsys, *args))
    assert_one_line_error(code, err, message)
    assert peak < PEAK_LIMIT_MB, f"{row}: the refusal peaked at {peak:.1f} MiB"
    assert snapshot(tmp_path) == before


def test_folder_walk_stops_at_its_bound(tmp_path, monkeypatch):
    from generative import data

    monkeypatch.setattr(data, "MAX_DATASET_FILES", 5)
    for i in range(6):
        (tmp_path / f"{i}.png").write_bytes(b"not an image")
    with pytest.raises(LabError, match="holds over 5 files"):
        data.load_dataset("folder", {"path": str(tmp_path)})
    (tmp_path / "5.png").unlink()
    with pytest.raises(LabError, match="no readable images"):  # 5 files: walked, all unreadable
        data.load_dataset("folder", {"path": str(tmp_path)})


def test_folder_walk_refuses_system_and_home_folders(tmp_path):
    from generative.data import load_dataset

    for root in ("/", "/usr", str(Path.home())):
        with pytest.raises(LabError, match="system or home folder"):
            load_dataset("folder", {"path": root})


# ----- 3. every user or machine error is one line and exit status 2 -----


def _fail_with(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, number: int, path: Path) -> None:
    """Make ``module.name`` (open, a writer) fail as the file system would, with ``errno`` ``number``."""
    import os

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OSError(number, os.strerror(number), str(path))

    monkeypatch.setattr(module, name, fail, raising=False)


def _unreadable(
    module_name: str, target: Path, number: int = errno.EACCES
) -> Callable[[pytest.MonkeyPatch], None]:
    """``open(target)`` in ``module_name`` fails with ``number`` (the tests run as root: chmod cannot)."""
    import builtins
    import importlib
    import os

    def patch(monkeypatch: pytest.MonkeyPatch) -> None:
        module = importlib.import_module(module_name)

        def guarded(file: Any, *args: Any, **kwargs: Any) -> Any:
            if Path(file) == target:
                raise PermissionError(number, os.strerror(number), str(file))
            return builtins.open(file, *args, **kwargs)

        monkeypatch.setattr(module, "open", guarded, raising=False)

    return patch


MAP_ARGS = ("demo", "--env", "GridWorld", "--gif", "x.gif", "-k")
Row = tuple[Callable[..., list[Any]], str]
ONE_LINE: dict[str, Row] = {
    "spec not UTF-8": (lambda f, t: ["train", _bytes(t / "spec.yaml", b"env: \xff\xfe\n")], "not UTF-8"),
    "spec nested 100000 deep": (
        lambda f, t: ["train", _spec(t, "env: " + "[" * 100_000 + "]" * 100_000 + "\n")],
        "nest more than 64 deep",
    ),
    "spec eval_episodes 0": (lambda f, t: ["train", _spec(t, f"{BASE}eval_episodes: 0\n")], "eval_episodes"),
    "spec threads 0": (
        lambda f, t: ["train", _spec(t, f"{BASE}threads: 0\n")],
        "threads must be a whole number >= 1; got 0",
    ),
    "spec seeds 5000": (
        lambda f, t: ["train", _spec(t, f"{BASE}seeds: {list(range(5000))}\n")],
        "at most 1000",
    ),
    "spec wrong type, long value": (
        lambda f, t: ["train", _spec(t, f"{BASE}total_timesteps: {['x'] * 5000}\n")],
        "total_timesteps must be a whole number",
    ),
    "watch --fps nan": (lambda f, t: ["watch", f["q"], "--fps", "nan"], "--fps"),
    "watch --fps inf": (lambda f, t: ["watch", f["q"], "--fps", "inf"], "--fps"),
    "demo --fps 0": (lambda f, t: ["demo", "--fps", "0", "--gif", "x.gif"], "--fps"),
    "play --scale 0": (lambda f, t: ["play", "Maze", "--scale", "0"], "--scale"),
    "watch --scale 10000": (lambda f, t: ["watch", f["q"], "--scale", "10000"], "--scale"),
    "replay --fps 1e-300": (
        lambda f, t: ["replay", EXAMPLES / "Maze-v0.npz", "--to", "f.gif", "--fps", "1e-300"],
        "--fps must be positive",
    ),
    "replay --fps nan": (
        lambda f, t: ["replay", EXAMPLES / "Maze-v0.npz", "--to", "f.gif", "--fps", "nan"],
        "--fps",
    ),
    "replay --scale 0": (lambda f, t: ["replay", EXAMPLES / "Maze-v0.npz", "--scale", "0"], "--scale"),
    "gen sample --eta nan": (lambda f, t: ["gen", "sample", f["model"], "--eta", "nan"], "--eta"),
    "gen sample --guidance inf": (
        lambda f, t: ["gen", "sample", f["model"], "--guidance", "inf"],
        "--guidance",
    ),
    "gen sample --n 0": (lambda f, t: ["gen", "sample", f["model"], "--n", "0"], "--n"),
    "obs_tile_size 0": (
        lambda f, t: [
            "demo",
            "--env",
            "Maze",
            "-k",
            "obs_type=pixels",
            "-k",
            "obs_tile_size=0",
            "--gif",
            "x.gif",
        ],
        "tile_size",
    ),
    "render_tile_size 10**6": (
        lambda f, t: ["demo", "--env", "Maze", "-k", "render_tile_size=1000000", "--gif", "x.gif"],
        "frames are at most 4096 pixels",
    ),
    "map: a key without a door": (lambda f, t: [*MAP_ARGS, "ascii_map=[SK.G]"], "no door"),
    "map: a door without a key": (lambda f, t: [*MAP_ARGS, "ascii_map=[SD.G]"], "no key"),
    "map: two keys": (lambda f, t: [*MAP_ARGS, "ascii_map=[SKKDG]"], "at most one key"),
    "q_table NaN": (
        lambda f, t: ["eval", rewrite(f["q"], t / "nan.npz", arrays=_poison("q_table", np.nan))],
        "NaN or infinite",
    ),
    "q_table inf": (
        lambda f, t: ["eval", rewrite(f["q"], t / "inf.npz", arrays=_poison("q_table", -np.inf))],
        "NaN or infinite",
    ),
    "dqn weights NaN": (
        lambda f, t: ["eval", rewrite(f["dqn"], t / "nan.npz", arrays=_poison("q.head.head.weight", np.nan))],
        "NaN or infinite",
    ),
    "model weights inf": (
        lambda f, t: [
            "gen",
            "sample",
            rewrite(f["model"], t / "inf.npz", arrays=_poison_prefix("module/", np.inf)),
        ],
        "NaN or infinite",
    ),
    "model shape not a list": (
        lambda f, t: [
            "gen",
            "sample",
            rewrite(f["model"], t / "m.npz", meta=lambda m: m.update(shape="8x8")),
        ],
        "image shape",
    ),
    "model n_classes -1": (
        lambda f, t: [
            "gen",
            "sample",
            rewrite(f["model"], t / "m.npz", meta=lambda m: m.update(n_classes=-1)),
        ],
        "n_classes",
    ),
    "model step text": (
        lambda f, t: ["gen", "sample", rewrite(f["model"], t / "m.npz", meta=lambda m: m.update(step="x"))],
        "step must be",
    ),
    "model hyperparameters a list": (
        lambda f, t: [
            "gen",
            "sample",
            rewrite(f["model"], t / "m.npz", meta=lambda m: m.update(hyperparameters=[])),
        ],
        "hyperparameters are not a mapping",
    ),
    "model optimizers missing": (
        lambda f, t: ["gen", "sample", rewrite(f["model"], t / "m.npz", meta=lambda m: m.pop("optimizers"))],
        "optimizer states",
    ),
    "checkpoint env a list": (
        lambda f, t: ["eval", rewrite(f["q"], t / "e.npz", meta=lambda m: m.update(env=[1, 2]))],
        "'env' record",
    ),
    "checkpoint env kwargs a list": (
        lambda f, t: ["eval", rewrite(f["q"], t / "e.npz", meta=lambda m: m["env"].update(kwargs=[1]))],
        "'env' record",
    ),
    "checkpoint max_episode_steps -1": (
        lambda f, t: [
            "eval",
            rewrite(f["q"], t / "e.npz", meta=lambda m: m["env"].update(max_episode_steps=-1)),
        ],
        "max_episode_steps",
    ),
    "checkpoint meta nested 100000 deep": (
        lambda f, t: ["eval", deep_meta(f["q"], t / "e.npz", 100_000)],
        "too deeply",
    ),
    "replay made for a missing env": (
        lambda f, t: [
            "replay",
            rewrite(f["replay"], t / "r.npz", meta=lambda m: m.update(env_id="lab/Gone-v0")),
            "--verify",
        ],
        "not registered here",
    ),
}


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _poison(name: str, value: float) -> Callable[[dict[str, np.ndarray]], None]:
    def change(arrays: dict[str, np.ndarray]) -> None:
        arrays[name] = arrays[name].copy()
        arrays[name].flat[0] = value

    return change


def _poison_prefix(prefix: str, value: float) -> Callable[[dict[str, np.ndarray]], None]:
    def change(arrays: dict[str, np.ndarray]) -> None:
        name = next(k for k, v in arrays.items() if k.startswith(prefix) and v.dtype.kind == "f" and v.size)
        _poison(name, value)(arrays)

    return change


@pytest.mark.parametrize("row", list(ONE_LINE))
def test_every_error_is_one_line_and_exit_2(row, q_file, dqn_file, model_file, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    build, message = ONE_LINE[row]
    replay = Path(shutil.copy(EXAMPLES / "Maze-v0.npz", tmp_path / "maze.npz"))
    args = build({"q": q_file, "dqn": dqn_file, "model": model_file, "replay": replay}, tmp_path)
    before = snapshot(tmp_path)
    code, _, err = lab(capsys, *args)
    assert_one_line_error(code, err, message)
    assert snapshot(tmp_path) == before


# Errors of the machine: the file system refusing a read or a write, on a path the user gave.
# (row: what to break, how, and the command; the tests run as root, so chmod cannot refuse a read.)
MACHINE: dict[str, tuple[str, str, int, str]] = {
    "spec permission denied": ("lab.spec", "open", errno.EACCES, "train"),
    "replay permission denied": ("lab.core.archive", "open", errno.EACCES, "replay"),
    "checkpoint operation not permitted": ("lab.core.archive", "open", errno.EPERM, "eval"),
    "video on a read-only file system": ("tempfile", "mkstemp", errno.EROFS, "export"),
    "video with no space left": ("tempfile", "mkstemp", errno.ENOSPC, "export"),
    "video with the quota exceeded": ("tempfile", "mkstemp", errno.EDQUOT, "export"),
}


@pytest.mark.parametrize("row", list(MACHINE))
def test_machine_errors_name_the_path_in_one_line(row, q_file, tmp_path, capsys, monkeypatch):
    import importlib
    import os

    monkeypatch.chdir(tmp_path)
    module_name, name, number, command = MACHINE[row]
    if command == "train":
        path = _spec(tmp_path, BASE)
        args = ["train", path]
    elif command == "replay":
        path = Path(shutil.copy(EXAMPLES / "Maze-v0.npz", tmp_path / "r.npz"))
        args = ["replay", path, "--verify"]
    elif command == "eval":
        path = Path(shutil.copy(q_file, tmp_path / "q.npz"))
        args = ["eval", path]
    else:
        path = tmp_path / "out.gif"
        args = ["replay", EXAMPLES / "Maze-v0.npz", "--to", path]
    if name == "open":
        _unreadable(module_name, path, number)(monkeypatch)
    else:
        _fail_with(monkeypatch, importlib.import_module(module_name), name, number, path)
    before = snapshot(tmp_path)
    code, _, err = lab(capsys, *args)
    assert_one_line_error(code, err, str(path), os.strerror(number))
    assert "truncated" not in err
    assert snapshot(tmp_path) == before


def test_replays_lists_an_unreadable_file_and_goes_on(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "replays"
    folder.mkdir()
    good = Path(shutil.copy(EXAMPLES / "Maze-v0.npz", folder / "a-good.npz"))
    locked = Path(shutil.copy(EXAMPLES / "CliffWalk-v0.npz", folder / "b-locked.npz"))
    (folder / "c-junk.npz").write_bytes(b"junk")
    _unreadable("lab.core.archive", locked)(monkeypatch)
    rows = dict(list_replays(folder))
    assert rows[good].error is None
    assert "Permission denied" in rows[locked].error
    assert "not an .npz archive" in rows[folder / "c-junk.npz"].error
    code, out, err = lab(capsys, "replays", folder)
    assert code == 0, err
    assert "a-good.npz" in out and "b-locked.npz" in out and "unreadable" in out


# ----- map rules that apply rather than refuse -----


def test_two_starts_each_episode_starts_on_one_of_them_uniformly():
    env = gym.make("lab/GridWorld-v0", ascii_map=["S..", "...", "S.G"])
    model = env.unwrapped.model
    assert model.initial[model.start_states].tolist() == [0.5, 0.5]
    starts = {env.reset(seed=seed)[0] for seed in range(40)}
    assert starts == set(model.start_states.tolist())


def test_a_map_without_border_walls_stops_at_its_edge():
    env = gym.make("lab/GridWorld-v0", ascii_map=["S.", ".G"])  # states: row * 2 + col
    arrivals = []
    for action in range(env.action_space.n):
        env.reset(seed=0)
        arrivals.append(env.step(action)[0])
    assert sorted(arrivals) == [0, 0, 1, 2]  # two moves leave the grid: the edge holds the agent


def test_a_map_may_not_exceed_its_cell_bound():
    from envs import MapError
    from envs.grid import parse_map
    from envs.grid.layout import MAX_CELLS

    side = int(MAX_CELLS**0.5)
    assert parse_map(["S" + "." * (side - 2) + "G"] + ["." * side] * (side - 1)).shape == (side, side)
    with pytest.raises(MapError, match=f"at most {MAX_CELLS}"):
        parse_map(["S" + "." * (side - 1) + "G"] + ["." * (side + 1)] * (side - 1))
