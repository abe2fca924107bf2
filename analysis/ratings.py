"""Bradley–Terry with ties (Davidson 1970), fitted by Newton's method for many rounds at once.

P(i beats j) = π_i / D, P(tie) = ν √(π_i π_j) / D, D = π_i + π_j + ν √(π_i π_j), with
θ = log π and φ = log ν. The log-likelihood is concave in (θ, φ) (linear terms minus a
log-sum-exp of affine ones), so damped Newton from 0 converges; a weak Gaussian prior on θ
(precision `prior`, default sd 10 on the log scale, also on φ) keeps estimates finite under
complete separation (or all ties) and fixes each connected component's mean at 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

NO_TIES_LOG_NU = -50.0


@dataclass(frozen=True)
class DavidsonFit:
    """Log-strengths `theta` (rounds, items) and log tie parameter `log_nu` (rounds,)."""

    theta: np.ndarray
    log_nu: np.ndarray
    log_likelihood: np.ndarray


def davidson_log_likelihood(
    theta: np.ndarray,
    log_nu: np.ndarray,
    *,
    i: np.ndarray,
    j: np.ndarray,
    wins_i: np.ndarray,
    wins_j: np.ndarray,
    ties: np.ndarray,
    prior: float = 0.01,
) -> np.ndarray:
    """Penalised log-likelihood per round; `theta` (R, m), counts (R, E) over edges (i, j)."""
    ti, tj = theta[:, i], theta[:, j]
    c = log_nu[:, None] + (ti + tj) / 2
    log_d = np.logaddexp(np.logaddexp(ti, tj), c)
    n = wins_i + wins_j + ties
    ll = wins_i * ti + wins_j * tj + np.where(ties > 0, ties * c, 0.0) - n * log_d
    total: np.ndarray = ll.sum(axis=1) - prior / 2 * ((theta**2).sum(axis=1) + log_nu**2)
    return total


def fit_davidson(
    *,
    n_items: int,
    i: np.ndarray,
    j: np.ndarray,
    wins_i: np.ndarray,
    wins_j: np.ndarray,
    ties: np.ndarray,
    prior: float = 0.01,
    max_iter: int = 100,
    tol: float = 1e-9,
) -> DavidsonFit:
    """Maximum (penalised) likelihood for each round; a round without ties gets ν = 0."""
    wins_i, wins_j, ties = (
        np.atleast_2d(np.asarray(a, dtype=float)) for a in (wins_i, wins_j, ties)
    )
    rounds, m = wins_i.shape[0], n_items
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    has_ties = ties.sum(axis=1) > 0
    theta = np.zeros((rounds, m))
    log_nu = np.where(has_ties, 0.0, NO_TIES_LOG_NU)
    n = wins_i + wins_j + ties
    likelihood = partial(
        davidson_log_likelihood, i=i, j=j, wins_i=wins_i, wins_j=wins_j, ties=ties, prior=prior
    )
    ll = likelihood(theta, log_nu)
    phi = m  # index of log ν in the parameter vector
    for _ in range(max_iter):
        grad, hess = _gradient_hessian(
            theta, log_nu, n=n, i=i, j=j, wins_i=wins_i, wins_j=wins_j, ties=ties, prior=prior
        )
        # Rounds without ties keep φ fixed: an identity row leaves its step at 0.
        grad[~has_ties, phi] = 0.0
        hess[~has_ties, phi, :] = 0.0
        hess[~has_ties, :, phi] = 0.0
        hess[~has_ties, phi, phi] = -1.0
        step = np.linalg.solve(-hess, grad[..., None])[..., 0]
        scale = np.ones(rounds)
        for _ in range(30):  # backtrack where a full step lowers the likelihood
            new_theta = theta + scale[:, None] * step[:, :m]
            new_nu = log_nu + scale * step[:, phi]
            new_ll = likelihood(new_theta, new_nu)
            worse = new_ll < ll - 1e-12
            if not worse.any():
                break
            scale = np.where(worse, scale / 2, scale)
        theta, log_nu, ll = new_theta, new_nu, new_ll
        if np.max(np.abs(scale[:, None] * step)) < tol:
            break
    return DavidsonFit(theta=theta, log_nu=log_nu, log_likelihood=ll)


def _gradient_hessian(
    theta: np.ndarray,
    log_nu: np.ndarray,
    *,
    n: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    wins_i: np.ndarray,
    wins_j: np.ndarray,
    ties: np.ndarray,
    prior: float,
) -> tuple[np.ndarray, np.ndarray]:
    rounds, m = theta.shape
    ti, tj = theta[:, i], theta[:, j]
    c = log_nu[:, None] + (ti + tj) / 2
    log_d = np.logaddexp(np.logaddexp(ti, tj), c)
    p_i, p_j, p_t = np.exp(ti - log_d), np.exp(tj - log_d), np.exp(c - log_d)
    # log D is the log-partition of the outcome statistic s: i-win (1,0,0), j-win (0,1,0),
    # tie (½,½,1) in local coordinates (θ_i, θ_j, φ); its Hessian is Cov(s).
    mean = np.stack([p_i + p_t / 2, p_j + p_t / 2, p_t], axis=-1)
    local_grad = np.stack([wins_i + ties / 2, wins_j + ties / 2, ties], axis=-1)
    local_grad = local_grad - n[..., None] * mean
    second = np.empty(p_i.shape + (3, 3))
    second[..., 0, 0] = p_i + p_t / 4
    second[..., 1, 1] = p_j + p_t / 4
    second[..., 2, 2] = p_t
    second[..., 0, 1] = second[..., 1, 0] = p_t / 4
    second[..., 0, 2] = second[..., 2, 0] = p_t / 2
    second[..., 1, 2] = second[..., 2, 1] = p_t / 2
    cov = second - mean[..., :, None] * mean[..., None, :]
    local_hess = -n[..., None, None] * cov
    # Scatter the per-edge terms into global coordinates, as flat indices per round.
    size = m + 1
    index = np.stack([i, j, np.full_like(i, m)], axis=-1)  # (E, 3)
    round_base = np.arange(rounds)[:, None, None]
    grad = np.zeros(rounds * size)
    np.add.at(grad, (round_base * size + index[None]).ravel(), local_grad.ravel())
    hess = np.zeros(rounds * size * size)
    cell = index[:, :, None] * size + index[:, None, :]  # (E, 3, 3)
    np.add.at(hess, (round_base[..., None] * size * size + cell[None]).ravel(), local_hess.ravel())
    grad, hess = grad.reshape(rounds, size), hess.reshape(rounds, size, size)
    grad[:, :m] -= prior * theta
    grad[:, m] -= prior * log_nu
    hess[:, np.arange(m + 1), np.arange(m + 1)] -= prior
    return grad, hess


def components(*, n_items: int, i: np.ndarray, j: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Connected component of each item in the graph of compared pairs (weight > 0)."""
    keep = np.asarray(weight) > 0
    graph = coo_matrix(
        (np.ones(int(keep.sum())), (np.asarray(i)[keep], np.asarray(j)[keep])),
        shape=(n_items, n_items),
    )
    labels: np.ndarray = connected_components(graph, directed=False)[1]
    return labels


