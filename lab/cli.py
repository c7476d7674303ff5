"""The ``lab`` command. Each subcommand imports what it needs inside its handler, so start-up stays fast."""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence
from typing import Any

from lab.cli_types import LabArgumentParser
from lab.core.errors import LabError
from lab.gen.cli import add_gen_parser
from lab.lm.cli import add_lm_parser


def cmd_envs(args: argparse.Namespace) -> int:
    import gymnasium as gym
    from rich.columns import Columns
    from rich.console import Console

    import envs

    grid: list[list[str]] = []
    for entry in envs.ENTRIES:
        env = gym.make(entry.id)
        size = f"{env.unwrapped.model.n_states} x {env.unwrapped.model.n_actions}"
        grid.append([entry.id, size, str(entry.max_episode_steps), entry.summary])
        env.close()
    text: list[list[str]] = []
    for entry in envs.TEXT_ENTRIES:
        env = gym.make(entry.id)
        text.append([entry.id, str(env.action_space.n), str(env.unwrapped.max_length), entry.summary])
        env.close()
    console = Console()
    console.print(_table("The lab's environments (gymnasium.make(ID) after 'import envs')",
                         ("id", "states x actions", "steps", "description"), grid))  # fmt: skip
    print("Observation types (obs_type=): index, coords, onehot, symbolic, pixels. Play one: lab play ID")
    console.print(_table("Text generation: a sentence built token by token (docs/text.md)",
                         ("id", "tokens", "length", "description"), text))  # fmt: skip
    if args.all:
        ours = {entry.id for entry in (*envs.ENTRIES, *envs.TEXT_ENTRIES)}
        others = sorted(i for i in gym.registry if i not in ours)
        print(f"\nGymnasium's other ids in this installation ({len(others)}; some need an extra package):")
        console.print(Columns(others, padding=(0, 2)))
    return 0


