"""Language models (lab.nets.language_model) and the ``lab lm`` command."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import seeds_pass

from envs.text import make_language
from lab.cli import main
from lab.lm.evaluate import enumerated_kl, evaluate
from lab.nets import fit
from lab.nets.language_model import (
    LanguageModel,
    filter_logits,
    load_language_model,
    sample,
    save_language_model,
    sentence_log_probs,
    sequence_arrays,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(kind: str, vocab: int = 5, seed: int = 0) -> LanguageModel:
    torch.manual_seed(seed)
    return LanguageModel(vocab, kind, context=16, width=16, layers=2, heads=2)


def test_cached_logits_equal_recomputed_ones():
    model = tiny("transformer").eval()
    tokens = torch.randint(0, 6, (3, 11), generator=torch.Generator().manual_seed(1))
    whole = model(tokens)
    first, cache = model.step(tokens[:, :4])
    parts = [first]
    for t in range(4, 11):
        logits, cache = model.step(tokens[:, t : t + 1], cache)
        parts.append(logits)
    chunk, _ = model.step(tokens[:, 6:], model.step(tokens[:, :6])[1])  # several new tokens at once
    torch.testing.assert_close(torch.cat(parts, 1), whole, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(chunk, whole[:, 6:], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["transformer", "gru"])
def test_cached_and_uncached_sampling_give_the_same_tokens(kind):
    model = tiny(kind)
    for options in ({}, {"temperature": 0.7, "top_k": 3}, {"top_p": 0.8}):
        cached = sample(model, 50, torch.Generator().manual_seed(3), 12, cache=True, **options)
        plain = sample(model, 50, torch.Generator().manual_seed(3), 12, cache=False, **options)
        assert cached == plain
        assert all(len(s) <= 12 and 0 not in s and 5 not in s for s in cached)


def test_filter_logits_keeps_exactly_the_top_k_and_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isfinite(filter_logits(logits, top_k=2)).tolist() == [[True, True, False, False]]
    # the nucleus: the fewest tokens (by probability) holding top_p; the most likely always stays
    assert torch.isfinite(filter_logits(logits, top_p=0.7)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.81)).tolist() == [[True, True, True, False]]
    assert torch.isfinite(filter_logits(logits, top_p=0.1)).tolist() == [[True, False, False, False]]
    dyadic = torch.log(torch.tensor([[0.5, 0.25, 0.125, 0.125]], dtype=torch.float64))  # sums exact
    for top_p, kept in ((0.5, 1), (0.75, 2), (0.875, 3)):  # a nucleus reached exactly takes no more
        assert torch.isfinite(filter_logits(dyadic, top_p=top_p)).sum() == kept
    assert torch.isfinite(filter_logits(logits, temperature=0)).tolist() == [[True, False, False, False]]
    torch.testing.assert_close(filter_logits(logits, temperature=2.0), logits / 2)
    for bad in (
        {"temperature": math.nan},
        {"temperature": -1},
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"top_k": -1},
    ):
        with pytest.raises(ValueError):
            filter_logits(logits, **bad)


def test_sequence_arrays_shift_the_sentence_and_pad():
    X, Y = sequence_arrays([(3, 4), (2,)], vocab_size=5, max_length=8)
    assert X.tolist() == [[0, 3, 4], [0, 2, 5]]
    assert Y.tolist() == [[3, 4, 0], [2, 0, -100]]
    with pytest.raises(ValueError, match="longer"):
        sequence_arrays([(1, 2, 3)], 5, max_length=2)


@pytest.mark.parametrize("kind", ["transformer", "gru"])
def test_sentence_probabilities_sum_to_one(kind):
    """Over a 2-token vocabulary (end, 'a'), sentences are a^k: their q must sum to 1 less what is left
    at the model's length; the probabilities are the product of the step-by-step softmaxes."""
    model = tiny(kind, vocab=2)
    sentences = [(1,) * k for k in range(15)]
    q = np.exp(sentence_log_probs(model, sentences))
    with torch.no_grad():
        p_continue = torch.softmax(
            model(torch.zeros(1, 1, dtype=torch.long) + torch.tensor([[0] + [1] * 14])), -1
        )
    tail = float(torch.prod(p_continue[0, :, 1]))  # P(no end token in the first 15 positions)
    assert q.sum() + tail == pytest.approx(1.0, abs=1e-6)


