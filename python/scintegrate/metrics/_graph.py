"""The neighbour graph the metrics share: computed once, sliced per metric.

:class:`NeighborGraph` holds, for every cell, its ``k`` nearest *other* cells (self excluded) and
their Euclidean distances, as returned by :func:`scintegrate.neighbors.knn`. Metrics ask for the
slice they need: ``others(15)`` (EBM, kNN accuracy), ``with_self(15)`` (scanpy-style graphs, which
count the cell itself as one of its neighbours), ``connectivities(15)`` (UMAP fuzzy weights, the
graph scanpy and scIB cluster on).

Example
-------
>>> import numpy as np
>>> from scintegrate.metrics import NeighborGraph
>>> g = NeighborGraph.compute(np.random.default_rng(0).normal(size=(50, 3)), k=10)
>>> g.others(5)[0].shape, g.with_self(5)[0][:, 0].tolist() == list(range(50))
((50, 5), True)
"""

from __future__ import annotations

import warnings
from typing import Optional, Tuple

import numpy as np
import scipy.sparse as sp

from ._checks import MetricWarning


class NeighborGraph:
    """k nearest other cells of every cell (``idx``, ``dist``: n x k, nearest first)."""

    def __init__(self, idx: np.ndarray, dist: np.ndarray):
        idx = np.asarray(idx, dtype=np.int64)
        dist = np.asarray(dist, dtype=np.float64)
        if idx.ndim != 2 or idx.shape != dist.shape:
            raise ValueError(f"kNN indices {idx.shape} and distances {dist.shape} must be equal n x k arrays")
        n = idx.shape[0]
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise ValueError(f"kNN indices must lie in [0, {n}); got range [{idx.min()}, {idx.max()}]")
        self.idx, self.dist = idx, dist
        self._cache = {}

    @property
    def n(self) -> int:
        return self.idx.shape[0]

    @property
    def k(self) -> int:
        return self.idx.shape[1]

    @classmethod
    def compute(cls, X, k: int, *, device=None, seed: int = 0) -> "NeighborGraph":
        """kNN of ``X`` through :func:`scintegrate.neighbors.knn` (``k`` capped at n - 1)."""
        from ..neighbors import knn

        k = int(min(k, X.shape[0] - 1))
        idx, dist = knn(X, k, include_self=False, device=device, seed=seed)
        return cls(idx, dist)

    @classmethod
    def from_any(cls, graph, n: Optional[int] = None) -> "NeighborGraph":
        """Accept a :class:`NeighborGraph`, an ``(idx, dist)`` pair or a sparse n x n distance matrix.

        In an ``(idx, dist)`` pair a first column that is the cell itself is dropped. A sparse matrix
        (e.g. ``adata.obsp["distances"]``) gives each row's stored entries, nearest first; rows with
        fewer entries than others truncate every row to the smallest count (with a warning).
        """
        if isinstance(graph, NeighborGraph):
            out = graph
        elif sp.issparse(graph):
            out = cls(*_from_sparse(sp.csr_matrix(graph)))
        elif isinstance(graph, (tuple, list)) and len(graph) == 2:
            idx, dist = (np.asarray(a) for a in graph)
            if idx.ndim == 2 and idx.shape[1] > 0 and np.array_equal(idx[:, 0], np.arange(idx.shape[0])):
                idx, dist = idx[:, 1:], dist[:, 1:]
            out = cls(idx, dist)
        else:
            raise ValueError(
                "knn_graph must be a NeighborGraph, an (indices, distances) pair or a sparse n x n "
                f"distance matrix; got {type(graph).__name__}"
            )
        if n is not None and out.n != n:
            raise ValueError(f"knn_graph covers {out.n} cells but the embedding has {n}")
        return out

    def others(self, k: int) -> Tuple[np.ndarray, np.ndarray]:
        """Indices and distances of the ``k`` nearest other cells (fewer if the graph is smaller)."""
        k = self._available(k, "others")
        return self.idx[:, :k], self.dist[:, :k]

    def with_self(self, k: int) -> Tuple[np.ndarray, np.ndarray]:
        """``k`` columns: the cell itself (distance 0) then its ``k - 1`` nearest other cells."""
        idx, dist = self.others(k - 1)
        n = self.n
        return (np.hstack([np.arange(n)[:, None], idx]), np.hstack([np.zeros((n, 1)), dist]))

    def adjacency(self, k: int = 15) -> sp.csr_matrix:
        """Symmetric 0/1 adjacency of the ``k``-NN graph (``k`` counting the cell itself)."""
        key = ("adj", k)
        if key not in self._cache:
            idx, _ = self.others(k - 1)
            rows = np.repeat(np.arange(self.n), idx.shape[1])
            A = sp.csr_matrix((np.ones(rows.size), (rows, idx.ravel())), shape=(self.n, self.n))
            A = ((A + A.T) > 0).astype(np.float64)
            self._cache[key] = sp.csr_matrix(A)
        return self._cache[key]

    def connectivities(self, k: int = 15) -> sp.csr_matrix:
        """UMAP fuzzy-union connectivities of the ``k``-NN graph, as ``scanpy.pp.neighbors`` builds them."""
        key = ("conn", k)
        if key not in self._cache:
            self._cache[key] = fuzzy_connectivities(*self.with_self(k))
        return self._cache[key]

    def _available(self, k: int, what: str) -> int:
        if k > self.k:
            warnings.warn(
                f"{k} neighbours ({what}) requested but the kNN graph has {self.k}; using {self.k}",
                MetricWarning, stacklevel=3,
            )
            return self.k
        return k


