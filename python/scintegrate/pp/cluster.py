"""Seurat 4.3 ``FindClusters`` on an SNN graph, and per-batch clustering for BERMUDA.

Modularity with a resolution parameter (Seurat's ``modularity.fxn = 1``), self-loops ignored as
in Seurat's modularity optimiser, ``n_starts`` seeded random starts (Seurat ``n.start = 10``),
the partition of highest modularity kept.

- ``"louvain"`` (Seurat's algorithm 1): igraph's multilevel algorithm; its vertex order comes
  from a ``random.Random(seed + start)`` swapped in as python-igraph's generator for the call
  (the ``random`` module, igraph's default, is put back afterwards). Seurat also repeats each
  start ``n.iter = 10`` times from the previous partition; multilevel runs once to convergence.
- ``"leiden"`` (algorithm 4): leidenalg's RB-configuration partition, ``n_iterations`` passes.

Singleton clusters are merged into the cluster they are most connected to (``group.singletons``)
and labels are 0..K-1 by decreasing size, as in Seurat.

Example
-------
>>> import numpy as np
>>> from scintegrate.pp.graph import snn_graph
>>> rng = np.random.default_rng(0)
>>> X = np.vstack([rng.normal(0, 1, (60, 5)), rng.normal(8, 1, (60, 5))])
>>> labels = cluster_graph(snn_graph(X, n_neighbors=10), resolution=0.8)
>>> len(set(labels[:60])), len(set(labels[60:])), labels[0] != labels[60]
(1, 1, True)
"""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp

ALGORITHMS = ("louvain", "leiden")


def _to_igraph(G: sp.spmatrix):
    import igraph as ig

    upper = sp.triu(sp.csr_matrix(G), k=1).tocoo()  # one weight per pair, no self-loops
    graph = ig.Graph(n=G.shape[0], edges=list(zip(upper.row.tolist(), upper.col.tolist())), directed=False)
    graph.es["weight"] = upper.data.astype(float).tolist()
    return graph


def _louvain(graph, resolution: float, seed: int) -> np.ndarray:
    """igraph's multilevel (Louvain) with its vertex order drawn from a seeded generator."""
    import random

    import igraph as ig

    ig.set_random_number_generator(random.Random(seed))
    try:
        return np.asarray(graph.community_multilevel(weights="weight", resolution=resolution).membership)
    finally:
        ig.set_random_number_generator(random)  # python-igraph's default generator


def _leiden(graph, resolution: float, seed: int, n_iterations: int) -> np.ndarray:
    import leidenalg as la

    partition = la.RBConfigurationVertexPartition(graph, weights="weight", resolution_parameter=resolution)
    optimiser = la.Optimiser()
    optimiser.set_rng_seed(int(seed))
    optimiser.optimise_partition(partition, n_iterations=n_iterations)
    return np.asarray(partition.membership)


def _best_partition(graph, resolution: float, algorithm: str, seed: int, n_starts: int, n_iterations: int):
    """Highest-modularity partition over ``n_starts`` seeded runs."""
    best, best_quality = None, -np.inf
    for start in range(n_starts):
        if algorithm == "louvain":
            membership = _louvain(graph, resolution, int(seed) + start)
        else:
            membership = _leiden(graph, resolution, int(seed) + start, n_iterations)
        quality = graph.modularity(membership.tolist(), weights="weight", resolution=resolution)
        if quality > best_quality + 1e-12:
            best, best_quality = membership, quality
    return best


def group_singletons(labels: np.ndarray, G: sp.spmatrix) -> np.ndarray:
    """Merge one-cell clusters into the cluster with the highest mean SNN weight to them."""
    labels = np.asarray(labels).copy()
    sizes = np.bincount(labels)
    singles = np.flatnonzero(sizes == 1)
    others = np.flatnonzero(sizes > 1)
    if singles.size == 0 or others.size == 0:
        return labels
    G = sp.csr_matrix(G)
    original = labels.copy()
    for s in singles:
        cell = np.flatnonzero(original == s)[0]
        row = G.getrow(cell)
        weight = np.bincount(original[row.indices], weights=row.data, minlength=sizes.size)
        connectivity = weight[others] / sizes[others]
        labels[cell] = others[np.argmax(connectivity)]  # ties: first cluster (Seurat samples one)
    return labels


def relabel_by_size(labels: np.ndarray) -> np.ndarray:
    """0 for the largest cluster, 1 for the next, ... (ties by first appearance)."""
    labels = np.asarray(labels)
    uniq, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = np.lexsort((first, -counts))
    mapping = np.empty(uniq.size, dtype=np.int64)
    mapping[order] = np.arange(uniq.size)
    return mapping[np.searchsorted(uniq, labels)]


