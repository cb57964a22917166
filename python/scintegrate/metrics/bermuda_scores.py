"""BERMUDA's three evaluation scores (Wang et al., Genome Biology 2019, Methods and ``evaluate.py``).

- :func:`divergence_score` — for each pair of batches, the cells of the cell types both batches contain
  ("shared populations"; at least ``min_cells`` = 30 in each batch), the k-NN estimate (k = 30) of the
  Kullback-Leibler divergence of Wang, Kulkarni & Verdú (2009) in both directions, clipped at 0; the
  score is the mean of the two directions' means over pairs. Lower = shared types better merged.
- :func:`entropy_score` — for each pair of batches, the cells of the types *not* shared by the pair;
  for each such cell the entropy (natural log) of the batch labels of its 100 nearest cells (itself
  included, among all cells); mean per pair, then over pairs. Lower = batch-specific types kept apart.
  NaN when every pair shares all its types (BERMUDA stores -1 there; a NaN cannot be mistaken for a score).
- :func:`silhouette_score` — mean cell-type silhouette with cosine distance on the embedding, reduced to
  20 PCs first when it has more (``evaluate_scores(..., sil_dim=20, sil_dist='cosine')`` as called in
  BERMUDA's ``main_*.py``). Higher = types better separated.

Divergence and entropy are computed on 2-D coordinates: an embedding with more than 2 dimensions is
first projected with BERMUDA's UMAP (:func:`bermuda_umap`: PCA to 50 dims if larger, 30 neighbours,
``min_dist=0.1``, cosine metric), seeded. The silhouette uses the embedding itself, as BERMUDA's code does.

Example
-------
>>> import numpy as np
>>> from scintegrate.metrics import divergence_score
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 2)); batch = np.repeat(["a", "b"], 100); labels = np.repeat("t", 200)
>>> bool(divergence_score(X, batch, labels) < 0.2)   # same distribution: divergence near 0
True
"""

from __future__ import annotations

import warnings
from itertools import combinations

import numpy as np

from ._checks import as_codes, as_embedding, warn_nan
from ._silhouette import group_distance_sums, silhouette_from_sums


