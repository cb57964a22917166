"""Seurat 4.3 ``FindNeighbors``: shared-nearest-neighbour graph with Jaccard weights.

Each cell's ``n_neighbors`` nearest neighbours *including itself* (Seurat's ``k.param``) are found
with :func:`scintegrate.neighbors.knn`; the weight between two cells is the Jaccard index of their
neighbour sets, ``s / (2k - s)`` for ``s`` shared neighbours, and weights below ``prune``
(``prune.SNN``, 1/15) are dropped. The diagonal is 1, as in Seurat's graph.

Seurat searches neighbours with Annoy (approximate) by default; here the search is exact below
``scintegrate.neighbors.EXACT_MAX`` cells, which equals Seurat's ``nn.method = "rann"``.

Example
-------
>>> import numpy as np
>>> G = snn_graph(np.random.default_rng(0).normal(size=(100, 5)), n_neighbors=10)
>>> G.shape, float(G.diagonal().min())
((100, 100), 1.0)
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.sparse as sp


def snn_from_knn(idx: np.ndarray, prune: float = 1 / 15) -> sp.csr_matrix:
    """SNN (Jaccard) graph from a kNN index matrix whose rows include the cell itself."""
    n, k = idx.shape
    rows = np.repeat(np.arange(n), k)
    A = sp.csr_matrix((np.ones(rows.size, dtype=np.float64), (rows, idx.ravel())), shape=(n, n))
    A.data[:] = 1.0  # duplicated neighbours (should not happen) count once
    S = (A @ A.T).tocsr()
    S.data = S.data / (k + (k - S.data))
    S.data[S.data < prune] = 0.0
    S.eliminate_zeros()
    return S


def snn_graph(
    X,
    *,
    n_neighbors: int = 20,
    prune: float = 1 / 15,
    method: str = "auto",
    device: Optional[str] = None,
    seed: int = 0,
) -> sp.csr_matrix:
    """Seurat's SNN graph of the rows of ``X`` (an embedding such as PCA): sparse n x n, symmetric."""
    if n_neighbors < 2:
        raise ValueError(f"n_neighbors must be at least 2 (it includes the cell itself), got {n_neighbors}")
    if not 0 <= prune < 1:
        raise ValueError(f"prune must lie in [0, 1), got {prune}")
    from ..neighbors import knn

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-d cells x dims array, got shape {X.shape}")
    idx, _ = knn(X, k=n_neighbors, include_self=True, method=method, device=device, seed=seed)
    return snn_from_knn(idx, prune)


def embedding(adata, use_rep: str = "X_pca", n_dims: Optional[int] = None) -> np.ndarray:
    """``adata.obsm[use_rep]`` (first ``n_dims`` columns), with clear errors."""
    if use_rep not in adata.obsm:
        raise KeyError(f"adata.obsm[{use_rep!r}] not found (available: {list(adata.obsm)}); run run_pca first")
    X = np.asarray(adata.obsm[use_rep])
    if n_dims is not None:
        if not 1 <= n_dims <= X.shape[1]:
            raise ValueError(f"n_dims={n_dims} but adata.obsm[{use_rep!r}] has {X.shape[1]} columns")
        X = X[:, :n_dims]
    return X


def find_neighbors(
    adata,
    *,
    use_rep: str = "X_pca",
    n_dims: Optional[int] = None,
    n_neighbors: int = 20,
    prune: float = 1 / 15,
    key_added: str = "snn",
    method: str = "auto",
    seed: int = 0,
    copy: bool = False,
):
    """Seurat's FindNeighbors on ``adata.obsm[use_rep][:, :n_dims]``; writes ``adata.obsp[key_added]``.

    ``n_dims=None`` uses every column (Seurat's default is ``dims = 1:10``).
    """
    adata = adata.copy() if copy else adata
    G = snn_graph(embedding(adata, use_rep, n_dims), n_neighbors=n_neighbors, prune=prune, method=method,
                  seed=seed)
    adata.obsp[key_added] = G
    adata.uns[key_added] = {"use_rep": use_rep, "n_dims": "None" if n_dims is None else int(n_dims),
                            "n_neighbors": int(n_neighbors), "prune": float(prune)}
    return adata if copy else None
