"""Exact planning on a known MDP: value iteration, policy iteration, exact policy evaluation.

These are the lab's ground truth: a learning agent is "optimal" when its greedy policy's exact
value matches what :func:`value_iteration` finds. They work on any :class:`TransitionModel`
(``P[S, A, S']``, ``R[S, A]``, terminal flags, start distribution): the grid worlds'
``transition_model()``, or gymnasium's toy-text tables through :func:`model_from_toy_text`.

Terminal states are worth 0: the episode ends there, whatever the table says happens next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from envs.grid.model import TransitionModel, reachable_mask


class PlanningError(ValueError):
    """A planning problem with no finite answer, or arguments that make none."""


@dataclass(frozen=True)
class Plan:
    """The result of planning: optimal values ``V[S]`` and ``Q[S, A]``, a greedy ``policy[S]``."""

    V: np.ndarray
    Q: np.ndarray
    policy: np.ndarray
    iterations: int

    def start_value(self, model: TransitionModel) -> float:
        """The expected optimal return from the start distribution."""
        return float(model.initial @ self.V)


def _check_gamma(gamma: float) -> float:
    if not 0.0 <= gamma <= 1.0:
        raise PlanningError(f"gamma must lie in [0, 1]; got {gamma}")
    return float(gamma)


def q_values(model: TransitionModel, V: np.ndarray, gamma: float) -> np.ndarray:
    """One Bellman backup: ``Q[s, a] = R[s, a] + gamma * sum_s' P[s, a, s'] V[s']``, 0 at terminal states."""
    n, a = model.R.shape
    V_next = np.where(model.terminal, 0.0, V)
    Q = model.R + gamma * (model.P.reshape(n * a, n) @ V_next).reshape(n, a)
    Q[model.terminal] = 0.0
    return Q


def value_iteration(
    model: TransitionModel, gamma: float = 0.99, tol: float = 1e-12, max_iterations: int = 100_000
) -> Plan:
    """Optimal values by repeated Bellman optimality backups until no value moves more than ``tol``.

    With ``gamma=1`` this converges when every state can reach a terminal state (an episodic task);
    otherwise it stops after ``max_iterations`` with a :class:`PlanningError`.
    """
    gamma = _check_gamma(gamma)
    V = np.zeros(model.n_states)
    for iteration in range(1, max_iterations + 1):
        Q = q_values(model, V, gamma)
        V_new = Q.max(axis=1)
        delta = np.max(np.abs(V_new - V))
        V = V_new
        if delta <= tol:
            return Plan(V=V, Q=Q, policy=Q.argmax(axis=1), iterations=iteration)
    raise PlanningError(
        f"value iteration did not converge in {max_iterations} iterations (last change {delta:.3g}); "
        "with gamma=1 some state may never reach a terminal state: use gamma < 1"
    )


def _policy_matrix(model: TransitionModel, policy: np.ndarray) -> np.ndarray:
    """A policy as ``pi[S, A]`` probabilities, from actions ``[S]`` or probabilities ``[S, A]``."""
    policy = np.asarray(policy)
    n, a = model.R.shape
    if policy.shape == (n,):
        if policy.dtype.kind not in "iu" or policy.min() < 0 or policy.max() >= a:
            raise PlanningError(f"a deterministic policy holds one action in [0, {a - 1}] per state")
        pi = np.zeros((n, a))
        pi[np.arange(n), policy] = 1.0
        return pi
    if policy.shape == (n, a):
        if (policy < 0).any() or not np.allclose(policy.sum(axis=1), 1.0):
            raise PlanningError("a stochastic policy's rows must be probabilities summing to 1")
        return policy.astype(np.float64)
    raise PlanningError(
        f"a policy has shape ({n},) (actions) or ({n}, {a}) (probabilities); got {policy.shape}"
    )


def policy_evaluation(model: TransitionModel, policy: np.ndarray, gamma: float = 0.99) -> np.ndarray:
    """The exact value ``V[S]`` of a policy, by solving the linear Bellman equations.

    ``policy`` is one action per state, or a ``[S, A]`` matrix of action probabilities.
    """
    gamma = _check_gamma(gamma)
    pi = _policy_matrix(model, policy)
    live = ~model.terminal
    P_pi = np.einsum("sa,sat->st", pi, model.P)[np.ix_(live, live)]
    R_pi = (pi * model.R).sum(axis=1)[live]
    V = np.zeros(model.n_states)
    system = np.eye(int(live.sum())) - gamma * P_pi
    try:
        V[live] = np.linalg.solve(system, R_pi)
    except np.linalg.LinAlgError:
        raise PlanningError(
            "this policy never reaches a terminal state from some states, so its undiscounted value is "
            "not finite: use gamma < 1"
        ) from None
    if not np.isfinite(V).all() or np.linalg.cond(system) > 1e12:
        raise PlanningError(
            "this policy's value is not finite (it never terminates from some states): use gamma < 1"
        )
    return V


def reachable_states(model: TransitionModel, policy: np.ndarray) -> np.ndarray:
    """A mask of the states the policy can visit from the start distribution."""
    pi = _policy_matrix(model, policy)
    return reachable_mask(np.einsum("sa,sat->st", pi, model.P) > 0, model.initial > 0)


def policy_start_value(model: TransitionModel, policy: np.ndarray, gamma: float = 0.99) -> float:
    """The exact expected return of a policy from the start distribution.

    Only the states the policy can reach from the start matter, so at ``gamma=1`` a greedy policy
    that loops forever in some state it never visits still has a finite value here (where
    :func:`policy_evaluation`, which values every state, would raise).
    """
    gamma = _check_gamma(gamma)
    pi = _policy_matrix(model, policy)
    keep = reachable_states(model, pi)
    index = np.flatnonzero(keep)
    sub = TransitionModel(
        P=model.P[np.ix_(index, np.arange(model.n_actions), index)],
        R=model.R[index],
        terminal=model.terminal[index],
        initial=model.initial[index],
    )
    return float(sub.initial @ policy_evaluation(sub, pi[index], gamma))


def policy_iteration(model: TransitionModel, gamma: float = 0.99, max_iterations: int = 1_000) -> Plan:
    """Optimal values and policy by alternating exact evaluation and greedy improvement.

    Starts from the uniform random policy and stops when the greedy policy no longer changes
    (ties broken toward the current action, so it always terminates).
    """
    gamma = _check_gamma(gamma)
    n, a = model.R.shape
    policy: np.ndarray = np.full((n, a), 1.0 / a)
    current = None
    for iteration in range(1, max_iterations + 1):
        V = policy_evaluation(model, policy, gamma)
        Q = q_values(model, V, gamma)
        greedy = Q.argmax(axis=1)
        if current is not None:
            keep = np.isclose(Q[np.arange(n), current], Q.max(axis=1), rtol=0.0, atol=1e-12)
            greedy = np.where(keep, current, greedy)
            if np.array_equal(greedy, current):
                return Plan(V=V, Q=Q, policy=current, iterations=iteration)
        current = greedy
        policy = current
    raise PlanningError(f"policy iteration did not settle in {max_iterations} iterations")


def greedy_policy(Q: np.ndarray) -> np.ndarray:
    """The greedy action of every state (lowest action index among ties)."""
    return np.asarray(Q).argmax(axis=1)


def model_from_toy_text(
    P: Mapping[int, Mapping[int, Sequence[tuple[float, int, float, bool]]]],
    initial: np.ndarray | None = None,
) -> TransitionModel:
    """A :class:`TransitionModel` from a gymnasium toy-text table ``env.unwrapped.P``.

    ``P[s][a]`` lists ``(probability, next_state, reward, terminated)``; a state is terminal when
    some transition into it terminates (FrozenLake's holes and goal, for example).
    """
    n = len(P)
    a = len(P[0])
    dense = np.zeros((n, a, n))
    R = np.zeros((n, a))
    terminal = np.zeros(n, dtype=bool)
    for s, by_action in P.items():
        for act, outcomes in by_action.items():
            for prob, s2, reward, done in outcomes:
                dense[s, act, s2] += prob
                R[s, act] += prob * reward
                terminal[s2] |= bool(done)
    if initial is None:
        initial = np.full(n, 1.0 / n)
    return TransitionModel(P=dense, R=R, terminal=terminal, initial=np.asarray(initial, dtype=np.float64))
