"""The stages of :class:`scintegrate.models.BERMUDA.fit` before training, and its schedule.

Each function takes AnnData / arrays and returns plain values, so every stage can be run and
tested on its own.

Example
-------
>>> from scintegrate.models._bermuda_steps import training_schedule
>>> training_schedule(1000, {"n_mb": 50, "max_steps": 2000, "max_epochs": None, "min_epochs": None,
...                          "lr_step": None, "patience": None})["max_epochs"]
100
"""

from __future__ import annotations

import math
import warnings
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp


PAPER_MAX_EPOCHS = 2000
#: the paper halves the learning rate every 200 epochs (of its own, data-dependent length)
PAPER_LR_STEP = 200.0


def select_features(adata, data, *, batch_key: str, n_features: int,
                    features: Optional[Sequence[str]] = None) -> list:
    """Genes BERMUDA uses: ``features`` if given, else Seurat's integration features (counts with
    more than ``n_features`` genes), else all genes."""
    from .. import pp

    if features is not None:
        pp.scale.feature_indices(adata, features)  # KeyError naming the missing genes
        return list(dict.fromkeys(str(f) for f in features))
    if not data.is_counts or adata.n_vars <= n_features:
        return [str(g) for g in adata.var_names]

    work = data.to_anndata(batch_key)
    pp.log_normalize(work)
    return [str(g) for g in pp.select_integration_features(work, batch_key=batch_key, n_features=n_features)]


def cluster_batches(adata, data, *, batch_key: str, params: dict, ranked=None) -> np.ndarray:
    """Per-cell cluster labels ``"<batch>|<cluster>"``, each batch clustered on its own.

    ``params["cluster_key"]`` names an ``obs`` column of given clusters; otherwise
    ``pp.find_clusters(batch_key=...)`` runs Seurat's chain in each batch (log-normalise unless the
    data is not counts, HVGs, scale, ``n_pcs`` PCs, SNN with ``n_neighbors``, Louvain at
    ``resolution``). Data that is not counts (e.g. the 2-D Gaussian toy, with negative values)
    skips normalisation and HVGs: every gene is scaled, then PCA, SNN and Louvain as above.

    A batch with more than ``params["cluster_max_cells"]`` cells is clustered on a seeded random
    subsample of that size; its other cells join the cluster whose centroid they correlate with
    best (Spearman on the BERMUDA genes, scmap-cluster's rule; ``ranked`` is
    ``tools.rank_standardize`` of those genes).
    """
    batch = adata.obs[batch_key].astype(str).to_numpy()
    key = params.get("cluster_key")
    if key is not None:
        if key not in adata.obs.columns:
            raise KeyError(f"cluster_key {key!r} is not a column of adata.obs")
        labels = adata.obs[key]
        if labels.isna().any():
            raise ValueError(f"obs[{key!r}] has missing values; every cell needs a cluster")
        return _prefixed(batch, labels.astype(str).to_numpy())
    chosen = _subsample_per_batch(batch, params.get("cluster_max_cells"), params["seed"])
    labels = np.empty(adata.n_obs, dtype=object)
    if data.is_counts:
        from .. import pp

        work = data.to_anndata(batch_key)
        work = work[chosen].copy() if chosen.size < adata.n_obs else work
        pp.find_clusters(work, batch_key=batch_key, resolution=params["resolution"],  # log-normalises
                         n_neighbors=params["n_neighbors"], n_comps=params["n_pcs"], seed=params["seed"])
        labels[chosen] = work.obs["seurat_clusters"].astype(str).str.rpartition("_")[2].to_numpy()
    else:
        X = data.X
        for level in pd.unique(batch):
            rows = chosen[batch[chosen] == level]
            labels[rows] = _cluster_log_data(X[rows], params).astype(str)
    if chosen.size < adata.n_obs:
        _assign_rest(labels, batch, chosen, ranked)
    return _prefixed(batch, labels)


def _prefixed(batch: np.ndarray, labels) -> np.ndarray:
    return np.char.add(np.char.add(batch.astype(str), "|"), np.asarray(labels).astype(str))


def _subsample_per_batch(batch: np.ndarray, max_cells: Optional[int], seed: int) -> np.ndarray:
    """Sorted indices: all cells of small batches, ``max_cells`` random cells of larger ones."""
    if max_cells is None:
        return np.arange(batch.size)
    rng = np.random.default_rng(seed)
    keep = []
    for level in pd.unique(batch):
        rows = np.flatnonzero(batch == level)
        keep.append(rows if rows.size <= max_cells else rng.choice(rows, int(max_cells), replace=False))
    return np.sort(np.concatenate(keep))


