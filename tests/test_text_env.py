"""lab/TextGen-v0: spaces the checkers accept, masks that keep sentences grammatical, scorers,
the finite version's exact transition model, rendering and sb3-contrib's MaskablePPO."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from agents.planning import value_iteration
from envs import InvalidActionError, TextError
from envs.text import TextGenEnv

PRESETS = [entry.id for entry in envs.TEXT_ENTRIES]


@pytest.mark.parametrize("env_id", PRESETS)
def test_checkers_accept_the_presets(env_id):
    env = gym.make(env_id).unwrapped
    check_env(env, skip_render_check=True)
    sb3_check_env(env)


def test_checkers_accept_index_observations():
    env = TextGenEnv("dyck", max_length=5, obs_type="index")
    check_env(env, skip_render_check=True)
    sb3_check_env(env)


def play(env: TextGenEnv, seed: int, rng: np.random.Generator) -> tuple[list, list]:
    """One episode of uniformly random allowed tokens: (infos, rewards)."""
    obs, info = env.reset(seed=seed)
    infos, rewards = [info], []
    while True:
        mask = env.action_masks()
        np.testing.assert_array_equal(mask, infos[-1]["action_mask"])
        obs, r, terminated, truncated, info = env.step(int(rng.choice(np.flatnonzero(mask))))
        infos.append(info)
        rewards.append(r)
        assert obs["length"][0] == len(env.prompts[env._prompt_index]) + len(rewards)
        if terminated or truncated:
            assert terminated and not truncated, "with masks every sentence ends in time"
            return infos, rewards


@settings(max_examples=30)
@given(seed=st.integers(0, 2**31), env_id=st.sampled_from(PRESETS))
def test_masked_play_is_always_grammatical(seed, env_id):
    env = gym.make(env_id).unwrapped
    infos, _ = play(env, seed, np.random.default_rng(seed))
    assert infos[-1]["grammatical"]
    lang = env.language
    if lang.pcfg is not None:
        words = [
            lang.pcfg.word_index[t]
            for t in lang.vocabulary.decode(
                [t for t in env._tokens[: env._length].tolist() if t != env.eos][
                    0 if lang.prompt_in_grammar else len(env.prompts[env._prompt_index]) :
                ]
            )
        ]
        assert lang.pcfg.sentence_probability(words) > 0


def test_masks_follow_the_grammar_exactly():
    env = TextGenEnv("english", max_length=30)
    env.reset(seed=0)
    w = env.vocabulary.index
    allowed = {env.vocabulary.tokens[t] for t in np.flatnonzero(env.action_masks())}
    assert allowed == {"the", "a", "every"}
    env.step(w["the"])
    env.step(w["dog"])
    allowed = {env.vocabulary.tokens[t] for t in np.flatnonzero(env.action_masks())}
    assert allowed == {
        "that",
        "sleeps",
        "runs",
        "smiles",
        "cries",
        "laughs",
        "waits",
        "sees",
        "likes",
        "loves",
        "hates",
        "helps",
        "finds",
        "fears",
        "follows",
    }
    # near the length limit only words that can still end in time remain
    short = TextGenEnv("english", max_length=4)
    short.reset(seed=0)
    short.step(w["the"])
    assert not short.action_masks()[w["good"]]  # "the good N V <eos>" needs 5 tokens
    assert short.action_masks()[w["dog"]]
    short.step(w["good"])  # against the mask: no sentence can end in time now
    assert short.action_masks().all()  # as after a dead prefix, every token goes: a mask is never empty


@pytest.mark.parametrize("language", ["arithmetic", "copy"])
def test_a_max_length_too_short_for_any_answer_is_refused_as_for_a_grammar_prompt(language):
    # one token: any word truncates, the end token fails; masks could not keep their promise
    with pytest.raises(TextError, match=r"an answer needs 1 token\(s\) and the end token: over max_length=1"):
        TextGenEnv(language, max_length=1)
    assert TextGenEnv(language, max_length=1, action_mask=False).reset(seed=0)  # no masks: allowed


def test_without_masks_ungrammatical_text_is_scored_and_shaped():
    env = TextGenEnv(
        "english", "positive", reward={"task": 1.0, "grammatical": 0.5, "viability": 0.25}, action_mask=False
    )
    _, info = env.reset(seed=0)
    assert "action_mask" not in info and env.action_masks().all()
    w = env.vocabulary.index
    rewards = [env.step(w[t])[1] for t in ["the", "dog", "dog", "loves"]]
    assert rewards == [0.0, 0.0, -0.25, 0.0]  # the token that breaks the grammar pays once
    _, r, terminated, _, info = env.step(env.eos)
    assert terminated and r == 0.0 and not info["grammatical"] and not info["success"]
    env.reset(seed=0)
    for t in ["the", "kind", "dog", "loves", "a", "cat"]:
        assert env.step(w[t])[1] == 0.0
    _, r, terminated, _, info = env.step(env.eos)
    assert r == 1.5 and info["success"] and info["grammatical"]
    # truncation: max_length tokens without the end token, no terminal reward
    env = TextGenEnv("dyck", max_length=3, reward={"grammatical": 1.0})
    env.reset(seed=0)
    (o, c) = env.vocabulary.index["("], env.vocabulary.index[")"]
    assert env.step(o)[2:4] == (False, False)
    assert env.step(c)[2:4] == (False, False)
    mask = env.action_masks()
    assert mask[env.eos] and not mask[o]  # one slot left: only the end token
    _, r, terminated, truncated, _ = env.step(o)  # not masked by the env itself: masks are advice
    assert (r, terminated, truncated) == (0.0, False, True)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(c)


def test_arithmetic_keyword_length_and_custom_scorers():
    env = TextGenEnv("arithmetic", prompts=["37+45="], max_length=4)
    env.reset(seed=0)
    for t in "82":
        env.step(env.vocabulary.index[t])
    assert env.step(env.eos)[1] == 1.0
    env.reset()
    env.step(env.vocabulary.index["8"])
    assert env.step(env.eos)[1] == 0.0
    env = TextGenEnv(
        "english",
        "keyword",
        keyword="cat",
        target_length=4,
        prompts=["the"],
        reward={"task": 1.0, "length": 0.5, "shout": 0.25},
        scorers={"shout": lambda text: float(text.startswith("the cat"))},
    )
    env.reset(seed=0)
    for t in ["cat", "sees", "a", "dog"]:
        env.step(env.vocabulary.index[t])
    assert env.step(env.eos)[1] == 1.0 + 0.5 + 0.25  # 4 answer tokens: the target length
    env.reset(seed=0)
    for t in ["dog", "sees", "a", "big", "cat"]:
        env.step(env.vocabulary.index[t])
    assert env.step(env.eos)[1] == 1.0 + 0.5 * (1 - 1 / 4)


def test_bad_actions():
    env = TextGenEnv("dyck")
    with pytest.raises(RuntimeError, match="reset"):
        env.step(1)
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match="outside the action space Discrete"):
        env.step(3)
    with pytest.raises(InvalidActionError, match="an action is an integer"):
        env.step("(")
    with pytest.raises(TextError, match=r"the prefix tree has .* nodes"):
        TextGenEnv("english", obs_type="index")


FINITE = [
    (
        dict(
            language="dyck",
            max_length=6,
            reward={"grammatical": 1.0, "length": 0.5, "viability": 0.1},
            target_length=4,
        ),
        1.5,
    ),
    (
        dict(
            language="copy",
            task="reverse",
            alphabet="ab",
            max_word=2,
            max_length=3,
            reward={"task": 1.0, "grammatical": 0.25},
        ),
        1.25,
    ),
    (dict(language="arithmetic", prompts=["2+3=", "4+4="], max_length=2), 1.0),
]


@pytest.mark.parametrize(("kwargs", "optimum"), FINITE, ids=["dyck", "reverse", "arithmetic"])
def test_value_iteration_finds_the_brute_force_optimum(kwargs, optimum):
    env = TextGenEnv(**kwargs, obs_type="index")
    model = env.transition_model()
    assert np.allclose(model.P.sum(axis=2), 1.0)
    plan = value_iteration(model, gamma=1.0)
    starts = np.flatnonzero(model.initial)
    # brute force over every token sequence, scored by the environment's own steps
    for p, s0 in enumerate(starts):
        best = -np.inf
        for n in range(1, env.max_length + 1):
            for seq in itertools.product(range(env.n_tokens), repeat=n):
                if env.eos in seq[:-1] or (n < env.max_length and seq[-1] != env.eos):
                    continue
                best = max(best, episode_return(env, p, seq))
        assert plan.V[s0] == pytest.approx(best, abs=1e-12)
        assert best == pytest.approx(optimum)
        # the greedy policy, run in the environment, earns the optimum; observations are the nodes
        obs = start_at(env, p)
        assert obs == s0
        total, done = 0.0, False
        while not done:
            obs, r, terminated, truncated, _ = env.step(int(plan.policy[obs]))
            total += r
            done = terminated or truncated
        assert total == pytest.approx(best, abs=1e-12)


def start_at(env: TextGenEnv, prompt: int) -> int:
    for seed in range(1000):
        obs, _ = env.reset(seed=seed)
        if env._prompt_index == prompt:
            return obs
    raise AssertionError("no seed draws that prompt")


def episode_return(env: TextGenEnv, prompt: int, seq: tuple[int, ...]) -> float:
    start_at(env, prompt)
    return sum(env.step(a)[1] for a in seq)


def test_index_observations_follow_the_model():
    env = TextGenEnv("copy", "reverse", alphabet="ab", max_word=2, max_length=3, obs_type="index")
    model = env.transition_model()
    rng = np.random.default_rng(0)
    for seed in range(20):
        s, _ = env.reset(seed=seed)
        assert model.initial[s] > 0
        done = False
        while not done:
            a = int(rng.integers(env.n_tokens))
            s2, r, terminated, truncated, _ = env.step(a)
            assert model.P[s, a, s2] == 1.0 and model.R[s, a] == r
            assert model.terminal[s2] == (terminated or truncated)
            s, done = s2, terminated or truncated
    # the start distribution: each prompt's root, uniformly (the reset draws them so)
    assert len(env.prompts) > 1
    assert model.initial.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_array_equal(np.flatnonzero(model.initial), np.arange(len(env.prompts)) * env.per_prompt)
    assert set(model.initial[model.initial > 0].tolist()) == {1.0 / len(env.prompts)}


def test_render_modes(tmp_path):
    env = TextGenEnv("english", "positive", prompts=["the happy dog"], render_mode="ansi")
    env.reset(seed=0)
    env.step(env.vocabulary.index["sleeps"])
    assert env.render().splitlines()[0] == "the happy dog | sleeps _"
    env.step(env.eos)
    assert env.render().splitlines()[0] == "the happy dog | sleeps <eos>"
    frames = []
    env = TextGenEnv("english", "positive", prompts=["the happy dog"], render_mode="rgb_array")
    env.reset(seed=0)
    frames.append(env.render())
    env.step(env.vocabulary.index["smiles"])
    env.step(env.eos)
    frames.append(env.render())
    for f in frames:
        assert f.dtype == np.uint8 and f.ndim == 3 and f.shape[2] == 3
        assert len(np.unique(f.reshape(-1, 3), axis=0)) > 20
    assert not np.array_equal(frames[0], frames[1])
    human = TextGenEnv("dyck", render_mode="human")
    human.reset(seed=0)
    human.step(1)
    human.close()


def test_tokens_that_draw_nothing_are_shown_as_escapes():
    from envs.text.painter import visible

    tokens = ["\x00", "\u200b", "\ufeff", "\t", "\xa0", " ", "  ", "a b", "\u00e9", "<eos>"]
    shown = [
        "\\x00",
        "\\u200b",
        "\\ufeff",
        "\\t",
        "\\xa0",
        "\u00b7",
        "\u00b7\u00b7",
        "a b",
        "\u00e9",
        "<eos>",
    ]
    assert [visible(t) for t in tokens] == shown


def test_a_text_file_with_a_bom_zero_width_and_nul_characters_renders(tmp_path):
    from envs.text.painter import Choice, Picker

    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbfabc cab\nbca abc\n")
    env = TextGenEnv(f"text:{bom}", "length", target_length=3, render_mode="rgb_array")
    assert env.vocabulary.tokens == ("<eos>", " ", "a", "b", "c")  # the byte-order mark is no token
    env.reset(seed=0)
    assert env.render().shape == (440, 760, 3)
    odd = tmp_path / "odd.txt"
    odd.write_text("ab\u200bc\x00 cab\tx\nbca abc\n", encoding="utf-8")
    env = TextGenEnv(f"text:{odd}", "length", target_length=3, max_length=12, render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()  # the list of next tokens holds them all
    for token in ("\x00", "\u200b", "\t", " "):
        env.step(env.vocabulary.index[token])
    chips = env.render()  # and the sentence
    assert chips.shape == first.shape and not np.array_equal(chips[40:110], first[40:110])
    odd_ones = [Choice(str(k), t, None) for k, t in enumerate(("\x00", "\u200b", "\ufeff", " "))]
    assert env.frame(picker=Picker(odd_ones, rows=2)).shape[1] == 760  # lab play's page of tokens


class RenderedTexts:
    """A font that records the strings it renders."""

    def __init__(self, font) -> None:
        self.font, self.texts = font, []

    def render(self, text, *args):
        self.texts.append(text)
        return self.font.render(text, *args)

    def __getattr__(self, name):
        return getattr(self.font, name)


@pytest.mark.parametrize("language", ["english", "text"])
def test_next_tokens_carry_exact_probabilities_only_where_the_language_has_a_grammar(tmp_path, language):
    from envs.text.painter import BAR

    corpus = tmp_path / "abc.txt"
    corpus.write_text("abc cab\n", encoding="utf-8")
    name = f"text:{corpus}" if language == "text" else language
    env = TextGenEnv(name, "length", target_length=3, render_mode="rgb_array")
    env.reset(seed=0)
    spy = RenderedTexts(env.painter().small)
    env.painter().small = spy
    frame = env.render()
    bars = bool((frame == BAR).all(axis=2).any())
    percentages = [t for t in spy.texts if t.endswith("%")]
    if language == "english":
        assert "allowed next tokens (exact probability)" in spy.texts and bars and percentages
    else:  # a text file has no grammar: its uniform "probabilities" are no exact ones
        assert "tokens that may come next" in spy.texts and not bars and not percentages
        assert {"a", "b", "c", "<eos>"} <= set(spy.texts)


def test_a_long_sentence_makes_the_frame_taller_and_the_result_stays_on_it(tmp_path):
    from envs.text.painter import HEIGHT, MUTED, PAD, PANEL

    corpus = tmp_path / "ab.txt"
    corpus.write_text("ab ba\n", encoding="utf-8")
    env = TextGenEnv(f"text:{corpus}", "length", target_length=3, max_length=160, render_mode="rgb_array")
    env.reset(seed=0)
    for _ in range(150):
        env.step(env.vocabulary.index["a"])
    listing = env.render()
    env.step(env.eos)
    result = env.render()  # the return of a 150-token sentence, which was drawn below the frame
    assert listing.shape[0] > HEIGHT and result.shape == listing.shape
    bottom = result[-PAD - 100 : -PAD, PAD + 2 : -PAD - 2]  # the panel's lower part, inside its border
    assert (bottom == PANEL).all(axis=2).mean() > 0.5  # the white panel, not the chips over it
    assert (result[-PAD - 140 :] == MUTED).all(axis=2).any()  # its verdict line ("failed": return 0)


def test_maskable_ppo_trains_and_never_picks_a_masked_action():
    sb3_contrib = pytest.importorskip("sb3_contrib")

    class Audit(gym.Wrapper):
        violations = 0
        steps = 0

        def step(self, action):
            Audit.steps += 1
            if not self.env.unwrapped.action_masks()[int(action)]:
                Audit.violations += 1
            return self.env.step(action)

    env = Audit(gym.make("lab/TextPositive-v0"))
    model = sb3_contrib.MaskablePPO(
        "MultiInputPolicy",
        env,
        n_steps=64,
        batch_size=32,
        n_epochs=1,
        seed=0,
        policy_kwargs={"net_arch": [32]},
    )
    model.learn(total_timesteps=256)
    assert Audit.steps >= 256 and Audit.violations == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_q_learning_reaches_the_exact_optimum_of_a_finite_version(seed):
    from agents.planning import policy_start_value
    from agents.tabular.q_learning import QLearning

    kwargs = dict(language="dyck", max_length=4, reward={"grammatical": 1.0, "length": 0.5}, target_length=2)
    env = TextGenEnv(**kwargs, obs_type="index")
    model = env.transition_model()
    optimum = value_iteration(model, gamma=1.0).start_value(model)
    assert optimum == 1.5  # "( )" then the end token
    agent = QLearning(env, seed=seed, gamma=1.0, learning_rate=0.5, epsilon=0.3)
    agent.learn(6_000)
    assert policy_start_value(model, agent.greedy_policy(), gamma=1.0) == pytest.approx(optimum)


def test_transition_model_refuses_a_tree_too_big_for_dense_arrays():
    env = TextGenEnv("dyck", max_length=8, obs_type="index")  # 9,841 nodes: fine for index observations
    with pytest.raises(TextError, match=r"a dense model of 9841 nodes x 3 tokens x 9841 nodes is 2\.2 GiB"):
        env.transition_model()


def finish(env: TextGenEnv, words: list[str]) -> tuple[float, dict]:
    """Emit ``words`` and the end token after a reset; the end's reward and information."""
    env.reset(seed=0)
    for t in words:
        assert env.step(env.vocabulary.index[t])[1] == 0.0
    _, reward, terminated, _, info = env.step(env.eos)
    assert terminated
    return reward, {k: info[k] for k in ("success", "grammatical")}


