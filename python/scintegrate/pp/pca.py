"""Seurat 4.3 ``RunPCA`` on the scaled data: truncated SVD of the (not re-centred) scaled matrix,
cell embeddings = U * d (``weight.by.var = TRUE``), ``stdev = d / sqrt(n_cells - 1)``.

The SVD is exact (an eigendecomposition of the smaller Gram matrix, or ARPACK started from a
seeded vector when both sides exceed ``GRAM_MAX``), and each component's sign is fixed so that
its largest-magnitude loading is positive, so results do not depend on the solver's sign choice.

Example
-------
>>> import numpy as np
>>> scores, loadings, sdev = pca(np.random.default_rng(0).normal(size=(50, 8)), n_comps=3)
>>> scores.shape, loadings.shape
((50, 3), (8, 3))
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import scipy.linalg

GRAM_MAX = 8000


def _flip_signs(loadings: np.ndarray, scores: np.ndarray):
    idx = np.argmax(np.abs(loadings), axis=0)
    signs = np.sign(loadings[idx, np.arange(loadings.shape[1])])
    signs[signs == 0] = 1.0
    return loadings * signs, scores * signs


def _chunked(X: np.ndarray, chunk: int = 20000):
    for start in range(0, X.shape[0], chunk):
        yield np.asarray(X[start : start + chunk], dtype=np.float64)


def _top_svd(X: np.ndarray, k: int, seed: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-``k`` (U * d, d, V) of ``X`` (float32 or float64), largest first, in float64."""
    n, p = X.shape
    if p <= n and p <= GRAM_MAX:  # eigenvectors of X'X, accumulated over row chunks
        gram = sum(c.T @ c for c in _chunked(X))
        evals, V = scipy.linalg.eigh(gram, subset_by_index=[p - k, p - 1], driver="evr")
        V = V[:, ::-1]
        d = np.sqrt(np.clip(evals[::-1], 0, None))
        return np.vstack([c @ V for c in _chunked(X)]), d, V
    X = np.asarray(X, dtype=np.float64)
    if n <= GRAM_MAX:
        evals, U = scipy.linalg.eigh(X @ X.T, subset_by_index=[n - k, n - 1], driver="evr")
        U = U[:, ::-1]
        d = np.sqrt(np.clip(evals[::-1], 0, None))
        return U * d, d, (X.T @ U) / np.where(d > 0, d, 1.0)
    from scipy.sparse.linalg import svds

    v0 = np.random.default_rng(seed).uniform(-1, 1, size=min(n, p))
    U, d, Vt = svds(X, k=k, v0=v0, solver="arpack")
    order = np.argsort(-d)
    return U[:, order] * d[order], d[order], Vt[order].T


def pca(X, n_comps: int = 50, *, seed: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Array-level Seurat PCA of a scaled matrix (cells x features).

    Returns ``(scores n x k, loadings p x k, stdev k)``; ``n_comps`` is capped at
    ``min(n_cells, n_features) - 1`` like Seurat's irlba call.
    """
    X = np.asarray(X)
    if not np.all(np.isfinite(X)):
        raise ValueError("scaled data contain NaN or infinite values")
    n, p = X.shape
    k = min(int(n_comps), n - 1, p - 1)
    if k < 1:
        raise ValueError(f"PCA needs at least 2 cells and 2 features, got {n} x {p}")
    scores, d, V = _top_svd(X, k, seed)
    loadings, scores = _flip_signs(V, scores)
    return scores, loadings, d / np.sqrt(max(1, n - 1))


def _total_variance(X: np.ndarray) -> float:
    """Sum of the column variances (n - 1), accumulated over row chunks."""
    s1, s2 = 0.0, 0.0
    for c in _chunked(X):
        s1, s2 = s1 + c.sum(0), s2 + (c * c).sum(0)
    n = X.shape[0]
    return float(np.sum((s2 - s1 * s1 / n) / max(n - 1, 1)))


def run_pca(
    adata,
    *,
    n_comps: int = 50,
    features: Optional[Sequence[str]] = None,
    seed: int = 0,
    key_added: str = "X_pca",
    scaled_key: str = "scaled",
    copy: bool = False,
):
    """PCA of ``adata.obsm[scaled_key]`` (from :func:`scale_data`), Seurat style.

    ``features`` restricts to a subset of the scaled features. Writes ``adata.obsm[key_added]``
    (float32), the loadings to ``adata.varm["PCs"]`` (``"<key_added>_PCs"`` for another key;
    zero rows for genes not used) and ``adata.uns[key_added]`` (features, stdev, variance ratio).
    """
    if scaled_key not in adata.obsm or scaled_key not in adata.uns:
        raise KeyError(f"no scaled data in adata.obsm[{scaled_key!r}]; run scintegrate.pp.scale_data first")
    adata = adata.copy() if copy else adata
    scaled_names = pd.Index(np.asarray(adata.uns[scaled_key]["features"], dtype=str))
    X = np.asarray(adata.obsm[scaled_key])
    if features is not None:
        names = pd.Index([str(f) for f in features])
        cols = scaled_names.get_indexer(names)
        if np.any(cols < 0):
            raise KeyError(f"features not in the scaled data, e.g. {list(names[cols < 0][:3])}; "
                           "scale them with scale_data first")
        X, scaled_names = X[:, cols], names
    scores, loadings, stdev = pca(X, n_comps, seed=seed)
    total_var = _total_variance(X)
    adata.obsm[key_added] = scores.astype(np.float32)
    full = np.zeros((adata.n_vars, loadings.shape[1]), dtype=np.float32)
    full[adata.var_names.get_indexer(scaled_names)] = loadings
    adata.varm["PCs" if key_added == "X_pca" else f"{key_added}_PCs"] = full
    adata.uns[key_added] = {"features": scaled_names.to_numpy(dtype=str), "stdev": stdev,
                            "variance": stdev**2, "variance_ratio": stdev**2 / total_var, "seed": int(seed)}
    return adata if copy else None
