"""Neighbourhood metrics: graph connectivity, kBET-style acceptance, entropy of batch mixing, kNN accuracy.

- :func:`graph_connectivity` (scIB): for each cell type, the fraction of its cells in the largest
  connected component of the type's subgraph of the (symmetric) 15-NN graph; mean over types.
- :func:`kbet_acceptance`: Pearson chi^2 test of each cell's neighbourhood batch counts against the
  batch frequencies (Büttner et al. 2019); the acceptance rate is the share of cells with
  ``p >= alpha``. The neighbourhood counts the cell itself, as scib-metrics does.
- :func:`kbet` (scIB's per-label use): within each cell type with >= 10 cells and >= 2 batches, exact
  kNN on the embedding with ``k0 = clip(floor(mean batch size / 4), 10, 70)`` and the type's own batch
  frequencies as expectation; mean acceptance over types. A simplification of scIB's kBET (which
  uses the R package on diffusion-distance neighbours and a random subsample): documented, tested by
  hand.
- :func:`ebm` (scArches' entropy of batch mixing): entropy (log base = number of batches) of the
  batch counts among each cell's 15 nearest other cells, averaged over ``n_pools`` random draws of
  ``n_samples_per_pool`` cells (with replacement).
- :func:`knn_accuracy` (scArches' kNN purity): fraction of a cell's 15 nearest other cells sharing its
  label, averaged per label, then over labels.

Example
-------
>>> import numpy as np
>>> from scintegrate.metrics import knn_accuracy
>>> X = np.r_[np.zeros((30, 2)), np.full((30, 2), 50.0)] + np.random.default_rng(0).normal(size=(60, 2))
>>> knn_accuracy(X, np.repeat(["a", "b"], 30))
1.0
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ._checks import as_codes, as_embedding, warn_nan
from ._graph import resolve_graph


def graph_connectivity(X, labels, *, n_neighbors: int = 15, knn=None, device=None) -> float:
    """scIB graph connectivity on the ``n_neighbors``-NN graph (the cell counted among them)."""
    X = None if X is None else as_embedding(X)
    graph = resolve_graph(X, knn, n_neighbors - 1, device=device)
    codes, _ = as_codes(labels, graph.n, "labels")
    A = graph.adjacency(n_neighbors)
    return connectivity_of(A, codes)


def connectivity_of(A: sp.spmatrix, codes: np.ndarray) -> float:
    """Mean over labels of the largest connected component's share in the label's subgraph."""
    from scipy.sparse.csgraph import connected_components

    A = sp.csr_matrix(A)
    shares = []
    for lab in np.unique(codes):
        mask = codes == lab
        _, comp = connected_components(A[mask][:, mask], directed=False)
        shares.append(np.bincount(comp).max() / mask.sum())
    return float(np.mean(shares))


def kbet_acceptance(nbr_idx: np.ndarray, batch_codes: np.ndarray, *, alpha: float = 0.05,
                    expected=None) -> float:
    """Share of cells whose neighbourhood batch counts pass the chi^2 test at level ``alpha``.

    ``nbr_idx`` (n x k) lists each cell's neighbourhood (include the cell itself if it should count).
    ``expected`` are batch frequencies (default: those of ``batch_codes``).
    """
    from scipy.stats import chi2

    n_b = int(batch_codes.max()) + 1
    freq = np.bincount(batch_codes, minlength=n_b) / batch_codes.size if expected is None else np.asarray(expected)
    present = freq > 0
    k = nbr_idx.shape[1]
    rows = np.repeat(np.arange(nbr_idx.shape[0]), k)
    counts = np.bincount(rows * n_b + batch_codes[nbr_idx].ravel(), minlength=nbr_idx.shape[0] * n_b)
    counts = counts.reshape(-1, n_b)[:, present]
    exp = freq[present] * k
    stat = ((counts - exp) ** 2 / exp).sum(1)
    p = chi2.sf(stat, df=int(present.sum()) - 1)
    return float(np.mean(p >= alpha))


def kbet_k0(batch_codes: np.ndarray) -> int:
    """scIB's neighbourhood size: a quarter of the mean batch size, clipped to [10, 70]."""
    sizes = np.bincount(batch_codes)
    return int(min(70, max(10, np.floor(sizes[sizes > 0].mean() / 4))))


def kbet(X, batch, labels, *, alpha: float = 0.05, min_cells: int = 10, device=None, seed: int = 0) -> float:
    """kBET acceptance rate per cell type (see module docstring); NaN types are skipped."""
    from ..neighbors import knn

    X = as_embedding(X)
    bcodes, _ = as_codes(batch, X.shape[0], "batch")
    lcodes, _ = as_codes(labels, X.shape[0], "labels")
    if np.unique(bcodes).size < 2:
        return warn_nan("kbet", "only one batch; there is no batch mixing to test")
    scores = []
    for lab in np.unique(lcodes):
        mask = lcodes == lab
        sub, _ = as_codes(bcodes[mask], None, "batch")
        if mask.sum() < min_cells or np.unique(sub).size < 2:
            continue
        k0 = min(kbet_k0(sub), int(mask.sum()))
        idx, _ = knn(X[mask], k0 - 1, include_self=False, device=device, seed=seed)
        hood = np.hstack([np.arange(mask.sum())[:, None], idx])
        scores.append(kbet_acceptance(hood, sub, alpha=alpha))
    if not scores:
        return warn_nan("kbet", f"no cell type has >= {min_cells} cells in two or more batches")
    return float(np.mean(scores))


def batch_entropy(nbr_batches: np.ndarray, n_batches: int) -> np.ndarray:
    """Per-cell entropy (log base ``n_batches``) of the batch counts in its neighbourhood."""
    n, k = nbr_batches.shape
    rows = np.repeat(np.arange(n), k)
    p = np.bincount(rows * n_batches + nbr_batches.ravel(), minlength=n * n_batches).reshape(n, n_batches) / k
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(1) / np.log(n_batches)


def ebm(X, batch, *, n_neighbors: int = 15, n_pools: int = 100, n_samples_per_pool: int = 100,
        seed: int = 0, knn=None, device=None) -> float:
    """Entropy of batch mixing in [0, 1] (1 = every neighbourhood holds all batches equally)."""
    X = None if X is None else as_embedding(X)
    graph = resolve_graph(X, knn, n_neighbors, device=device, seed=seed)
    codes, _ = as_codes(batch, graph.n, "batch")
    n_b = int(np.unique(codes).size)
    if n_b < 2:
        return warn_nan("ebm", "only one batch; batch-mixing entropy needs log base >= 2")
    idx, _ = graph.others(n_neighbors)
    ent = batch_entropy(codes[idx], n_b)
    if n_pools <= 1:
        return float(ent.mean())
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, ent.size, size=(n_pools, n_samples_per_pool))
    return float(ent[draws].mean(1).mean())


def knn_accuracy(X, labels, *, n_neighbors: int = 15, knn=None, device=None) -> float:
    """Per-label mean share of same-label cells among each cell's ``n_neighbors`` nearest others."""
    X = None if X is None else as_embedding(X)
    graph = resolve_graph(X, knn, n_neighbors, device=device)
    codes, _ = as_codes(labels, graph.n, "labels")
    idx, _ = graph.others(n_neighbors)
    same = (codes[idx] == codes[:, None]).mean(1)
    per_label = np.bincount(codes, weights=same) / np.maximum(np.bincount(codes), 1)
    return float(per_label[np.bincount(codes) > 0].mean())