def _table(title: str, headers: tuple[str, ...], rows: list[list[str]]) -> Any:
    """A rich table: the id column first, figures right-aligned, the description last."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column(headers[0], style="bold cyan", no_wrap=True)
    for header in headers[1:-1]:
        table.add_column(header, justify="right")
    table.add_column(headers[-1])
    for row in rows:
        table.add_row(*row)
    return table


def cmd_play(args: argparse.Namespace) -> int:
    from lab.core.environments import make_env, parse_kwargs
    from lab.play import play
    from lab.viewer import require_display

    make_env(args.env_id, parse_kwargs(args.kwargs)).close()  # a bad id or map is reported first
    require_display(
        "lab play",
        "without one: lab replay FILE --to out.gif shows a recorded episode, "
        "lab demo --gif tour.gif the grid worlds",
    )
    record_dir = None if args.no_record else args.replays
    returns = play(
        args.env_id, parse_kwargs(args.kwargs), seed=args.seed, scale=args.scale, record_dir=record_dir
    )
    if returns:
        print(f"played {len(returns)} episode(s); returns: {', '.join(f'{r:g}' for r in returns)}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from lab.core.environments import parse_kwargs
    from lab.demo import run_demo

    path = run_demo(
        env_id=args.env,
        kwargs=parse_kwargs(args.kwargs),
        policy=args.policy,
        episodes=args.episodes,
        fps=args.fps,
        seed=args.seed,
        gif=args.gif,
    )
    if path is not None:
        from lab.video import gif_note

        note = gif_note(path, args.fps)
        print(
            f"no window shown: wrote the demo to {path} (open it in any image viewer){note}"
            if args.gif is None
            else f"wrote {path}{note}"
        )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from lab.cli_types import refuse_with_resume
    from lab.runs import RunStopped
    from lab.train import resume, run_summary, spec_from_args, train

    try:
        if args.resume:
            flags = ["spec", "--env", "--agent", "--steps", "--seed", "--name", "--set", "--zoo", "--force"]
            refuse_with_resume(args, [*flags, "--runs-dir"])
            runs = [resume(args.resume, progress=not args.no_progress)]
        else:
            if not args.spec and not (args.env and args.agent):
                raise LabError("give a spec file (lab train SPEC.yaml) or both --env and --agent")
            spec = spec_from_args(
                args.spec, args.env, args.agent, args.steps, args.seed, args.name, args.set or [], args.zoo
            )
            runs_dir = "runs" if args.runs_dir is None else args.runs_dir
            runs = train(spec, runs_dir=runs_dir, progress=not args.no_progress, force=args.force)
    except RunStopped as stopped:  # Ctrl-C: the checkpoint is written; say how to go on
        print(f"lab: {stopped}", file=sys.stderr)
        return 130
    for run, result in runs:
        print(run_summary(run, result))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from lab.runs import resolve_model_path
    from lab.targets import evaluate_target

    if is_generative_model(args.target):
        raise LabError(f"{args.target} holds a generative model; measure it with: lab gen eval {args.target}")
    target = resolve_model_path(args.target, best=True) if args.best else args.target
    result = evaluate_target(target, env_id=args.env, episodes=args.episodes, seed=args.seed)
    print(result.summary())
    return 0


def is_generative_model(target: str) -> bool:
    """Whether ``target`` (a run directory or a file) holds a generative model rather than an agent."""
    from generative.checkpoint import read_model_file
    from lab.gen.sample import model_path

    try:
        read_model_file(model_path(target), arrays=False)  # the metadata says; no weights loaded
    except LabError:
        return False
    return True


def cmd_watch(args: argparse.Namespace) -> int:
    from lab.runs import resolve_model_path
    from lab.watch import watch

    if args.best:
        args.target = str(resolve_model_path(args.target, best=True))
    if is_generative_model(args.target):  # lab watch MODEL shows a generative model's live samples too
        from lab.gen.watch import watch as watch_samples

        if args.to is not None or args.record:
            raise LabError(
                "--to and --record are for agents; for a generative model's samples: "
                f"lab gen sample {args.target} --gif out.gif"
            )
        for path in watch_samples(args.target, fps=args.fps, seed=args.seed, scale=max(args.scale, 4)):
            print(f"saved {path}")
        return 0
    written = watch(
        args.target,
        env_id=args.env,
        episodes=args.episodes,
        fps=args.fps,
        seed=args.seed,
        record_dir=args.replays if args.record else None,
        to=args.to,
        hud=args.hud,
        scale=args.scale,
    )
    from lab.video import gif_note

    for path in written:
        print(f"recorded {path}" if path.suffix == ".npz" else f"wrote {path}{gif_note(path, args.fps)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from lab.cli_types import episode_count, folder, frame_rate, random_seed, scale, step_count

    parser = LabArgumentParser(prog="lab", description="An RL and generative simulation lab.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "envs",
        help="list the lab's environments: id, size, episode limit",
        description="The lab's grid worlds with their states, actions and step limits; "
        "with --all also every other id gymnasium has registered in this installation.",
    )
    p.add_argument("--all", action="store_true", help="also list gymnasium's other registered ids")
    p.set_defaults(handler=cmd_envs)

    kwargs_help = "an environment argument, e.g. -k size=15 -k king_moves=true (repeatable)"
    p = sub.add_parser(
        "play",
        help="play a grid world (arrows/WASD move, y u b n diagonals) or build a text env's sentence "
        "(number/letter keys or arrows + Enter pick a token); r restart, q quit",
    )
    p.add_argument("env_id", metavar="ENV_ID", help="e.g. lab/Maze-v0, Maze-v0, Maze or TextPositive")
    p.add_argument("-k", "--kwarg", dest="kwargs", action="append", metavar="KEY=VALUE", help=kwargs_help)
    p.add_argument("--seed", type=random_seed, default=None, help="seed of the first episode")
    p.add_argument("--scale", type=scale, default=1, help="enlarge the picture this many times")
    p.add_argument(
        "--replays",
        type=folder,
        default="replays",
        metavar="DIR",
        help="save finished episodes here (default: replays)",
    )
    p.add_argument("--no-record", action="store_true", help="do not save the episodes as replays")
    p.set_defaults(handler=cmd_play)

    from lab.replay_cmd import add_commands as add_replay_commands

    add_replay_commands(sub)
    from lab.sweeps.commands import add_commands as add_sweep_commands

    add_sweep_commands(sub)  # lab sweep, lab report, lab tune

    p = sub.add_parser("train", help="train an agent from a spec (YAML) or flags, into runs/<name>/")
    p.add_argument("spec", nargs="?", metavar="SPEC.yaml", help="a run spec; see configs/ for examples")
    p.add_argument(
        "--env", default=None, metavar="ENV_ID", help="the environment, e.g. lab/Maze-v0 or CartPole-v1"
    )
    from agents import AGENTS  # torch-free: the neural agents' modules load when one is used

    p.add_argument("--agent", default=None, help=f"one of: {', '.join(AGENTS)}")
    p.add_argument("--steps", type=step_count, default=None, help="total environment steps (total_timesteps)")
    p.add_argument(
        "--seed", type=random_seed, default=None, help="the run's seed (default: the spec's, else 0)"
    )
    p.add_argument("--name", default=None, help="the run's name: runs/<name>/")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a spec key (hyperparameters.epsilon=0.2)",
    )
    p.add_argument(
        "--zoo",
        default=None,
        metavar="FILE.yml",
        help="take the hyperparameters (and n_timesteps) from the env's entry in an rl-baselines3-zoo file",
    )
    p.add_argument("--runs-dir", default=None, help="where run directories go (default: runs)")
    p.add_argument(
        "--resume", default=None, metavar="RUN_DIR", help="continue a killed run from its last checkpoint"
    )
    p.add_argument(
        "--force", action="store_true", help="move an existing run of the same name aside and start afresh"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("eval", help="evaluate a run or a saved model: returns, success rate, optimality gap")
    p.add_argument("target", metavar="RUN_OR_MODEL", help="a run directory or a model .npz")
    p.add_argument(
        "--env", default=None, metavar="ENV_ID", help="evaluate on this env instead of the trained one"
    )
    p.add_argument(
        "--episodes", type=episode_count, default=100, help="greedy episodes to average (default: 100)"
    )
    p.add_argument("--seed", type=random_seed, default=0, help="seed of the first episode")
    p.add_argument(
        "--best", action="store_true", help="the run's best evaluated model (best.npz), not its last"
    )
    p.set_defaults(handler=cmd_eval)

    p = sub.add_parser(
        "watch",
        help="watch a trained agent play (keys: space pause, right step, +/- speed, r restart, "
        "s screenshot, v values, b action bars, q quit)",
    )
    p.add_argument("target", metavar="RUN_OR_MODEL", help="a run directory or a model .npz")
    p.add_argument(
        "--env", default=None, metavar="ENV_ID", help="watch it on this env instead of the trained one"
    )
    p.add_argument(
        "--episodes", type=episode_count, default=None, help="stop after this many episodes (default: go on)"
    )
    p.add_argument(
        "--fps",
        type=frame_rate,
        default=8.0,
        help="steps shown per second (+/- in the window; a GIF above 50 keeps 1 frame in k, an MP4 all)",
    )
    p.add_argument("--seed", type=random_seed, default=0, help="seed of the first episode")
    p.add_argument(
        "--scale", type=scale, default=1, help="enlarge the picture this many times (window or --to)"
    )
    p.add_argument(
        "--best", action="store_true", help="the run's best evaluated model (best.npz), not its last"
    )
    p.add_argument(
        "--record",
        action="store_true",
        help="save the watched episodes as replays (no window with --episodes)",
    )
    p.add_argument(
        "--replays",
        type=folder,
        default="replays",
        metavar="DIR",
        help="where --record saves (default: replays)",
    )
    p.add_argument(
        "--to",
        default=None,
        metavar="OUT",
        help="write the episodes (--episodes, default 1) as a .gif or .mp4",
    )
    p.add_argument("--hud", action="store_true", help="with --to: the viewer's status lines under each frame")
    p.set_defaults(handler=cmd_watch)

    p = sub.add_parser(
        "demo", help="watch the optimal policy walk a tour of grid worlds (a GIF when headless)"
    )
    p.add_argument("--env", default=None, metavar="ENV_ID", help="show only this environment")
    p.add_argument("-k", "--kwarg", dest="kwargs", action="append", metavar="KEY=VALUE", help=kwargs_help)
    p.add_argument(
        "--policy", choices=("optimal", "random"), default="optimal", help="who acts (default: optimal)"
    )
    p.add_argument("--episodes", type=episode_count, default=1, help="episodes per environment")
    p.add_argument(
        "--fps", type=frame_rate, default=8.0, help="frames per second (a GIF above 50 keeps 1 frame in k)"
    )
    p.add_argument("--seed", type=random_seed, default=0, help="seed of the first episode")
    p.add_argument("--gif", default=None, metavar="PATH", help="write a GIF instead of opening a window")
    p.set_defaults(handler=cmd_demo)

    add_gen_parser(sub)  # lab gen train / sample / eval / watch (generative/cli.py)
    add_lm_parser(sub)  # lab lm train / sample / eval (lab/lm/cli.py)
    return parser


# Errors of the machine or the file system on a path the user gave: one line naming the path.
USER_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOENT, errno.EISDIR,
     errno.ENOTDIR, errno.ENAMETOOLONG, errno.EEXIST, errno.ENOTEMPTY, errno.EMFILE, errno.EFBIG}
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    # One OpenMP thread unless the user says otherwise: the lab's networks are small, and extra
    # threads on a busy machine spin-wait each other into a crawl. Set before torch is imported.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parser = build_parser()
    args = parser.parse_args(argv)  # a usage error: one line and SystemExit(2), as argparse does
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line for the user; --debug shows the traceback
        if args.debug:
            raise
        message = user_message(exc)
        if message is None:
            print(
                f"lab: internal error: {type(exc).__name__}: {one_line(str(exc))} "
                "(run with --debug for the traceback)",
                file=sys.stderr,
            )
            return 1
        print(f"lab: error: {message}", file=sys.stderr)
        return 2


def one_line(text: str) -> str:
    """``text`` with its lines joined, so every message stays one line."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def user_message(exc: Exception) -> str | None:
    """The one line to show for an error of the input or the machine, or None for a bug in the lab."""
    import gymnasium

    from agents.common.errors import AgentError
    from envs.errors import EnvError

    if isinstance(exc, (LabError, EnvError, AgentError, gymnasium.error.Error)):
        return one_line(str(exc))
    if isinstance(exc, OSError) and exc.errno in USER_ERRNOS:
        paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
        return one_line(f"{paths or 'a file'}: {exc.strerror or exc}")
    if isinstance(exc, MemoryError):
        return "out of memory: ask for less (fewer samples, a smaller model or map), or use a larger machine"
    return None


if __name__ == "__main__":
    sys.exit(main())