def test_sentence_probabilities_come_in_batches_bounded_by_the_vocabulary(monkeypatch):
    """A batch's log-probabilities (sentences x steps x vocabulary, float64) are bounded, so a large
    vocabulary takes fewer sentences a batch; the figures do not depend on the batching."""
    import lab.nets.language_model as language_model

    model = tiny("gru", vocab=9)
    generator = torch.Generator().manual_seed(2)
    sentences = [tuple(torch.randint(1, 9, (k,), generator=generator).tolist()) for k in (3, 0, 7, 5, 1, 7)]
    whole = sentence_log_probs(model, sentences)
    seen = []
    model.register_forward_hook(lambda module, args, output: seen.append(len(args[0])))
    monkeypatch.setattr(language_model, "EVAL_OUTPUTS", 2 * 8 * 9)  # two sentences of 7 tokens and the end
    np.testing.assert_allclose(sentence_log_probs(model, sentences), whole, rtol=1e-12)
    assert seen == [2, 2, 2]


def test_files_round_trip_and_refuse_what_is_not_a_model(tmp_path):
    model = tiny("gru")
    path = save_language_model(tmp_path / "m.npz", model, {"vocabulary": list("abcde"), "language": "x"})
    again, meta = load_language_model(path)
    assert meta["vocabulary"] == list("abcde") and again.kind == "gru"
    tokens = torch.tensor([[0, 1, 2, 3]])
    torch.testing.assert_close(again(tokens), model(tokens))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    from lab.core.errors import LabError

    with pytest.raises(LabError):
        load_language_model(tmp_path / "junk.npz")


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_numpy_integer_sizes_build_and_save_a_model(tmp_path, kind):
    sizes = {k: np.int64(v) for k, v in {"context": 8, "width": 16, "layers": 1, "heads": 2}.items()}
    model = LanguageModel(np.int64(5), kind=kind, **sizes)
    path = save_language_model(tmp_path / "m.npz", model, {"vocabulary": list("abcde")})
    assert (
        load_language_model(path)[0].config
        == model.config
        == {"vocab_size": 5, "kind": kind, "context": 8, "width": 16, "layers": 1, "heads": 2, "dropout": 0.0}
    )


def _train_dyck(seed: int, steps: int) -> LanguageModel:
    language = make_language("dyck")
    model = tiny("transformer", vocab=len(language.vocabulary), seed=seed)
    from envs.text import sample_corpus

    sentences = [s for s in sample_corpus(language, steps * 32, "train", seed) if len(s) <= 15]
    X, Y = sequence_arrays(sentences, len(language.vocabulary), 15)
    fit(model, X, Y, epochs=1, batch_size=32, lr=3e-3, val_fraction=0.0, seed=seed, progress=False)
    return model


def test_pretraining_on_dyck_learns_the_grammar_over_seeds():
    language = make_language("dyck")

    def trial(seed: int) -> tuple[bool, str]:
        untrained = evaluate(tiny("transformer", 3, seed), language, seed=seed, samples=200, held_out=100)
        trained = evaluate(_train_dyck(seed, 250), language, seed=seed, samples=200, held_out=100)
        assert untrained.grammatical < 0.5  # what training has to lift
        # KL on sentences of <= 12 tokens, exact: non-negative and small after training
        ok = (
            trained.grammatical > 0.8
            and trained.nll < untrained.nll - 2
            and 0 <= trained.kl_enumerated < untrained.kl_enumerated / 4
        )
        return ok, (
            f"{trained.grammatical:.1%} grammatical, NLL {trained.nll:.2f} from {untrained.nll:.2f}, "
            f"KL {trained.kl_enumerated:.3f} from {untrained.kl_enumerated:.3f}"
        )

    # Seeds 0-7 at 250 steps on this CPU's kernels, torch's AVX2 ones and its scalar ones: 2 of the 24
    # runs fell short (0.16 and 0.73 grammatical; at 120 steps, 3 of 16), so 3 seeds of 5 must pass
    seeds_pass(trial, seeds=(0, 1, 2, 3, 4), needed=3)


