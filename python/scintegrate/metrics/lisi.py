"""Local inverse Simpson's index (LISI; Korsunsky et al. 2019, the Harmony paper).

For each cell a Gaussian kernel over its ``3 * perplexity`` nearest neighbours (the cell itself counted
among them but given no weight, as the reference ``lisi`` R package and harmonypy do) has its
bandwidth found by binary search so that the kernel's entropy equals ``log(perplexity)``; LISI is
``1 / sum_b p_b**2`` where ``p_b`` is the kernel weight of label ``b``. iLISI uses the batch, cLISI the
cell type. The binary search runs for all cells at once (numpy), not one cell at a time.

Example
-------
>>> import numpy as np
>>> from scintegrate.metrics import lisi
>>> X = np.random.default_rng(0).normal(size=(300, 2))
>>> batch = np.repeat(["a", "b"], 150)            # fully mixed: LISI close to 2
>>> bool(1.8 < np.median(lisi(X, batch)) <= 2.0)
True
"""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np

from ._checks import MetricWarning, as_codes, as_embedding, warn_nan
from ._graph import resolve_graph


def simpson_index(
    dist: np.ndarray,
    nbr_codes: np.ndarray,
    n_labels: int,
    perplexity: float = 30,
    tol: float = 1e-5,
    max_iter: int = 50,
) -> np.ndarray:
    """Simpson's index ``sum_b p_b**2`` per cell from its neighbours' distances and label codes.

    ``dist`` and ``nbr_codes`` are n x k (self excluded). Cells whose kernel collapses (all weights
    underflow to 0; the reference returns -1 for them) get NaN.
    """
    D = np.asarray(dist, dtype=np.float64)
    n = D.shape[0]
    log_u = np.log(perplexity)
    beta = np.ones(n)
    beta_min = np.full(n, -np.inf)
    beta_max = np.full(n, np.inf)
    H, P = _h_beta(D, beta)
    h_diff = H - log_u
    active = np.abs(h_diff) >= tol
    for _ in range(max_iter):
        if not active.any():
            break
        up = active & (h_diff > 0)  # entropy too high: narrow the kernel (larger beta)
        down = active & ~(h_diff > 0)
        beta_min[up] = beta[up]
        beta[up] = np.where(np.isinf(beta_max[up]), beta[up] * 2, (beta[up] + beta_max[up]) / 2)
        beta_max[down] = beta[down]
        beta[down] = np.where(np.isinf(beta_min[down]), beta[down] / 2, (beta[down] + beta_min[down]) / 2)
        H[active], P[active] = _h_beta(D[active], beta[active])
        h_diff = H - log_u
        active &= np.abs(h_diff) >= tol
    rows = np.repeat(np.arange(n), D.shape[1])
    per_label = np.bincount(rows * n_labels + nbr_codes.ravel(), weights=P.ravel(), minlength=n * n_labels)
    simpson = (per_label.reshape(n, n_labels) ** 2).sum(1)
    simpson[H == 0] = np.nan
    return simpson


def _h_beta(D: np.ndarray, beta: np.ndarray):
    """Entropy and normalised weights of the kernel ``exp(-D * beta)`` for each row."""
    P = np.exp(-D * beta[:, None])
    s = P.sum(1)
    ok = s > 0
    H = np.zeros(D.shape[0])
    H[ok] = np.log(s[ok]) + beta[ok] * (D[ok] * P[ok]).sum(1) / s[ok]
    P[ok] /= s[ok, None]
    P[~ok] = 0.0
    return H, P


def lisi(
    X: Optional[np.ndarray],
    labels,
    *,
    perplexity: float = 30,
    knn=None,
    device=None,
) -> np.ndarray:
    """LISI of every cell for one label vector (batch -> iLISI, cell type -> cLISI).

    ``knn`` is an optional precomputed neighbour graph (see :class:`NeighborGraph`); it must hold at
    least ``3 * perplexity - 1`` neighbours, otherwise the perplexity is lowered to a third of the
    neighbourhood (with a warning). Returns an array of length n (NaN where undefined).
    """
    if X is not None:
        X = as_embedding(X)
    k_needed = int(3 * perplexity) - 1  # 3 * perplexity neighbours counting the cell itself
    graph = resolve_graph(X, knn, k_needed, device=device)
    codes, _ = as_codes(labels, graph.n, "labels")
    k = min(k_needed, graph.k)
    if k < k_needed:
        perplexity = (k + 1) / 3
        warnings.warn(f"only {k} neighbours available; LISI uses perplexity {perplexity:.3g}",
                      MetricWarning, stacklevel=2)
    idx, dist = graph.others(k)
    n_labels = int(codes.max()) + 1
    return 1.0 / simpson_index(dist, codes[idx], n_labels, perplexity=perplexity)


def median_lisi(values: np.ndarray, metric: str) -> float:
    """Median of per-cell LISI values ignoring NaN (NaN with a warning when none is defined)."""
    values = np.asarray(values, dtype=float)
    if not np.isfinite(values).any():
        return warn_nan(metric, "no cell has a defined LISI (kernel collapsed everywhere)")
    return float(np.nanmedian(values))
