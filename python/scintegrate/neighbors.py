"""k-nearest-neighbour search, written once and used by preprocessing, metrics and models.

Exact search (scikit-learn, or torch on a GPU) for small and medium data; approximate search with
pynndescent (through scikit-learn's interface in umap-learn's dependency) above ``exact_max`` cells.

Example
-------
>>> import numpy as np
>>> from scintegrate.neighbors import knn
>>> idx, dist = knn(np.random.default_rng(0).normal(size=(100, 5)), k=10)
>>> idx.shape
(100, 10)
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import scipy.sparse as sp

EXACT_MAX = 60_000


def _torch_knn(X: np.ndarray, k: int, device, chunk: int = 4096) -> Tuple[np.ndarray, np.ndarray]:
    import torch

    Xt = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32), device=device)
    sq = (Xt * Xt).sum(1)
    idx_out, dist_out = [], []
    for start in range(0, Xt.shape[0], chunk):
        q = Xt[start : start + chunk]
        d2 = (q * q).sum(1, keepdim=True) + sq[None, :] - 2.0 * q @ Xt.T
        d2.clamp_(min=0)
        d, i = torch.topk(d2, k, dim=1, largest=False)
        idx_out.append(i.cpu().numpy())
        dist_out.append(d.sqrt().cpu().numpy())
    return np.vstack(idx_out), np.vstack(dist_out)


def knn(
    X,
    k: int,
    *,
    include_self: bool = False,
    method: str = "auto",
    device: Optional[str] = None,
    seed: int = 0,
) -> Tuple[np.ndarray, np.ndarray]:
    """Indices and Euclidean distances of the ``k`` nearest neighbours of each row of ``X``.

    With ``include_self=False`` the query point itself is excluded (column 0 is the nearest other
    cell). ``method`` is ``"auto"``, ``"exact"`` (scikit-learn), ``"torch"`` (exact, chunked, GPU if
    ``device`` is CUDA) or ``"nndescent"`` (approximate, for large data).
    """
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    n = X.shape[0]
    if not np.all(np.isfinite(X)):
        raise ValueError("embedding contains NaN or infinite values; kNN search is undefined")
    k_query = k + 1 if not include_self else k
    if k_query > n:
        raise ValueError(f"k={k} neighbours requested but only {n} cells are available")
    if method == "auto":
        if device is not None and str(device).startswith("cuda"):
            method = "torch"
        else:
            method = "exact" if n <= EXACT_MAX else "nndescent"
    if method == "torch":
        idx, dist = _torch_knn(X, k_query, device or "cpu")
    elif method == "exact":
        from sklearn.neighbors import NearestNeighbors

        algorithm = "brute" if X.shape[1] > 30 else "auto"
        nn = NearestNeighbors(n_neighbors=k_query, algorithm=algorithm).fit(X)
        dist, idx = nn.kneighbors(X)
    elif method == "nndescent":
        from pynndescent import NNDescent

        index = NNDescent(X, n_neighbors=max(k_query, 15), random_state=seed, n_jobs=-1)
        idx, dist = index.neighbor_graph
        idx, dist = idx[:, :k_query], dist[:, :k_query]
    else:
        raise ValueError(f"unknown kNN method {method!r}")
    if not include_self:
        idx, dist = _drop_self(idx, dist)
    return idx.astype(np.int64), dist.astype(np.float32)


def _drop_self(idx: np.ndarray, dist: np.ndarray):
    """Remove each row's own index (ties may put it off column 0); keep ``k`` columns."""
    n, kq = idx.shape
    rows = np.arange(n)[:, None]
    is_self = idx == rows
    # rows where self was not found (duplicates): drop the last column instead
    missing = ~is_self.any(1)
    is_self[missing, kq - 1] = True
    keep = ~is_self
    return idx[keep].reshape(n, kq - 1), dist[keep].reshape(n, kq - 1)


def knn_graph(idx: np.ndarray, dist: Optional[np.ndarray] = None, n: Optional[int] = None) -> sp.csr_matrix:
    """Sparse n x n kNN adjacency (distances as weights, or 1 when ``dist`` is None)."""
    n = idx.shape[0] if n is None else n
    k = idx.shape[1]
    rows = np.repeat(np.arange(idx.shape[0]), k)
    vals = np.ones(rows.size, dtype=np.float32) if dist is None else dist.ravel().astype(np.float32)
    return sp.csr_matrix((vals, (rows, idx.ravel())), shape=(n, n))
