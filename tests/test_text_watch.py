"""``lab watch`` on a text agent: under the frame, the policy's top next tokens (a PPO's probabilities,
a DQN's Q-values) labelled with the token strings, beside the language's exact next-token probability."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from lab.cli import main
from lab.panels import BACKGROUND, BAR, CHOSEN, REFERENCE, agent_panel, ranked_chart, top_k
from lab.train import load_model
from lab.viewer import ViewFrame


def tiny_model(folder, algorithm: str, **hyperparameters) -> str:
    """A model file of ``algorithm`` on lab/TextPositive-v0 after a few dozen steps of learning."""
    from agents import AGENTS
    from lab.core.environments import make_env

    agent = AGENTS[algorithm](
        make_env("TextPositive"), seed=0, policy_kwargs={"net_arch": [16]}, **hyperparameters
    )
    agent.learn(64)
    path = folder / f"{algorithm}.npz"
    agent.save(path)
    return str(path)


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("models"), "ppo", n_steps=32, batch_size=32, n_epochs=1)


@pytest.fixture(scope="module")
def dqn_run(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("models"), "dqn", learning_starts=32)


def agent_and_view(run, words: list[str]):
    """The run's agent, its env (as lab watch makes it) and the view after ``words`` were written."""
    from lab.targets import make_target_env, resolve_target

    target = resolve_target(run, None)
    env = make_target_env(target, render_mode="rgb_array")
    agent = load_model(target.model_path, env=env)
    obs, _ = env.reset(seed=0)
    for word in words:
        obs, *_ = env.step(env.unwrapped.vocabulary.index[word])
    return agent, env, ViewFrame(env.render(), len(words), obs=obs)


