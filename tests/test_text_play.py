"""``lab play`` on the text envs: keys fed to the real loop build a sentence, the return is the env's,
the episode is recorded as a human replay, and every key that picks nothing says so."""

from __future__ import annotations

import numpy as np
import pytest
from play_keys import feed_keys

from lab.cli import main
from lab.core.environments import make_env
from lab.replays import list_replays, load_episode, verify_episode
from lab.text_prefix import next_token_probabilities, prefix_state


def env_return(env_id: str, seed: int, words: list[str], **kwargs) -> tuple[float, str]:
    """The return and the text of an episode that emits ``words`` then ``<eos>``, stepped directly."""
    env = make_env(env_id, kwargs)
    env.reset(seed=seed)
    index = env.unwrapped.vocabulary.index
    total = 0.0
    for word in [*words, "<eos>"]:
        _, reward, terminated, _, _ = env.step(index[word])
        total += float(reward)
    assert terminated
    return total, env.unwrapped.text


def test_keys_build_a_known_sentence_and_the_episode_is_recorded(monkeypatch, tmp_path):
    from lab.play import play

    # English with masks, likeliest first: 1 = the; after it nouns 1-0 then adjectives a, b, c = kind;
    # 1 = dog; the verbs after 'that' (1): down, Enter = sleeps; then 1 = the end token
    shown = feed_keys(monkeypatch, ["1", "c", "1", "down", "return", "1"])
    returns = play("TextPositive", seed=0, record_dir=tmp_path)
    expected, text = env_return("TextPositive", 0, ["the", "kind", "dog", "sleeps"])
    assert text == "the kind dog sleeps" and expected == 1.0
    assert returns == [expected]
    finished = shown[-1][1]
    assert "return 1, succeeded, replay saved - r to play again" in finished[0]
    assert "step 5/12" in finished[1]
    [(path, _)] = list_replays(tmp_path)
    episode = load_episode(path)
    tokens = make_env("TextPositive").unwrapped.vocabulary.tokens
    assert [tokens[a] for a in episode.actions] == ["the", "kind", "dog", "sleeps", "<eos>"]
    assert episode.source == "human" and episode.seed == 0 and episode.env_id == "lab/TextPositive-v0"
    assert float(np.sum(episode.rewards)) == expected


def test_a_played_text_episode_verifies_by_re_simulation(monkeypatch, tmp_path):
    from lab.play import play

    feed_keys(monkeypatch, ["1", "1", "1", "1"])
    play("TextDyck", seed=3, record_dir=tmp_path)
    [(path, _)] = list_replays(tmp_path)
    assert verify_episode(load_episode(path)).ok


def test_a_key_that_names_no_token_says_so_and_nothing_moves(monkeypatch):
    from lab.play import play

    # Dyck at the start offers '(' alone, on key 1; z names nothing, f5 is no pick key, shift is silent
    shown = feed_keys(monkeypatch, ["z", "f5", "left shift", "1"])
    assert play("TextDyck", seed=0) == []
    messages = [lines[0] for _, lines in shown]
    assert "no token on key z on this page (keys: 1)" in messages[1]
    assert "key 'f5' picks no token" in messages[2]
    assert messages[3] == messages[2]  # a modifier alone changes nothing
    steps = [lines[1].split("step ")[1].split("/")[0] for _, lines in shown]
    assert steps == ["0", "0", "0", "0", "1"]


def test_s_saves_a_screenshot_of_the_window_in_the_current_folder(monkeypatch, tmp_path):
    import imageio.v3 as iio

    from lab.play import play

    monkeypatch.chdir(tmp_path)
    shown = feed_keys(monkeypatch, ["1", "s"])
    play("TextDyck", seed=0)
    [png] = tmp_path.glob("*.png")
    assert png.name == "TextDyck-v0_step01.png" and f"saved {png.name}" in shown[-1][1][0]
    frame = shown[-1][0]
    assert np.array_equal(iio.imread(png)[: frame.shape[0], : frame.shape[1], :3], frame)  # what was shown