def test_sentiment_counts_the_prompt_and_needs_a_sum_above_or_below_zero():
    positive = TextGenEnv("english", "positive", prompts=["the good dog"])
    assert finish(positive, ["sleeps"]) == (1.0, {"success": True, "grammatical": True})  # +1 from the prompt
    # "the sad dog loves a cat": -1 + 1 = 0 is neither positive nor negative
    for task in ("positive", "negative"):
        env = TextGenEnv("english", task, prompts=["the sad dog"])
        assert finish(env, ["loves", "a", "cat"]) == (0.0, {"success": False, "grammatical": True})
    assert finish(TextGenEnv("english", "negative", prompts=["the sad dog"]), ["sleeps"])[0] == 1.0


def test_keyword_counts_in_the_answer_only_and_needs_grammar_where_there_is_one(tmp_path):
    reward = {"task": 1.0, "keyword": 0.5}
    env = TextGenEnv("english", "keyword", keyword="cat", prompts=["the cat"], reward=reward)
    assert finish(env, ["sleeps"]) == (0.0, {"success": False, "grammatical": True})  # only in the prompt
    env = TextGenEnv("english", "keyword", keyword="cat", prompts=["the"], reward=reward, action_mask=False)
    assert finish(env, ["cat", "sleeps"]) == (1.5, {"success": True, "grammatical": True})
    # the keyword is there but the sentence is not English: the scorer pays, the task fails
    assert finish(env, ["cat", "cat"]) == (0.5, {"success": False, "grammatical": False})
    corpus = tmp_path / "lines.txt"
    corpus.write_text("abc\nba\n")
    text = TextGenEnv(f"text:{corpus}", "keyword", keyword="c", action_mask=False)
    assert finish(text, ["b", "c", "c"])[1]["success"]  # no grammar: any text that holds it
    with pytest.raises(TextError, match="keyword 'the dog' must be one token; it is 2"):
        TextGenEnv("english", "keyword", keyword="the dog")