def rank_by_interval(lo: np.ndarray, hi: np.ndarray, component: np.ndarray) -> np.ndarray:
    """1 + the number of items in the same component whose interval lies wholly above."""
    above = (lo[None, :] > hi[:, None]) & (component[None, :] == component[:, None])
    ranks: np.ndarray = 1 + above.sum(axis=1)
    return ranks


def bradley_terry_table(
    *,
    items: list[str],
    i: np.ndarray,
    j: np.ndarray,
    wins_i: np.ndarray,
    wins_j: np.ndarray,
    ties: np.ndarray,
    confidence: float = 0.95,
    prior: float = 0.01,
) -> pd.DataFrame:
    """Ratings from counts whose row 0 is the data and rows 1.. are bootstrap rounds."""
    fit = fit_davidson(
        n_items=len(items), i=i, j=j, wins_i=wins_i, wins_j=wins_j, ties=ties, prior=prior
    )
    point, rounds = fit.theta[0], fit.theta[1:]
    tail = 100 * (1 - confidence) / 2
    if len(rounds):
        lo, hi = np.percentile(rounds, [tail, 100 - tail], axis=0)
    else:
        lo = hi = np.full(len(items), np.nan)
    total = np.atleast_2d(wins_i)[0] + np.atleast_2d(wins_j)[0] + np.atleast_2d(ties)[0]
    component = components(n_items=len(items), i=i, j=j, weight=total)
    table = pd.DataFrame(
        {
            "variant": items,
            "strength": point,
            "strength_lo": lo,
            "strength_hi": hi,
            "component": component,
            "rank": rank_by_interval(lo, hi, component),
        }
    )
    table.attrs["tie_parameter"] = float(np.exp(fit.log_nu[0]))
    return table.sort_values(["component", "rank", "strength"], ascending=[True, True, False])
