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


def _check_iterations(tol: float, max_iterations: int) -> None:
    if not tol >= 0:
        raise PlanningError(f"tol must be a number >= 0; got {tol}")
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) or max_iterations < 1:
        raise PlanningError(f"max_iterations must be a whole number >= 1; got {max_iterations!r}")


def value_iteration(
    model: TransitionModel, gamma: float = 0.99, tol: float = 1e-12, max_iterations: int = 100_000
) -> Plan:
    """Optimal values by repeated Bellman optimality backups until no value moves more than ``tol``.

    With ``gamma=1`` this converges when the optimal return is finite from every state; a state that
    can never end the episode with negative rewards on the way, or a loop that collects positive
    rewards forever, has none, and it stops with a :class:`PlanningError` (early, once the changes
    stop shrinking, or after ``max_iterations``).
    The policy takes the lowest action index among ties, except at ``gamma=1``, where among the
    optimal actions it takes the one that ends the episode soonest (:func:`ending_greedy`).
    """
    gamma = _check_gamma(gamma)
    _check_iterations(tol, max_iterations)
    V = np.zeros(model.n_states)
    # Undiscounted, a finite optimum's changes shrink over any stretch of many sweeps; an infinite
    # one's (a loop that costs or pays forever) stay as they are: stop early on those
    window, watched = 10 * (model.n_states + 1), np.inf
    for iteration in range(1, max_iterations + 1):
        Q = q_values(model, V, gamma)
        V_new = Q.max(axis=1)
        delta = np.max(np.abs(V_new - V))
        V = V_new
        if delta <= tol:
            policy = ending_greedy(model, Q, V, tol) if gamma == 1.0 else Q.argmax(axis=1)
            return Plan(V=V, Q=Q, policy=policy, iterations=iteration)
        if gamma == 1.0 and iteration % window == 0:
            if delta >= watched:
                break
            watched = delta
    why = (
        "with gamma=1 the optimal return may not be finite (a state that never ends the episode, or a "
        "loop whose rewards are positive): use gamma < 1"
        if gamma == 1.0
        else "raise max_iterations or tol"
    )
    raise PlanningError(
        f"value iteration did not converge in {iteration} iterations (last change {delta:.3g}); {why}"
    )