def _assign_rest(labels: np.ndarray, batch: np.ndarray, chosen: np.ndarray, ranked) -> None:
    """Give every unclustered cell the cluster of its batch with the most correlated centroid.

    ``ranked = (D, b)`` from ``tools.rank_standardize``: cell i's standardised ranks are D[i] + b[i].
    """
    if ranked is None:
        raise ValueError("subsampled clustering needs the rank-standardised features to assign the other cells")
    D, b = ranked
    D = D.tocsr() if sp.issparse(D) else np.asarray(D)
    is_chosen = np.zeros(batch.size, dtype=bool)
    is_chosen[chosen] = True
    for level in pd.unique(batch):
        rows = np.flatnonzero(batch == level)
        rest, done = rows[~is_chosen[rows]], rows[is_chosen[rows]]
        if rest.size == 0:
            continue
        names, codes = np.unique(labels[done].astype(str), return_inverse=True)
        onehot = sp.csr_matrix((np.ones(done.size), (codes, np.arange(done.size))), shape=(names.size, done.size))
        summed = onehot @ D[done]
        summed = summed.toarray() if sp.issparse(summed) else np.asarray(summed)
        centroids = summed.T + (onehot @ b[done])[None, :]  # genes x clusters
        centroids /= np.maximum(np.linalg.norm(centroids, axis=0, keepdims=True), 1e-12)
        sim = np.asarray(D[rest] @ centroids) + np.outer(b[rest], centroids.sum(axis=0))
        labels[rest] = names[np.argmax(sim, axis=1)]


def _cluster_log_data(X, params: dict) -> np.ndarray:
    """Seurat's chain without normalisation and HVGs for one batch of non-count data."""
    from ..pp.cluster import cluster_graph, per_batch_neighbors
    from ..pp.graph import snn_graph
    from ..pp.pca import pca
    from ..pp.scale import scale_matrix

    if X.shape[0] < 10:
        return np.zeros(X.shape[0], dtype=int)
    scores, _, _ = pca(scale_matrix(X), n_comps=params["n_pcs"], seed=params["seed"])
    G = snn_graph(scores, n_neighbors=per_batch_neighbors(X.shape[0], params["n_neighbors"]), seed=params["seed"])
    return cluster_graph(G, resolution=params["resolution"], seed=params["seed"])


def similar_cluster_pairs(X_log, batch: np.ndarray, clusters: np.ndarray, threshold: float, method: str,
                          ranked=None):
    """MetaNeighborUS similarity and BERMUDA's matches; warns about clusters that match nothing.

    Returns ``(names, cluster_codes, similarity, matches, pairs)`` where ``cluster_codes`` index
    ``names`` per cell and ``pairs`` is an ``(n_pairs, 2)`` array of matched cluster indices.
    """
    from ..tools import cluster_pairs, match_clusters, metaneighbor_us, unmatched_clusters

    similarity, names = metaneighbor_us(X_log, batch, clusters, method=method, ranked=ranked)
    codes = pd.Index(names).get_indexer(clusters)
    cluster_batch = np.empty(len(names), dtype=object)
    cluster_batch[codes] = batch
    matches = match_clusters(similarity, cluster_batch.astype(str), threshold)
    lonely = unmatched_clusters(matches, names)
    if len(lonely) == len(names):
        single = sorted(set(b for b, n in pd.Series(cluster_batch.astype(str)).value_counts().items() if n == 1))
        why = (f"; batches {single} form a single cluster each, which MetaNeighbor cannot score (too few cells "
               "or too little structure: pass cluster_key= with your own clusters)") if single else ""
        warnings.warn(f"no cluster pair reaches S_thr={threshold:g}: BERMUDA trains a plain autoencoder and "
                      f"does not align any batches (lower similarity_threshold or check the clustering){why}",
                      UserWarning, stacklevel=3)
    elif lonely:
        warnings.warn(f"{len(lonely)} of {len(names)} clusters match no cluster of another batch at "
                      f"S_thr={threshold:g} and are kept apart (no MMD term): {lonely[:10]}",
                      UserWarning, stacklevel=3)
    return names, codes.astype(np.int64), similarity, matches, cluster_pairs(matches)