def test_enumerated_kl_of_the_true_distribution_is_zero():
    """A model that gives p's own conditional probabilities has KL 0 on the enumerated sentences."""
    language = make_language("dyck")

    class Exact(torch.nn.Module):
        vocab_size, max_length = 3, 15

        def forward(self, tokens):  # the grammar's next-token distribution at every prefix
            out = torch.zeros(*tokens.shape, 3, dtype=torch.float64)
            pcfg = language.pcfg
            for i, row in enumerate(tokens.tolist()):
                for t in range(len(row)):
                    prefix = [w for w in row[1 : t + 1] if w < 3]
                    if len(prefix) < t:
                        continue
                    words = [pcfg.word_index[language.vocabulary.tokens[w]] for w in prefix]
                    weights, end = pcfg.next_word_distribution(words)
                    probs = [end] + [weights[pcfg.word_index[tok]] for tok in language.vocabulary.tokens[1:]]
                    out[i, t] = torch.log(torch.tensor(probs, dtype=torch.float64).clamp(min=1e-300))
            return out

    kl, p_mass, q_mass = enumerated_kl(Exact(), language, 8)
    assert kl == pytest.approx(0.0, abs=1e-9)
    assert p_mass == pytest.approx(q_mass)


def test_an_exact_kl_over_too_many_sentences_stops_early_in_one_line():
    from envs import TextError
    from lab.core.errors import LabError

    language = make_language("english")

    class Unbounded:
        max_length = None

    with pytest.raises(
        LabError, match=r"english: the sentences of up to 30 words have over 1,000,000 prefixes"
    ):
        enumerated_kl(Unbounded(), language, 30)  # hours of walking before; about 4 s now
    with pytest.raises(TextError, match="over 100 prefixes"):
        language.pcfg.enumerate(4, max_prefixes=100)
    assert len(language.pcfg.enumerate(4, max_prefixes=30_000)) == 2700


