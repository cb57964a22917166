"""Clustering agreement: ARI, NMI, the scIB resolution sweep and k-means.

- :func:`ari`, :func:`nmi` are scikit-learn's scores (NMI with the arithmetic mean, as scIB) after
  the package's input checks.
- :func:`resolution_sweep` clusters a neighbour graph with Leiden (or Louvain) at resolutions
  0.1, 0.2, ..., 2.0 (scIB's ``cluster_optimal_resolution``) and keeps the clustering with the best
  NMI; ARI is reported for that same clustering, as scIB does. The graph is scanpy's: UMAP
  connectivities of the 15-NN graph (see :meth:`NeighborGraph.connectivities`). Leiden is igraph's
  (modularity with resolution, 2 iterations: what ``scanpy.tl.leiden(flavor="igraph")`` and
  scib-metrics run; scIB itself used ``leidenalg`` to convergence); Louvain is igraph's multilevel
  algorithm with the same quality.
- :func:`kmeans_nmi_ari` clusters the embedding with k-means, k = number of labels (scib-metrics).

Example
-------
>>> import numpy as np
>>> from scintegrate.metrics import ari, nmi
>>> ari([0, 0, 1, 1], [1, 1, 0, 0]), nmi([0, 0, 1, 1], [1, 1, 0, 0])
(1.0, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Sequence

import numpy as np
import scipy.sparse as sp

from ._checks import as_codes, as_embedding, warn_nan

#: scIB's resolutions: 2 * x / 20 for x = 1..20
RESOLUTIONS = tuple(round(0.1 * x, 10) for x in range(1, 21))


def _pair(labels_true, labels_pred):
    true, _ = as_codes(labels_true, None, "labels_true")
    pred, _ = as_codes(labels_pred, true.size, "labels_pred")
    return true, pred


def ari(labels_true, labels_pred) -> float:
    """Adjusted Rand index (``sklearn.metrics.adjusted_rand_score``)."""
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(*_pair(labels_true, labels_pred)))


def nmi(labels_true, labels_pred, average_method: str = "arithmetic") -> float:
    """Normalised mutual information (``sklearn.metrics.normalized_mutual_info_score``)."""
    from sklearn.metrics import normalized_mutual_info_score

    true, pred = _pair(labels_true, labels_pred)
    return float(normalized_mutual_info_score(true, pred, average_method=average_method))


def to_igraph(conn: sp.spmatrix):
    """Undirected weighted ``igraph.Graph`` of a symmetric sparse matrix.

    Every stored entry becomes an edge, so each neighbour pair appears twice (i-j and j-i) with the
    same weight, exactly as scanpy's ``get_igraph_from_adjacency`` and scib-metrics build it: the
    modularity optimum is unchanged by the doubling, and seeded runs then match theirs.
    """
    import igraph

    conn = sp.csr_matrix(conn)
    conn.sort_indices()
    rows, cols = conn.nonzero()
    g = igraph.Graph(n=conn.shape[0], edges=np.column_stack([rows, cols]), directed=False)
    g.es["weight"] = np.asarray(conn[rows, cols]).ravel()
    return g


def cluster_graph(conn, resolution: float = 1.0, *, method: str = "leiden", seed: int = 0,
                  n_iterations: int = 2) -> np.ndarray:
    """Leiden or Louvain communities (modularity with ``resolution``) of a weighted symmetric graph.

    ``conn`` is a sparse matrix or an ``igraph.Graph`` from :func:`to_igraph`. Uses igraph's C
    implementations (``community_leiden`` with ``n_iterations`` = 2 as scanpy's igraph flavour and
    scib-metrics, ``community_multilevel``), seeded through a private ``random.Random(seed)``;
    igraph's generator is restored afterwards.
    """
    import random

    import igraph

    if method not in ("leiden", "louvain"):
        raise ValueError(f"unknown clustering method {method!r}; use 'leiden' or 'louvain'")
    g = conn if isinstance(conn, igraph.Graph) else to_igraph(conn)
    igraph.set_random_number_generator(random.Random(int(seed)))
    try:
        if method == "leiden":
            part = g.community_leiden(objective_function="modularity", weights="weight",
                                      resolution=float(resolution), n_iterations=n_iterations)
        else:
            part = g.community_multilevel(weights="weight", resolution=float(resolution))
    finally:
        igraph.set_random_number_generator(random)
    return np.asarray(part.membership, dtype=np.int64)


@dataclass
class SweepResult:
    """Clusterings of a resolution sweep and their agreement with the labels."""

    resolutions: List[float]
    clusterings: List[np.ndarray]
    nmi: np.ndarray
    ari: np.ndarray
    best: int = field(default=0)

    @property
    def best_nmi(self) -> float:
        return float(self.nmi[self.best])

    @property
    def best_ari(self) -> float:
        return float(self.ari[self.best])

    @property
    def best_resolution(self) -> float:
        return float(self.resolutions[self.best])


def resolution_sweep(
    conn: sp.spmatrix,
    labels,
    *,
    resolutions: Sequence[float] = RESOLUTIONS,
    method: str = "leiden",
    seed: int = 0,
) -> SweepResult:
    """Cluster ``conn`` at each resolution; ``best`` is the clustering with the highest NMI."""
    true, _ = as_codes(labels, conn.shape[0], "labels")
    g = to_igraph(conn)
    clusterings = [cluster_graph(g, r, method=method, seed=seed) for r in resolutions]
    nmis = np.array([nmi(true, c) for c in clusterings])
    aris = np.array([ari(true, c) for c in clusterings])
    return SweepResult(list(resolutions), clusterings, nmis, aris, int(np.argmax(nmis)))


def kmeans_nmi_ari(X, labels, *, seed: int = 0, n_init: int = 10) -> dict:
    """NMI and ARI of k-means (k = number of distinct labels) against the labels."""
    from sklearn.cluster import KMeans

    X = as_embedding(X)
    true, _ = as_codes(labels, X.shape[0], "labels")
    k = int(np.unique(true).size)
    if k < 2:
        nan = warn_nan("k-means NMI/ARI", "only one label; clustering agreement is undefined")
        return {"nmi": nan, "ari": nan}
    pred = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(X)
    return {"nmi": nmi(true, pred), "ari": ari(true, pred)}