def test_a_screenshot_that_cannot_be_saved_is_said_and_the_game_goes_on(monkeypatch, tmp_path):
    import errno

    from lab.play import play

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("lab.core.files.atomic_path", full)
    shown = feed_keys(monkeypatch, ["s", "1"])
    play("TextDyck", seed=0)
    assert "could not save screenshot in the current folder: No space left on device" in shown[1][1][0]
    assert shown[-1][1][1].split("step ")[1].startswith("1/") and list(tmp_path.iterdir()) == []


def test_r_restarts_and_a_finished_sentence_takes_no_more_tokens(monkeypatch):
    from lab.play import play

    # arithmetic: a digit token is picked by its own key; 'a' is the end token once a digit is written
    shown = feed_keys(monkeypatch, ["r", "7", "a", "5", "r", "3"])
    returns = play("TextArithmetic", seed=0)
    assert len(returns) == 1
    texts = [lines[0] for _, lines in shown]
    assert "'7': reward +0" in texts[2]
    assert "the sentence is finished" in texts[4]
    assert "new episode" in texts[5] and "'3'" in texts[6]
    prompt = shown[1][1][1].split("prompt ")[1].split("   ")[0]  # the second episode's prompt (seed 1)
    expected, _ = env_return("TextArithmetic", 1, ["7"])
    assert returns == [expected]
    assert prompt.strip("'") + "7" == env_return("TextArithmetic", 1, ["7"])[1]


def test_without_masks_every_token_is_offered_grammatical_first_over_two_pages(monkeypatch):
    from lab.play import play
    from lab.text_play import PAGE

    # 47 English tokens: 33 on page 1, the rest on page 2; PageDown then 1 picks the 34th in the order;
    # after that ungrammatical token every token is on offer, in id order: 1 is the end token
    shown = feed_keys(monkeypatch, ["page down", "1", "1"])
    assert play("TextGen", {"action_mask": False}, seed=0) == [0.0]
    env = make_env("TextGen", {"action_mask": False})
    obs, _ = env.reset(seed=0)
    text = env.unwrapped
    probs = next_token_probabilities(text, obs)
    grammatical = text.automaton.mask(prefix_state(text, obs), text.max_length)
    order = sorted(range(text.n_tokens), key=lambda t: (not grammatical[t], -probs[t], t))
    assert set(order[:3]) == {text.vocabulary.index[w] for w in ("the", "a", "every")}
    assert f"'{text.vocabulary.tokens[order[PAGE]]}': reward +0" in shown[-2][1][0]
    assert "return 0, failed (not grammatical)" in shown[-1][1][0]


@pytest.mark.parametrize("env_id", ["TextPositive", "TextArithmetic", "TextDyck", "TextReverse"])
def test_the_prefix_read_from_an_observation_gives_the_envs_own_masks_and_probabilities(env_id):
    """Random episodes of every preset: the state read back from each observation gives the mask the
    env reports and the next-token distribution of the env's own parser state."""
    env = make_env(env_id)
    text = env.unwrapped
    rng = np.random.default_rng(0)
    for seed in range(5):
        obs, info = env.reset(seed=seed)
        done, generated = False, 0
        while not done:
            state = prefix_state(text, obs)
            assert state == text._state
            assert np.array_equal(
                text.automaton.mask(state, text.max_length - generated), info["action_mask"]
            )
            assert np.array_equal(next_token_probabilities(text, obs), text.automaton.next_prob[text._state])
            action = int(rng.choice(np.flatnonzero(info["action_mask"])))
            obs, _, terminated, truncated, info = env.step(action)
            done, generated = terminated or truncated, generated + 1


def test_play_a_preset_that_does_not_exist_or_without_a_display_is_one_line(capsys):
    assert main(["play", "TextNope"]) == 2
    assert "TextNope" in capsys.readouterr().err
    assert main(["play", "TextPositive"]) == 2  # the tests run on SDL's dummy driver: no display
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no display" in err and "lab replay FILE --to out.gif" in err
