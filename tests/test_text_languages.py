"""Languages, their exact verifiers, corpora and splits, and bad input to them."""

from __future__ import annotations

import pytest

from envs import CorpusError, TextError, VocabularyError
from envs.text import TextGenEnv, make_language, sample_corpus
from envs.text.languages import SPLITS, ArithmeticLanguage, CopyLanguage, split_of


def test_arithmetic_is_exactly_right_or_wrong():
    lang = ArithmeticLanguage(max_operand=99)
    assert lang.answer("add", lang.encode("37+45=")) == lang.encode("82")
    assert lang.answer("add", lang.encode("0+0=")) == lang.encode("0")
    assert lang.answer("keyword", lang.encode("1+2=")) is None
    every = [p for s in SPLITS for p in lang.prompts(s)]
    assert len(every) == len(set(every)) == 100 * 100


def test_copy_and_reverse():
    lang = CopyLanguage(alphabet="ab", max_word=3)
    prompt = lang.encode("aab|")
    assert lang.answer("reverse", prompt) == lang.encode("baa")
    assert lang.answer("copy", prompt) == lang.encode("aab")


@pytest.mark.parametrize("name", ["english", "dyck", "arithmetic", "copy"])
def test_corpus_is_seeded_and_splits_are_disjoint(name):
    lang = make_language(name)
    train = sample_corpus(lang, 300, "train", seed=1)
    assert train == sample_corpus(lang, 300, "train", seed=1)
    assert train != sample_corpus(lang, 300, "train", seed=2)
    held_out = set(sample_corpus(lang, 40, "validation", seed=1)) | set(
        sample_corpus(lang, 40, "test", seed=1)
    )
    key = (lambda ids: lang.text(ids)) if name in ("english", "dyck") else None
    if key is not None:
        assert not set(train) & held_out
        assert all(split_of(lang.text(s)) == "train" for s in train)
    if name == "arithmetic":
        # a problem is in one split only: prompts of the splits never overlap
        prompts = [set(lang.prompts(s)) for s in SPLITS]
        assert not prompts[0] & prompts[1] and not prompts[0] & prompts[2] and not prompts[1] & prompts[2]
        equals = lang.vocabulary.index["="]
        assert all(lang.answer("add", s[: s.index(equals) + 1]) == s[s.index(equals) + 1 :] for s in train)
        assert all(split_of(lang.text(s[: s.index(equals) + 1])) == "train" for s in train)
    if name in ("english", "dyck"):
        assert all(
            lang.pcfg.sentence_probability([lang.pcfg.word_index[t] for t in lang.vocabulary.decode(s)]) > 0
            for s in train[:50]
        )


def test_text_file_characters_and_subwords(tmp_path):
    f = tmp_path / "poems.txt"
    f.write_text("the cat sat on the mat\n\nthe dog sat on the log\nmy cat is grey\n", encoding="utf-8")
    chars = make_language(f"text:{f}")
    assert chars.text(chars.encode("the log")) == "the log"
    assert (
        len(chars.vocabulary) == len(set("the cat sat on the mat the dog sat on the log my cat is grey")) + 1
    )
    bpe = make_language(str(f), tokenizer="bpe", vocab_size=40)
    assert len(bpe.vocabulary) <= 40
    ids = bpe.encode("the cat sat on the log")
    assert bpe.text(ids) == "the cat sat on the log"
    assert len(ids) < len("the cat sat on the log")  # merges happened
    lines = sample_corpus(bpe, 5, "train", seed=0) + sample_corpus(bpe, 5, "train", seed=3)
    assert {bpe.text(s) for s in lines} <= {
        "the cat sat on the mat",
        "the dog sat on the log",
        "my cat is grey",
    }
    with pytest.raises(VocabularyError, match=r"'the zebra' has characters the file poems\.txt does not"):
        bpe.encode("the zebra")  # BPE has no unknown token: it dropped the z without a word
    (tmp_path / "eos.txt").write_text("a<eos>b b<eos>c\n" * 20, encoding="utf-8")
    with pytest.raises(VocabularyError, match="a token is spelled <eos>, as the end token is"):
        make_language(str(tmp_path / "eos.txt"), tokenizer="bpe", vocab_size=30)
    env = TextGenEnv(f"text:{f}", "keyword", keyword="c", max_length=6)
    _, info = env.reset(seed=0)
    assert info["action_mask"].all()  # no grammar: every token, the end token too, is allowed