def _smooth_knn_dist(D: np.ndarray, n_iter: int = 64, tol: float = 1e-5):
    """UMAP's ``smooth_knn_dist`` (local_connectivity 1, bandwidth 1) for all cells at once.

    ``D`` holds each cell's distances to itself (column 0) and its k - 1 nearest others.
    """
    n, k = D.shape
    pos = np.where(D > 0, D, np.inf)
    rho = pos.min(1)
    rho[~np.isfinite(rho)] = 0.0  # a cell whose neighbours all sit on it
    target = np.log2(k)
    lo, hi, mid = np.zeros(n), np.full(n, np.inf), np.ones(n)
    active = np.ones(n, dtype=bool)
    excess = D[:, 1:] - rho[:, None]
    for _ in range(n_iter):
        psum = np.where(excess[active] > 0, np.exp(-excess[active] / mid[active, None]), 1.0).sum(1)
        done = np.abs(psum - target) < tol
        a = np.flatnonzero(active)
        high, low = a[~done & (psum > target)], a[~done & (psum <= target)]
        hi[high] = mid[high]
        mid[high] = (lo[high] + hi[high]) / 2
        lo[low] = mid[low]
        mid[low] = np.where(np.isinf(hi[low]), mid[low] * 2, (lo[low] + hi[low]) / 2)
        active[a[done]] = False
        if not active.any():
            break
    floor = 1e-3 * np.where(rho > 0, D.mean(1), D.mean())
    return np.maximum(mid, floor), rho


def fuzzy_connectivities(idx: np.ndarray, dist: np.ndarray) -> sp.csr_matrix:
    """UMAP's ``fuzzy_simplicial_set`` (fuzzy union, mix ratio 1) from a kNN graph that includes self.

    A numpy version of what scanpy and scib-metrics call, so that clustering needs no numba compile.
    """
    n, k = idx.shape
    D = np.asarray(dist, dtype=np.float32).astype(np.float64)
    sigma, rho = _smooth_knn_dist(D)
    excess = D - rho[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        vals = np.where((excess <= 0) | (sigma[:, None] == 0), 1.0, np.exp(-excess / sigma[:, None]))
    vals[idx == np.arange(n)[:, None]] = 0.0
    A = sp.csr_matrix((vals.ravel(), (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
    A.eliminate_zeros()
    At = A.T.tocsr()
    out = (A + At - A.multiply(At)).tocsr()
    out.eliminate_zeros()
    return out


def _from_sparse(D: sp.csr_matrix) -> Tuple[np.ndarray, np.ndarray]:
    D = D.tocsr().copy()
    D.setdiag(0)
    D.eliminate_zeros()
    counts = np.diff(D.indptr)
    k = int(counts.min()) if counts.size else 0
    if k == 0:
        raise ValueError("knn_graph has a cell without neighbours; pass a kNN distance matrix")
    if counts.max() != k:
        warnings.warn(
            f"knn_graph rows hold {k}..{counts.max()} neighbours; every row is cut to its {k} nearest",
            MetricWarning, stacklevel=3,
        )
    n = D.shape[0]
    rows = np.repeat(np.arange(n), counts)
    order = np.lexsort((D.data, rows))  # by row, then by distance
    pos = np.arange(rows.size) - D.indptr[rows]  # rank within the row after sorting
    keep = order[pos < k]
    idx = D.indices[keep].reshape(n, k).astype(np.int64)
    dist = D.data[keep].reshape(n, k).astype(np.float64)
    return idx, dist


def resolve_graph(X: Optional[np.ndarray], knn, k: int, *, device=None, seed: int = 0) -> NeighborGraph:
    """The graph to use: ``knn`` when given (any form :meth:`NeighborGraph.from_any` takes), else computed."""
    if knn is not None:
        return NeighborGraph.from_any(knn, X.shape[0] if X is not None else None)
    if X is None:
        raise ValueError("pass an embedding X or a precomputed knn graph")
    return NeighborGraph.compute(X, k, device=device, seed=seed)