def bar_lengths(chart: np.ndarray, colours) -> list[int]:
    """Per chart row (top to bottom), the length in pixels of the bar drawn in one of ``colours``."""
    from lab.panels import RANK_ROW, TEXT_ROWS

    lengths = []
    for top in range(TEXT_ROWS + 4, chart.shape[0] - RANK_ROW + 1, RANK_ROW):
        middle = chart[top + RANK_ROW // 2]
        lengths.append(int(np.isin(middle.reshape(-1, 1, 3), np.array(colours)).all(-1).any(-1).sum()))
    return lengths


def test_the_panel_ranks_the_policys_tokens_beside_the_languages_exact_probability(ppo_run):
    agent, env, view = agent_and_view(ppo_run, ["the"])
    text = env.unwrapped
    panel = agent_panel(agent, env)
    probs = agent.action_probabilities(view.obs)
    language = text.automaton.next_prob[text._state]  # the env's own parser state after 'the'
    best = top_k(probs, 8)
    assert list(best) == sorted(range(text.n_tokens), key=lambda t: (-probs[t], t))[:8]
    tokens = text.vocabulary.tokens
    top3 = ", ".join(f"{tokens[t]} {probs[t]:.3f}" for t in best[:3])
    assert panel.describe(view) == f"policy p, top 3: {top3}   V {agent.value(view.obs):.3g}"

    chart = panel.draw(view.frame, view)[view.frame.shape[0] :]
    policy = bar_lengths(chart, [CHOSEN, BAR])
    reference = bar_lengths(chart, [REFERENCE])
    chosen = bar_lengths(chart, [CHOSEN])
    assert chosen[0] == policy[0] and not any(chosen[1:])  # the greedy token's bar is highlighted
    # one scale for both columns: pixels per unit of probability are the same for every bar
    scale = max(probs[best].max(), language[best].max())
    full = max(policy + reference)
    assert policy == pytest.approx([max(1, full * probs[t] / scale) for t in best], abs=1)
    assert reference == pytest.approx([max(1, full * language[t] / scale) for t in best], abs=1)


def test_a_dqn_shows_its_q_values_ranked(dqn_run):
    agent, env, view = agent_and_view(dqn_run, [])
    panel = agent_panel(agent, env)
    q = agent.q_values(view.obs)
    tokens = env.unwrapped.vocabulary.tokens
    order = sorted(range(len(q)), key=lambda t: (-q[t], t))[:3]
    described = panel.describe(view)
    assert described.startswith("Q-value, top 3: " + tokens[order[0]] + " ")
    assert [part.rsplit(" ", 1)[0] for part in described.split(": ", 1)[1].split(", ")] == [
        tokens[t] for t in order
    ]
    chart = panel.draw(view.frame, view)[view.frame.shape[0] :]
    lengths = bar_lengths(chart, [CHOSEN, BAR])
    assert lengths == sorted(lengths, reverse=True) and len(lengths) == 8
    last = panel.draw(view.frame, ViewFrame(view.frame, 1, obs=None))  # an episode's end: same size, empty
    assert last.shape[0] == view.frame.shape[0] + chart.shape[0]
    assert (last[view.frame.shape[0] :] == BACKGROUND).all()


def test_lab_watch_writes_a_video_with_the_ranked_tokens(ppo_run, tmp_path):
    out = tmp_path / "watch.gif"
    assert main(["watch", str(ppo_run), "--to", str(out), "--hud"]) == 0
    frames = iio.imread(out)
    below = frames[:, 440:]  # under the env's 440-pixel frame: the chart, then the HUD
    assert all((f == CHOSEN).all(-1).any() for f in below[:-1])  # every frame but the last has a choice
    assert any((f == REFERENCE).all(-1).any() for f in below)  # and the language's probabilities


def test_the_hud_names_the_tokens_the_agent_wrote(ppo_run):
    from lab.viewer import episode_stream

    agent, env, _ = agent_and_view(ppo_run, [])
    views = list(episode_stream(env, lambda obs, info: int(agent.predict(obs)[0]), episodes=1))
    tokens = env.unwrapped.vocabulary.tokens
    assert all(v.action in tokens for v in views[1:])
    assert "".join(v.action for v in views[1:]) == "".join(
        tokens[t] for t in env.unwrapped._tokens if t < len(tokens)
    )


def test_ranked_chart_orders_ties_by_index_and_checks_its_labels():
    chart = ranked_chart(np.array([0.1, 0.4, 0.25, 0.25]), ["a", "b", "c", "d"], 400, k=3)
    lengths = bar_lengths(chart, [CHOSEN, BAR])
    assert len(lengths) == 3 and lengths[0] > lengths[1] == lengths[2]
    assert list(top_k(np.array([0.1, 0.4, 0.25, 0.25]), 3)) == [1, 2, 3]
    with pytest.raises(ValueError, match="4 values but 3 labels"):
        ranked_chart(np.zeros(4), ["a", "b", "c"], 400)


def test_watch_on_an_env_that_does_not_exist_is_one_line(ppo_run, tmp_path, capsys):
    assert main(["watch", str(ppo_run), "--env", "TextNope", "--to", str(tmp_path / "x.gif")]) == 2
    assert "TextNope" in capsys.readouterr().err


def test_an_env_with_many_actions_gets_the_ranked_chart_without_a_reference():
    import gymnasium as gym

    class TwentyActions(gym.ActionWrapper):
        def __init__(self, env):
            super().__init__(env)
            self.action_space = gym.spaces.Discrete(20)

        def action(self, action):
            return int(action) % 2

    class Policy:  # what agent_panel reads from a policy-gradient agent
        def action_probabilities(self, obs):
            return np.arange(20) / np.arange(20).sum()

        def value(self, obs):
            return 0.5

    env = TwentyActions(gym.make("CartPole-v1", render_mode="rgb_array"))
    obs, _ = env.reset(seed=0)
    frame = env.render()
    view = ViewFrame(frame, 0, obs=obs)
    panel = agent_panel(Policy(), env)
    assert panel.describe(view) == "policy p, top 3: 19 0.100, 18 0.095, 17 0.089   V 0.5"
    chart = panel.draw(frame, view)[frame.shape[0] :]
    assert not (chart == REFERENCE).all(-1).any()  # no language here: one column of bars
    assert bar_lengths(chart, [CHOSEN, BAR]) == sorted(bar_lengths(chart, [CHOSEN, BAR]), reverse=True)