def test_bad_corpus_files(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        make_language(f"text:{tmp_path / 'none.txt'}")
    with pytest.raises(CorpusError, match="is a folder: give a text file"):
        make_language(f"text:{tmp_path}")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(CorpusError, match="empty"):
        make_language(str(empty))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café crème".encode("latin-1"))
    with pytest.raises(CorpusError, match="not UTF-8"):
        make_language(str(latin))


def test_vocabulary_over_the_configured_size(tmp_path):
    f = tmp_path / "abc.txt"
    f.write_text("abcdefghij\n")
    with pytest.raises(VocabularyError, match=r"11 tokens .* over the configured size 5"):
        make_language(str(f), vocab_size=5)
    with pytest.raises(VocabularyError, match="over the configured size 6; raise vocab_size to at least 12"):
        make_language(str(f), tokenizer="bpe", vocab_size=6)
    with pytest.raises(VocabularyError, match="over the configured size 10"):
        make_language("english", max_vocabulary=10)
    with pytest.raises(
        TextError, match=r"unknown language 'englsh'; did you mean 'english'\? \(the lab's: arithmetic, copy"
    ):
        make_language("englsh")


def test_bad_prompts_and_options():
    with pytest.raises(VocabularyError, match="prompt 'the unicorn' has the unknown token 'unicorn'"):
        TextGenEnv("english", prompts=["the unicorn"])
    with pytest.raises(TextError, match="prompt 'dog the' starts no sentence of english"):
        TextGenEnv("english", prompts=["dog the"])
    with pytest.raises(VocabularyError, match="unknown token 'x'"):
        TextGenEnv("arithmetic", prompts=["1+x="])
    with pytest.raises(TextError, match="english has no task 'add'; choose one of: grammatical, positive"):
        TextGenEnv("english", "add")
    with pytest.raises(TextError, match="unknown scorer 'fluency'"):
        TextGenEnv("english", reward={"fluency": 1.0})
    with pytest.raises(TextError, match="need keyword="):
        TextGenEnv("english", reward={"keyword": 1.0})
    with pytest.raises(VocabularyError, match="keyword 'unicorn' has the unknown token"):
        TextGenEnv("english", "keyword", keyword="unicorn")
    with pytest.raises(TextError, match="bad option for language 'english'"):
        TextGenEnv("english", max_operand=3)
    with pytest.raises(TextError, match=r"'max_lenght' \(did you mean the env's 'max_length'\?\)"):
        TextGenEnv("english", max_lenght=3)
    with pytest.raises(TextError, match="max_length must be a positive integer"):
        TextGenEnv("dyck", max_length=0)
    with pytest.raises(TextError, match="needs 2 more words and the end token: over max_length=2"):
        TextGenEnv("english", prompts=["the"], max_length=2)
    with pytest.raises(TextError, match="unknown split 'dev'"):
        TextGenEnv("arithmetic", split="dev")


def test_malformed_task_prompts():
    with pytest.raises(TextError, match="arithmetic prompt '12=' must read like 37\\+45="):
        TextGenEnv("arithmetic", prompts=["12="])
    with pytest.raises(TextError, match="reverse prompt 'ab' must be a word then"):
        TextGenEnv("copy", "reverse", prompts=["ab"])
    TextGenEnv("copy", "reverse", prompts=["ab|"])


def test_a_grammar_word_spelled_as_the_end_token_is_refused(tmp_path):
    grammar = tmp_path / "eos.pcfg"
    grammar.write_text('S -> "a" "<eos>" "b" [0.5] | "a" [0.5]\n', encoding="utf-8")
    with pytest.raises(VocabularyError, match="a token is spelled <eos>"):
        make_language(str(grammar))  # it became the end token: "a <eos> b" could never be made


def test_bpe_vocabulary_size_at_the_boundary(tmp_path):
    f = tmp_path / "abc.txt"
    f.write_text("abcdefghij\n")  # 10 letters and the space mark: 11 characters, 12 tokens with <eos>
    with pytest.raises(VocabularyError, match="configured size 11; raise vocab_size to at least 12"):
        make_language(str(f), tokenizer="bpe", vocab_size=11)
    assert len(make_language(str(f), tokenizer="bpe", vocab_size=12).vocabulary) == 12


def test_copy_prompts_split_disjointly_and_malformed_ones_are_refused():
    lang = CopyLanguage(alphabet="abc", max_word=3)
    prompts = [set(lang.prompts(s)) for s in SPLITS]
    assert sum(len(p) for p in prompts) == len(set.union(*prompts)) == 3 + 9 + 27
    assert all(split_of(lang.text(p)) == "validation" for p in prompts[1])
    for bad in ("|", "a|b|"):
        with pytest.raises(TextError, match=f"copy prompt {bad!r} must be a word then '\\|'"):
            TextGenEnv("copy", "copy", prompts=[bad])


@pytest.mark.parametrize(
    "language, options, message",
    [
        (
            "arithmetic",
            {"max_operand": 10**9},
            "max_operand=1000000000 makes 1,000,000,002,000,000,001 prompts",
        ),
        ("copy", {"max_word": 10**12}, "max_word=1000000000000 makes over 2,391,483 prompts"),
        ("copy", {"alphabet": "ab", "max_word": 19}, "makes 1,048,574 prompts"),
    ],
)
def test_options_that_make_too_many_prompts_are_refused_before_enumerating(language, options, message):
    """A few characters of options (a spec's env_kwargs, a checkpoint's env record) cannot make an
    environment enumerate billions of prompts."""
    with pytest.raises(TextError, match=message):
        TextGenEnv(language, **options)
    assert len(make_language("copy", alphabet="ab", max_word=18).prompts("train")) > 0  # at the bound: fine


def test_a_language_with_no_item_in_a_split_says_so_at_once(tmp_path):
    """A grammar of one sentence has it in one split only; asking another split redrew for a million
    tries (minutes for a long sentence) before saying so."""
    path = tmp_path / "one.pcfg"
    path.write_text('S -> "the" "one" "sentence"\n')
    language = make_language(str(path))
    [split] = [s for s in SPLITS if split_of("the one sentence") == s]
    assert len(sample_corpus(language, 3, split)) == 3
    other = next(s for s in SPLITS if s != split)
    with pytest.raises(
        TextError, match=rf"no item in the {other} split: its 1 distinct item\(s\) drawn in 1001"
    ):
        sample_corpus(language, 50, other)
