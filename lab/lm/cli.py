"""``lab lm``: pre-train, sample and evaluate language models on the text environment's languages.

:func:`add_lm_parser` adds the ``lm`` command to the ``lab`` command's subparsers, whose error rules it
follows (a :class:`LabError` is one line and exit status 2). Handlers import torch lazily.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lab.cli_types import finite, random_seed, refuse_with_resume, sample_count, thread_count, whole_in
from lab.core.errors import LabError


def temperature(text: str) -> float:
    """A sampling temperature: a finite number >= 0 (0: greedy)."""
    value = finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"the temperature must be >= 0 (0: greedy); got {text}")
    return value


def top_p(text: str) -> float:
    """Nucleus sampling's mass: in (0, 1]."""
    value = finite(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"top-p must lie in (0, 1] (1: no limit); got {text}")
    return value


def top_k(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"top-k must be >= 0 (0: no limit); got {text}")
    return value


def _threads(args: argparse.Namespace) -> None:
    if getattr(args, "threads", None) is not None:
        import torch

        torch.set_num_threads(args.threads)


def open_model(target: str) -> tuple[Any, dict[str, Any], Path]:
    """The language model of a run directory (its model.npz, else its latest checkpoint) or a file."""
    from lab.nets.language_model import load_language_model
    from lab.runs import RunDir

    path = Path(target)
    if path.is_dir():
        path = RunDir.open(path).model_file()
    model, meta = load_language_model(path)
    return model, meta, path


def model_language(meta: dict[str, Any], path: Path) -> Any:
    """The language a model file was trained on, checked against the vocabulary it records."""
    from lab.lm.train import load_language
    from lab.nets.language_model import check_vocabulary

    name = meta.get("language")
    if not isinstance(name, str):
        raise LabError(f"{path} does not record its language")
    language = load_language(name, dict(meta.get("language_options") or {}))
    check_vocabulary(meta, language.vocabulary.tokens, f"the {name} language now", path)
    return language


def cmd_train(args: argparse.Namespace) -> int:
    from lab.lm.train import resume, train
    from lab.runs import RunStopped

    _threads(args)
    progress = not args.no_progress
    try:
        if args.resume:
            flags = ["spec", "--language", "--model", "--steps", "--seed", "--name", "--set", "--force"]
            refuse_with_resume(args, flags)
            run, final = resume(args.resume, progress=progress)
        else:
            from lab.lm.spec import spec_from_args

            spec = spec_from_args(
                args.spec, args.set or [], language=args.language, model=args.model, steps=args.steps,
                seed=args.seed, name=args.name,
            )  # fmt: skip
            run, final = train(spec, runs_dir=args.runs_dir, progress=progress, force=args.force)
    except RunStopped as stopped:
        print(f"lab: {stopped}", file=sys.stderr)
        return 130
    from lab.lm.evaluate import LMEvaluation

    print(f"{run.path}: trained to step {run.read_status().get('step')}")
    print(LMEvaluation(**final).summary())
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from lab.nets.language_model import sample_with_ends

    _threads(args)
    model, meta, path = open_model(args.model)
    language = model_language(meta, path)
    longest = args.max_length or model.max_length or 64
    try:
        drawn, ended = sample_with_ends(model, args.n, torch.Generator().manual_seed(args.seed), longest,
                       args.temperature, args.top_k, args.top_p)  # fmt: skip
    except ValueError as exc:
        raise LabError(str(exc)) from None
    pcfg = language.pcfg if language.prompt_in_grammar else None
    for s, end in zip(drawn, ended, strict=True):
        text = language.text(s)
        if pcfg is not None:
            from lab.lm.evaluate import _words

            mark = "  " if end and pcfg.contains(_words(language, s)) else "* "
            text = mark + text
        print(text)
    if pcfg is not None:
        print("(* : not in the grammar)", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from lab.lm.evaluate import evaluate

    _threads(args)
    model, meta, path = open_model(args.model)
    language = model_language(meta, path)
    seed = int((meta.get("spec") or {}).get("seed", 0)) if args.seed is None else args.seed
    result = evaluate(model, language, seed=seed, samples=args.samples, held_out=args.held_out,
                      kl_length=args.kl_length)  # fmt: skip
    print(f"{path}: {model.kind} on {meta.get('language')}, step {meta.get('step')}")
    print(result.summary())
    return 0


def add_lm_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``lm`` (train, sample, eval) to the ``lab`` command's subparsers."""
    lm = subparsers.add_parser(
        "lm",
        help="language models on the text languages: train, sample, eval",
        description="Pre-train a causal Transformer or GRU on a text language's corpus, sample from it, "
        "and measure it exactly against the language's own probability model.",
    )
    sub = lm.add_subparsers(dest="lm_command", metavar="LM_COMMAND", required=True)
    threads = {"type": thread_count, "default": None, "help": "torch CPU threads (default: torch's choice)"}

    p = sub.add_parser("train", help="pre-train a model from a spec (configs/lm-*.yaml) or flags")
    p.add_argument("spec", nargs="?", metavar="SPEC.yaml", help="a language-model run spec")
    p.add_argument(
        "--language", default=None, help="english, dyck, a .pcfg file, arithmetic, copy, text:FILE"
    )
    p.add_argument("--model", default=None, help="transformer or gru")
    p.add_argument("--steps", type=int, default=None, help="optimisation steps")
    p.add_argument(
        "--seed", type=random_seed, default=None, help="the run's seed (default: the spec's, else 0)"
    )
    p.add_argument("--name", default=None, help="the run's name: runs/<name>/")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a spec key (hyperparameters.width=128, batch_size=32)")  # fmt: skip
    p.add_argument("--runs-dir", default="runs", help="where run directories go (default: runs)")
    p.add_argument(
        "--resume", default=None, metavar="RUN_DIR", help="continue a run from its last checkpoint"
    )
    p.add_argument("--force", action="store_true", help="move an existing run of the same name aside")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--threads", **threads)
    p.set_defaults(handler=cmd_train)

    model_help = "a run directory or a model file (.npz)"
    p = sub.add_parser("sample", help="sentences from a model (* marks those outside the grammar)")
    p.add_argument("model", metavar="RUN", help=model_help)
    p.add_argument("--n", type=sample_count, default=20, help="how many sentences (default: 20)")
    p.add_argument("--temperature", type=temperature, default=1.0, help="0: greedy (default: 1)")
    p.add_argument("--top-k", type=top_k, default=0, help="keep the k most likely tokens (0: all)")
    p.add_argument("--top-p", type=top_p, default=1.0, help="nucleus: keep this much probability (1: all)")
    p.add_argument(
        "--max-length", type=whole_in(1, 10_000), default=None, help="cut sentences at this many tokens"
    )
    p.add_argument("--seed", type=random_seed, default=0, help="seed of the samples")
    p.add_argument("--threads", **threads)
    p.set_defaults(handler=cmd_sample)

    p = sub.add_parser("eval", help="grammatical samples, held-out NLL against the entropy, exact KL")
    p.add_argument("model", metavar="RUN", help=model_help)
    p.add_argument("--samples", type=sample_count, default=1000, help="temperature-1 samples (default: 1000)")
    p.add_argument("--held-out", type=sample_count, default=2000, help="test sentences (default: 2000)")
    p.add_argument("--kl-length", type=whole_in(1, 40), default=None,
                   help="exact KL on sentences up to this length (dyck 12, english 4)")  # fmt: skip
    p.add_argument("--seed", type=random_seed, default=None, help="default: the run's seed")
    p.add_argument("--threads", **threads)
    p.set_defaults(handler=cmd_eval)
    return lm