def test_lab_lm_train_sample_eval_and_resume(tmp_path, capsys):
    runs = str(tmp_path)
    small = [
        "--set",
        "hyperparameters.width=16",
        "--set",
        "checkpoint_interval=10",
        "--set",
        "validation_size=50",
        "--set",
        "eval_samples=100",
        "--set",
        "eval_held_out=100",
    ]
    assert (
        main(
            [
                "lm",
                "train",
                "--language",
                "dyck",
                "--steps",
                "20",
                "--runs-dir",
                runs,
                "--no-progress",
                *small,
            ]
        )
        == 0
    )
    run = tmp_path / "lm-dyck"
    assert (run / "model.npz").is_file() and (run / "learning_curve.png").is_file()
    assert [p.name for p in sorted((run / "checkpoints").iterdir())] == [
        "ckpt-000000010.npz",
        "ckpt-000000020.npz",
    ]
    assert len((run / "metrics.csv").read_text().splitlines()) == 3
    out = capsys.readouterr().out
    assert "grammatical samples" in out and "exact KL" in out
    assert main(["lm", "sample", str(run), "--n", "5", "--top-k", "2", "--temperature", "0.5"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5
    assert main(["lm", "eval", str(run), "--samples", "50", "--held-out", "50"]) == 0
    assert "NLL / entropy" in capsys.readouterr().out
    # a run killed after its first round resumes to the same weights as the uninterrupted one
    first = load_language_model(run / "model.npz")[0]
    (run / "model.npz").unlink()
    (run / "checkpoints" / "ckpt-000000020.npz").unlink()
    (run / "run.json").write_text('{"status": "running"}')
    assert main(["lm", "train", "--resume", str(run), "--no-progress"]) == 0
    again = load_language_model(run / "model.npz")[0]
    for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_a_run_on_a_relative_grammar_path_is_evaluated_sampled_and_resumed_from_another_folder(
    tmp_path, capsys, monkeypatch
):
    (tmp_path / "mine.pcfg").write_text('S -> "a" S [0.4] | "b" [0.6]\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    small = ["--set", "hyperparameters.width=8", "--set", "validation_size=20", "--set", "eval_samples=20",
             "--set", "eval_held_out=20", "--set", "checkpoint_interval=2"]  # fmt: skip
    argv = ["lm", "train", "--language", "mine.pcfg", "--model", "gru", "--steps", "4", "--no-progress"]
    assert main([*argv, *small]) == 0
    run = tmp_path / "runs" / "lm-mine.pcfg"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["lm", "eval", str(run), "--samples", "10", "--held-out", "10"]) == 0
    assert main(["lm", "sample", str(run), "--n", "2"]) == 0
    (run / "model.npz").unlink()
    (run / "run.json").write_text('{"status": "running"}')
    capsys.readouterr()
    assert main(["lm", "train", "--resume", str(run), "--no-progress"]) == 0, capsys.readouterr().err
    assert str(tmp_path / "mine.pcfg") in (run / "spec.yaml").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["lm", "train", "--language", "klingon", "--steps", "5"], "klingon"),
        (["lm", "train", "--model", "lstm2", "--steps", "5"], "unknown model"),
        (["lm", "train", "--set", "hyperparameters.depth=3"], "unknown hyperparameter"),
        (["lm", "sample", "RUN", "--top-p", "0"], "top-p must lie in (0, 1]"),
        (["lm", "sample", "RUN", "--temperature", "nan"], "not a finite number"),
        (["lm", "sample", "RUN", "--top-k", "-2"], "top-k must be >= 0"),
        (["lm", "sample", "NO_SUCH_RUN"], "NO_SUCH_RUN"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        code = main(argv)
        raise SystemExit(code)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_model_file_for_another_vocabulary_is_refused_in_one_line(tmp_path, capsys):
    """The file says dyck, but its vocabulary is not dyck's: sample and eval refuse it."""
    model = tiny("gru", vocab=4)
    path = save_language_model(
        tmp_path / "m.npz", model, {"vocabulary": ["<eos>", "(", ")", "["], "language": "dyck"}
    )
    for argv in (["lm", "sample", str(path)], ["lm", "eval", str(path)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "another vocabulary" in err and "4 tokens against 3" in err and len(err.splitlines()) == 1


def test_sample_with_ends_flags_sentences_cut_at_the_length():
    from lab.nets.language_model import sample_with_ends

    model = tiny("gru")
    with torch.no_grad():
        model.net.readout.bias[0] = -1e4  # the end token never comes
    sentences, ended = sample_with_ends(model, 8, torch.Generator().manual_seed(0), 6)
    assert not any(ended) and all(len(s) == 6 for s in sentences)
    with torch.no_grad():
        model.net.readout.bias[0] = 1e4  # the end token always comes first
    sentences, ended = sample_with_ends(model, 8, torch.Generator().manual_seed(0), 6)
    assert all(ended) and all(s == () for s in sentences)
    for bad in ({"n": -1}, {"max_length": -1}, {"max_length": 2.5}):
        args = {"n": 2, "max_length": 3, **bad}
        with pytest.raises(ValueError, match=f"{next(iter(bad))} must be a whole number >= 0"):
            sample_with_ends(model, args["n"], torch.Generator(), args["max_length"])
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1; got 0"):
        sentence_log_probs(model, [(1, 2)], batch_size=0)


def test_an_ambiguous_grammar_has_no_exact_entropy_and_the_held_out_figure_is_not_called_a_kl(tmp_path):
    grammar = tmp_path / "twice.pcfg"  # every sentence has two parses: N and M share their words
    grammar.write_text(
        'S -> N V [0.5] | M V [0.5]\nN -> "a" [0.5] | "b" [0.5]\nM -> "a" [0.5] | "b" [0.5]\n'
        'V -> "x" [0.5] | "y" [0.5]\n',
        encoding="utf-8",
    )
    language = make_language(str(grammar))
    result = evaluate(tiny("gru", len(language.vocabulary)), language, samples=20, held_out=40)
    assert result.entropy is None and result.nll_over_entropy is None  # the derivation entropy is log 8
    assert result.true_nll == pytest.approx(math.log(4))  # four sentences, each 1/4
    assert result.held_out_log_ratio == pytest.approx(result.nll - result.true_nll)
    assert "no exact entropy: the grammar is ambiguous" in result.summary()
    dyck = evaluate(tiny("gru", 3), make_language("dyck"), samples=20, held_out=40)
    assert dyck.entropy == pytest.approx(make_language("dyck").pcfg.entropy())


def test_a_text_file_whose_lines_outrun_the_context_is_refused_not_looped_on(tmp_path, capsys):
    """Every line is longer than the model's context: the redraws stop with one line, no hang."""
    rng = np.random.default_rng(0)
    lines = ["".join(rng.choice(list("abcdef "), 80)) for _ in range(50)]
    (tmp_path / "long.txt").write_text("\n".join(lines) + "\n")
    argv = ["lm", "train", "--language", f"text:{tmp_path / 'long.txt'}", "--steps", "2"]
    argv += ["--set", "validation_size=20", "--runs-dir", str(tmp_path), "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "fit the model's" in err and "context" in err and len(err.splitlines()) == 1