def ending_greedy(model: TransitionModel, Q: np.ndarray, V: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """A greedy policy that ends the episode: among each state's optimal actions, the one with the
    fewest expected steps to a terminal state.

    Undiscounted, many actions can tie: where steps cost nothing, bumping into a wall keeps the
    value as well as walking to the goal does, and the lowest-index tie can loop forever. States from
    which no optimal action ends the episode keep the lowest-index optimal action.
    """
    n, a = Q.shape
    scale = np.maximum(1.0, np.abs(V))[:, None]
    allowed = (Q - V[:, None] >= -(tol + 1e-9) * scale) & ~model.terminal[:, None]
    # Almost-sure reachability: drop actions that may lead where the end cannot be reached, until
    # every allowed action keeps the episode able to end.
    while True:
        step = (model.P * allowed[:, :, None]).sum(axis=1) > 0
        can_end = reachable_mask(step.T, model.terminal)  # walked backward from the terminal states
        safe = allowed & ~(model.P[:, :, ~can_end] > 0).any(axis=2)
        if np.array_equal(safe, allowed):
            break
        allowed = safe
    ending = can_end & ~model.terminal
    P = model.P.reshape(n * a, n)
    steps = np.zeros(n)
    for _ in range(1_000_000):  # expected steps to the end, by value iteration on unit costs
        D = 1.0 + (P @ steps).reshape(n, a)
        D[~allowed] = np.inf
        new = np.where(ending, D.min(axis=1), 0.0)
        if np.max(np.abs(new - steps)) <= 1e-9 * max(1.0, new.max()):
            break
        steps = new
    return np.where(ending, D.argmin(axis=1), Q.argmax(axis=1))


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

    ``policy`` is one action per state, or a ``[S, A]`` matrix of action probabilities. Undiscounted
    (``gamma=1``), a state from which the policy may never end the episode is worth what its endless
    rewards add up to: ``-inf`` when they cost, ``+inf`` when they pay, and a finite value when the
    loops it can fall into give nothing (a :class:`PlanningError` when costs and payments could
    both go on forever).
    """
    gamma = _check_gamma(gamma)
    pi = _policy_matrix(model, policy)
    P_pi = np.einsum("sa,sat->st", pi, model.P)
    R_pi = (pi * model.R).sum(axis=1)
    V = np.zeros(model.n_states)
    solve = ~model.terminal
    if gamma == 1.0:
        solve = _set_endless_values(model, P_pi, R_pi, V)
    if solve.any():
        system = np.eye(int(solve.sum())) - gamma * P_pi[np.ix_(solve, solve)]
        # the states left out are worth V there (0 at terminal and zero-reward loops): the rest of the
        # chain leaves the solved states with certainty, so the system is regular
        boundary = np.where(np.isfinite(V), V, 0.0)[~solve]  # no solved state reaches an infinite one
        V[solve] = np.linalg.solve(system, R_pi[solve] + gamma * P_pi[np.ix_(solve, ~solve)] @ boundary)
    return V


def _set_endless_values(
    model: TransitionModel, P_pi: np.ndarray, R_pi: np.ndarray, V: np.ndarray
) -> np.ndarray:
    """Fill ``V`` where the chain ``P_pi``'s undiscounted return is not found by a linear solve (the
    states in or bound for endless loops), and return the mask of the states left to that solve:
    those from which the episode ends, or falls into loops that give nothing, with certainty."""
    step = P_pi > 0
    live = ~model.terminal
    endless = live & ~reachable_mask(step.T, model.terminal)  # from here the episode never ends
    paying = endless & (R_pi != 0)
    # endless states that never meet a reward again are worth 0
    zero = endless & ~reachable_mask(step.T & endless[None, :] & endless[:, None], paying)
    # endless states that can never reach such a zero loop collect rewards forever
    forever = endless & ~reachable_mask(step.T, zero)
    costs = reachable_mask(step.T, forever & (R_pi < 0)) & live
    pays = reachable_mask(step.T, forever & (R_pi > 0)) & live
    if (costs & pays).any():
        raise PlanningError(
            "this policy may collect both costs and payments forever (gamma=1), so its value has no "
            "limit: use gamma < 1"
        )
    V[costs], V[pays] = -np.inf, np.inf
    return live & ~zero & ~costs & ~pays


def reachable_states(model: TransitionModel, policy: np.ndarray) -> np.ndarray:
    """A mask of the states the policy can visit from the start distribution."""
    pi = _policy_matrix(model, policy)
    return reachable_mask(np.einsum("sa,sat->st", pi, model.P) > 0, model.initial > 0)


def policy_start_value(model: TransitionModel, policy: np.ndarray, gamma: float = 0.99) -> float:
    """The exact expected return of a policy from the start distribution.

    Only the states the policy can reach from the start matter (at ``gamma=1``, a loop that costs
    forever in a state it never visits leaves this value finite).
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
    V, starts = policy_evaluation(sub, pi[index], gamma), sub.initial > 0
    return float(sub.initial[starts] @ V[starts])  # not 0 * inf where a state is not a start


def policy_iteration(model: TransitionModel, gamma: float = 0.99, max_iterations: int = 1_000) -> Plan:
    """Optimal values and policy by alternating exact evaluation and greedy improvement.

    Starts from the uniform random policy and stops when the greedy policy no longer changes
    (ties broken toward the current action, so it always terminates). With ``gamma=1``, a policy
    on the way whose return is not finite somewhere (a state that never ends the episode, or a loop
    whose rewards are positive) stops it with a :class:`PlanningError`, as value iteration stops.
    """
    gamma = _check_gamma(gamma)
    n, a = model.R.shape
    policy: np.ndarray = np.full((n, a), 1.0 / a)
    current = None
    for iteration in range(1, max_iterations + 1):
        V = policy_evaluation(model, policy, gamma)
        if not np.isfinite(V).all():  # only at gamma=1; the next backup would be 0 * inf = nan
            state = int(np.flatnonzero(~np.isfinite(V))[0])
            raise PlanningError(
                f"policy iteration met a policy worth {V[state]} from state {state} (gamma=1): the optimal "
                "return may not be finite (a state that never ends the episode, or a loop whose rewards "
                "are positive): use gamma < 1"
            )
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