#: step budget bounds of the data-sized schedule: at least this many Adam steps (an autoencoder needs a few
#: hundred updates whatever the data size), at most the previous fixed budget
MIN_STEPS, MAX_STEPS = 200, 2000
#: passes over the data: 400 up to 20,000 cells, then 8 million cells seen in all (scvi-tools' rule for
#: autoencoders on single-cell data)
PASSES, CELLS_SEEN = 400, 8_000_000


def data_sized_steps(n_cells: int, n_clusters: int, n_mb: int) -> int:
    """Step budget that follows the data: ``passes * n_cells`` cells seen, in steps of ``n_clusters * n_mb``.

    ``passes = min(400, 8e6 / n_cells)``; the result is clipped to [200, 2000] steps.

    >>> data_sized_steps(350, 15, 50), data_sized_steps(2000, 16, 50), data_sized_steps(100_000, 60, 50)
    (200, 1000, 2000)
    """
    passes = min(PASSES, CELLS_SEEN / max(int(n_cells), 1))
    steps = math.ceil(passes * int(n_cells) / (max(int(n_clusters), 1) * int(n_mb)))
    return int(np.clip(steps, MIN_STEPS, MAX_STEPS))


def training_schedule(largest_cluster: int, params: dict, n_cells: Optional[int] = None,
                      n_clusters: Optional[int] = None) -> dict:
    """Epoch length and the step-budget schedule (see :mod:`scintegrate.models.bermuda`).

    ``params["max_steps"] = None`` takes :func:`data_sized_steps` of ``n_cells`` and ``n_clusters``.
    """
    steps = max(1, int(largest_cluster) // int(params["n_mb"]))
    max_steps = params.get("max_steps")
    if max_steps is None:
        if n_cells is None or n_clusters is None:
            raise ValueError("a data-sized step budget (max_steps=None) needs n_cells and n_clusters")
        max_steps = data_sized_steps(n_cells, n_clusters, params["n_mb"])
    max_steps = int(max_steps)
    max_epochs = params.get("max_epochs")
    if max_epochs is None:
        max_epochs = int(np.clip(math.ceil(max_steps / steps), 1, PAPER_MAX_EPOCHS))
    max_epochs = int(max_epochs)
    if max_epochs < 1:
        raise ValueError(f"max_epochs must be >= 1, got {max_epochs}")
    min_epochs = params.get("min_epochs")
    min_epochs = int(math.ceil(max_epochs / 2)) if min_epochs is None else int(min_epochs)
    lr_step = params.get("lr_step")
    lr_step = PAPER_LR_STEP if lr_step is None else float(lr_step)
    if lr_step <= 0:
        raise ValueError(f"lr_step must be positive, got {lr_step}")
    patience = params.get("patience")  # default: ~5% of the step budget, at least one epoch
    patience = max(1, math.ceil(0.05 * max_steps / steps)) if patience is None else int(patience)
    return {"steps_per_epoch": steps, "max_steps": max_steps, "max_epochs": max_epochs,
            "min_epochs": min(min_epochs, max_epochs), "lr_step": lr_step, "patience": patience,
            "ramp_epochs": max_epochs}


#: a cluster whose median code lies more than this many times the cells' median distance from the median code
#: is reported as outlying (issue 14: an unmatched cluster kept its scale while the MMD shrank the matched ones)
OUTLIER_TIMES = 5.0


def outlying_clusters(Z: np.ndarray, clusters, times: float = OUTLIER_TIMES) -> dict:
    """``{cluster: distance}`` for the clusters whose median code lies more than ``times`` units from the median
    code of all cells, a unit being the cells' median distance to it (robust: one far cluster cannot set it).

    >>> Z = np.r_[np.random.default_rng(0).normal(size=(90, 2)), np.full((10, 2), 40.0)]
    >>> list(outlying_clusters(Z, np.repeat(["a", "far"], [90, 10])))
    ['far']
    """
    Z = np.asarray(Z, dtype=np.float64)
    clusters = np.asarray(clusters).astype(str)
    centre = np.median(Z, axis=0)
    unit = float(np.median(np.linalg.norm(Z - centre, axis=1)))
    if not unit > 0:
        return {}
    out = {}
    for c in np.unique(clusters):
        d = float(np.linalg.norm(np.median(Z[clusters == c], axis=0) - centre)) / unit
        if d > times:
            out[str(c)] = round(d, 2)
    return out