def bermuda_umap(X, *, seed: int = 0, n_neighbors: int = 30, min_dist: float = 0.1,
                 metric: str = "cosine", pca_dim: int = 50) -> np.ndarray:
    """BERMUDA's ``cal_UMAP``: PCA to ``pca_dim`` if larger, then a seeded 2-D UMAP."""
    import umap
    from sklearn.decomposition import PCA

    X = as_embedding(X)
    if X.shape[1] > pca_dim:
        X = PCA(n_components=pca_dim, random_state=seed).fit_transform(X)
    reducer = umap.UMAP(n_neighbors=min(n_neighbors, X.shape[0] - 1), min_dist=min_dist, n_components=2,
                        metric=metric, random_state=seed, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return reducer.fit_transform(X).astype(np.float64)


def to_2d(X, seed: int = 0) -> np.ndarray:
    """``X`` itself when it has at most 2 dimensions, else :func:`bermuda_umap` of it."""
    X = as_embedding(X)
    return X if X.shape[1] <= 2 else bermuda_umap(X, seed=seed)


def knn_kl_divergence(P: np.ndarray, Q: np.ndarray, k: int = 30) -> float:
    """Wang-Kulkarni-Verdú k-NN estimate of KL(P || Q) from samples (rows) of P and Q.

    ``d/n * sum_i log(nu_k(i) / rho_k(i)) + log(m / (n - 1))`` with ``rho_k`` the distance from
    ``P_i`` to its k-th nearest other point of P and ``nu_k`` to its k-th nearest point of Q.
    Distances are floored at 1e-12 so that duplicated cells do not give infinities.
    """
    from scipy.spatial import cKDTree

    n, d = P.shape
    m = Q.shape[0]
    rho = cKDTree(P).query(P, k=k + 1)[0][:, -1]  # the point itself is the first hit
    nu = cKDTree(Q).query(P, k=k)[0]
    nu = nu if nu.ndim == 1 else nu[:, -1]
    rho, nu = np.maximum(rho, 1e-12), np.maximum(nu, 1e-12)
    return float(d / n * np.log(nu / rho).sum() + np.log(m / (n - 1)))


def _pairs(batch, labels, n):
    """Per pair of batches: masks of the cells of shared types in each batch, and of the specific cells."""
    bcodes, _ = as_codes(batch, n, "batch")
    lcodes, _ = as_codes(labels, n, "labels")
    for b1, b2 in combinations(np.unique(bcodes), 2):
        in1, in2 = bcodes == b1, bcodes == b2
        shared = np.isin(lcodes, np.intersect1d(lcodes[in1], lcodes[in2]))
        yield in1 & shared, in2 & shared, (in1 | in2) & ~shared


def divergence_score(X, batch, labels, *, k: int = 30, min_cells: int = 30, seed: int = 0) -> float:
    """BERMUDA's divergence score (see module docstring); NaN when no pair shares enough cells."""
    X2 = to_2d(X, seed)
    if np.unique(as_codes(batch, X2.shape[0], "batch")[0]).size < 2:
        return warn_nan("divergence_score", "only one batch; there is no pair of batches to compare")
    pq, qp = [], []
    for m1, m2, _ in _pairs(batch, labels, X2.shape[0]):
        if m1.sum() >= min_cells and m2.sum() >= min_cells:
            pq.append(max(knn_kl_divergence(X2[m1], X2[m2], k), 0.0))
            qp.append(max(knn_kl_divergence(X2[m2], X2[m1], k), 0.0))
    if not pq:
        return warn_nan("divergence_score", f"no pair of batches shares >= {min_cells} cells of common types")
    return float((np.mean(pq) + np.mean(qp)) / 2)


def entropy_score(X, batch, labels, *, k: int = 100, seed: int = 0) -> float:
    """BERMUDA's entropy score (see module docstring); NaN when no type is batch-specific."""
    from ..neighbors import knn

    X2 = to_2d(X, seed)
    bcodes, _ = as_codes(batch, X2.shape[0], "batch")
    if np.unique(bcodes).size < 2:
        return warn_nan("entropy_score", "only one batch; there is no pair of batches to compare")
    specific = [m for _, _, m in _pairs(batch, labels, X2.shape[0]) if m.any()]
    if not specific:
        return warn_nan("entropy_score", "every cell type is shared by every pair of batches; "
                        "the score is defined on batch-specific types only")
    idx, _ = knn(X2, min(k, X2.shape[0]), include_self=True)
    n_b = int(bcodes.max()) + 1
    rows = np.repeat(np.arange(idx.shape[0]), idx.shape[1])
    p = np.bincount(rows * n_b + bcodes[idx].ravel(), minlength=idx.shape[0] * n_b).reshape(-1, n_b)
    p = p / idx.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log(p), 0.0).sum(1)
    return float(np.mean([ent[m].mean() for m in specific]))


def silhouette_score(X, labels, *, metric: str = "cosine", n_pcs: int = 20, seed: int = 0, device=None) -> float:
    """BERMUDA's silhouette: mean cell-type silhouette on ``X`` (reduced to ``n_pcs`` PCs if larger).

    The defaults (cosine on 20 PCs) are those of BERMUDA's released evaluation script;
    :func:`scintegrate.metrics.compute_metrics` scores the seeded 2-D UMAP instead (Euclidean), like
    the divergence and entropy scores, as the paper's evaluation describes.
    """
    from sklearn.decomposition import PCA

    X = as_embedding(X)
    codes, _ = as_codes(labels, X.shape[0], "labels")
    n_lab = np.unique(codes).size
    if not 2 <= n_lab <= X.shape[0] - 1:
        return warn_nan("silhouette_score", f"silhouette needs 2..n-1 labels, got {n_lab}")
    if n_pcs and X.shape[1] > n_pcs:
        X = PCA(n_components=n_pcs, random_state=seed).fit_transform(X)
    S = group_distance_sums(X, codes, n_lab, metric, device=device)
    return float(silhouette_from_sums(S, codes).mean())