def cluster_graph(
    G,
    *,
    resolution: float = 0.8,
    algorithm: str = "louvain",
    seed: int = 0,
    n_starts: int = 10,
    n_iterations: int = 10,
    singletons: bool = True,
) -> np.ndarray:
    """Cluster a (SNN) graph like Seurat's FindClusters; returns int labels 0..K-1 by size."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    if not resolution > 0:
        raise ValueError(f"resolution must be positive, got {resolution}")
    if not sp.issparse(G) or G.shape[0] != G.shape[1]:
        raise ValueError("G must be a square sparse matrix (e.g. from snn_graph)")
    labels = _best_partition(_to_igraph(G), resolution, algorithm, seed, max(1, n_starts), n_iterations)
    if singletons:
        labels = group_singletons(labels, G)
    return relabel_by_size(labels)


def seurat_cluster_labels(
    adata,
    *,
    resolution: float = 0.8,
    algorithm: str = "louvain",
    n_features: int = 2000,
    n_comps: int = 20,
    n_neighbors: int = 20,
    seed: int = 0,
) -> np.ndarray:
    """Seurat's whole chain on one data set: normalise, vst HVGs, scale, PCA, SNN, cluster.

    Raw counts come from ``layers["counts"]`` (else ``X``); input that is not counts is taken as
    already log-normalised (no normalisation; vst on it, like Seurat without a counts slot).
    ``n_comps`` and ``n_neighbors`` are capped for small data sets.
    """
    import anndata as ad

    from .._validation import is_count_matrix
    from .graph import snn_graph
    from .hvg import find_variable_features
    from .normalize import log_normalize
    from .pca import run_pca
    from .scale import scale_data

    counts = adata.layers["counts"] if "counts" in adata.layers else adata.X
    sub = ad.AnnData(X=counts.copy(), var=pd.DataFrame(index=adata.var_names.copy()))
    if is_count_matrix(counts):
        log_normalize(sub)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # vst on log data for non-count input
        find_variable_features(sub, n_features=n_features, layer="counts")
    scale_data(sub)
    run_pca(sub, n_comps=n_comps, seed=seed)
    G = snn_graph(sub.obsm["X_pca"], n_neighbors=min(n_neighbors, sub.n_obs - 1), seed=seed)
    return cluster_graph(G, resolution=resolution, algorithm=algorithm, seed=seed)


def find_clusters(
    adata,
    *,
    resolution: float = 0.8,
    algorithm: str = "louvain",
    batch_key: Optional[str] = None,
    use_rep: str = "X_pca",
    n_dims: Optional[int] = None,
    n_neighbors: int = 20,
    graph_key: str = "snn",
    key_added: str = "seurat_clusters",
    n_features: int = 2000,
    n_comps: int = 20,
    seed: int = 0,
    copy: bool = False,
):
    """Seurat's FindClusters; writes categorical labels to ``adata.obs[key_added]``.

    Without ``batch_key``: clusters ``adata.obsp[graph_key]`` (from :func:`find_neighbors`), or
    builds that SNN graph from ``adata.obsm[use_rep][:, :n_dims]`` first. Labels are "0", "1", ...
    With ``batch_key``: runs the whole Seurat chain (:func:`seurat_cluster_labels`: HVGs,
    scaling, ``n_comps`` PCs, SNN, clustering) in each batch separately and labels clusters
    ``"<batch>_<k>"`` (BERMUDA's per-batch clusters). Batches of fewer than 10 cells form one
    cluster (with a warning); in small batches k is capped (:func:`per_batch_neighbors`).
    """
    adata = adata.copy() if copy else adata
    if batch_key is None:
        if graph_key not in adata.obsp:
            from .graph import find_neighbors

            find_neighbors(adata, use_rep=use_rep, n_dims=n_dims, n_neighbors=n_neighbors, key_added=graph_key,
                           seed=seed)
        labels = cluster_graph(adata.obsp[graph_key], resolution=resolution, algorithm=algorithm, seed=seed)
        names = labels.astype(str)
    else:
        names = _per_batch_clusters(adata, batch_key, resolution=resolution, algorithm=algorithm,
                                    n_features=n_features, n_comps=n_comps, n_neighbors=n_neighbors, seed=seed)
    adata.obs[key_added] = pd.Categorical(names, categories=_natural_order(names))
    return adata if copy else None


def per_batch_neighbors(n_cells: int, n_neighbors: int) -> int:
    """k of the SNN graph of one batch: at most a tenth of its cells (at least 5, at most ``n_neighbors``).

    A k-NN graph cannot resolve a group of fewer than ~k cells: their neighbourhoods are filled by outsiders
    and the SNN graph of a batch with k near its size is almost complete (one cluster). The cap lets types
    down to ~10% of a batch form clusters and leaves batches of >= 10 k cells unchanged (measured on small
    batches: ``benchmarks/results/bermuda_design.md``).

    >>> per_batch_neighbors(60, 30), per_batch_neighbors(5000, 30)
    (6, 30)
    """
    return int(min(n_neighbors, max(5, n_cells // 10), n_cells - 1))


def _per_batch_clusters(adata, batch_key: str, **params) -> np.ndarray:
    if batch_key not in adata.obs.columns:
        raise KeyError(f"batch column {batch_key!r} not found in adata.obs; available: {list(adata.obs.columns)}")
    batch = adata.obs[batch_key].astype(str).to_numpy()
    names = np.empty(adata.n_obs, dtype=object)
    for level in pd.unique(batch):
        rows = np.flatnonzero(batch == level)
        if rows.size < 10:
            warnings.warn(f"batch {level!r} has {rows.size} cells; it is kept as one cluster", UserWarning,
                          stacklevel=3)
            labels = np.zeros(rows.size, dtype=int)
        else:
            k = per_batch_neighbors(rows.size, params["n_neighbors"])
            labels = seurat_cluster_labels(adata[rows], **{**params, "n_neighbors": k})
        names[rows] = [f"{level}_{k}" for k in labels]
    return names.astype(str)


def _natural_order(names: np.ndarray) -> list:
    """Categories sorted by batch name, then by cluster number."""
    uniq = pd.unique(names)

    def key(name):
        prefix, _, k = str(name).rpartition("_")
        return (prefix, int(k)) if k.isdigit() else (str(name), -1)

    return sorted(uniq, key=key)