def test_length_task_needs_exactly_the_target_and_custom_scorers_see_the_text_without_the_end():
    seen: list[str] = []
    env = TextGenEnv(
        "english",
        "length",
        target_length=2,
        prompts=["the"],
        reward={"task": 1.0, "length": 0.5, "echo": 0.25},
        scorers={"echo": lambda text: float(seen.append(text) or text == "the dog sleeps")},
    )
    assert finish(env, ["dog", "sleeps"]) == (1.0 + 0.5 + 0.25, {"success": True, "grammatical": True})
    reward, info = finish(env, ["good", "dog", "sleeps"])  # 3 tokens: one too many
    assert (reward, info["success"]) == (0.5 * (1 - 1 / 2), False)
    assert seen == ["the dog sleeps", "the good dog sleeps"]
    # a scorer weighted 0 is left out, and so is what it would need
    assert TextGenEnv("english", reward={"task": 1.0, "length": 0.0, "keyword": 0}).rewards.weights == {
        "task": 1.0
    }


def test_dyck_masks_by_hand_from_the_reset_on():
    # "()" and the end token fill 3 slots; "(())" and the end token need 5
    env = TextGenEnv("dyck", max_length=3)
    o, c, eos = env.vocabulary.index["("], env.vocabulary.index[")"], env.eos

    def allowed(mask: np.ndarray) -> set[int]:
        return set(np.flatnonzero(mask).tolist())

    _, info = env.reset(seed=0)
    assert allowed(info["action_mask"]) == allowed(env.action_masks()) == {o}
    assert allowed(env.step(o)[4]["action_mask"]) == {c}  # "((" could not end in time
    assert allowed(env.step(c)[4]["action_mask"]) == {eos}
    env = TextGenEnv("dyck", max_length=5)
    env.reset(seed=0)
    assert allowed(env.step(o)[4]["action_mask"]) == {o, c}
    assert allowed(env.step(o)[4]["action_mask"]) == {c}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "x", None])
def test_a_custom_scorer_that_returns_no_finite_number_is_named(value):
    env = TextGenEnv("english", prompts=["the"], reward={"odd": 1.0}, scorers={"odd": lambda text: value})
    with pytest.raises(
        TextError, match=r"scorer 'odd' returned .* for 'the dog sleeps'; a scorer returns a finite"
    ):
        finish(env, ["dog", "sleeps"])
    fine = TextGenEnv(
        "english", prompts=["the"], reward={"ok": 1.0}, scorers={"ok": lambda text: np.float32(0.5)}
    )
    assert finish(fine, ["dog", "sleeps"])[0] == 0.5
