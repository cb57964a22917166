"""scIB metrics built on silhouettes and principal components (Luecken et al. 2022, ``scib`` package).

- :func:`asw_label`: cell-type average silhouette width (Euclidean), scaled ``(ASW + 1) / 2``.
- :func:`asw_batch`: within each cell type, silhouette of the batches, ``1 - |s|`` per cell, averaged
  per cell type and then over cell types; types present in one batch only (or with as many batches as
  cells) are skipped, as in scib.
- :func:`isolated_labels`: labels present in the fewest batches (scib's rule: every label whose
  number of batches equals the minimum; when all labels are in all batches, all are "isolated").
- :func:`isolated_label_asw`: for each isolated label, the silhouette of the two groups "label" vs.
  "all other cells" over all cells, scaled ``(ASW + 1) / 2``; mean over isolated labels (scib's
  definition; scib-metrics instead averages the label's own cells' multi-class silhouette).
- :func:`isolated_label_f1`: for each isolated label, the best F1 of any cluster of a resolution sweep
  (see :func:`~scintegrate.metrics.clustering.resolution_sweep`); mean over isolated labels.
- :func:`pcr` / :func:`pcr_comparison`: variance of the embedding's principal components explained
  by batch (R^2 of a one-hot regression, weighted by PC variance); the comparison is
  ``(PCR_before - PCR_after) / PCR_before`` clipped at 0.

Example
-------
>>> import numpy as np
>>> from scintegrate.metrics import asw_label
>>> X = np.r_[np.zeros((20, 2)), np.ones((20, 2)) * 10] + np.random.default_rng(0).normal(size=(40, 2))
>>> bool(asw_label(X, np.repeat(["a", "b"], 20)) > 0.9)
True
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

from ._checks import as_codes, as_embedding, check_same_rows, warn_nan
from ._silhouette import binary_sums, group_distance_sums, silhouette_from_sums


def _label_sums(X, codes, device=None):
    return group_distance_sums(X, codes, int(codes.max()) + 1, "euclidean", device=device)


def asw_label(X, labels, *, device=None, sums: Optional[np.ndarray] = None) -> float:
    """Cell-type ASW scaled to [0, 1] (``sums``: precomputed label distance sums, for reuse)."""
    X = as_embedding(X)
    codes, _ = as_codes(labels, X.shape[0], "labels")
    n_lab = np.unique(codes).size
    if not 2 <= n_lab <= X.shape[0] - 1:
        return warn_nan("asw_label", f"silhouette needs 2..n-1 labels, got {n_lab} for {X.shape[0]} cells")
    S = _label_sums(X, codes, device) if sums is None else sums
    return float((silhouette_from_sums(S, codes).mean() + 1) / 2)


def asw_batch(X, batch, labels, *, device=None) -> float:
    """scib's batch ASW: mean over cell types of mean ``1 - |silhouette of batch|`` within the type."""
    X = as_embedding(X)
    bcodes, _ = as_codes(batch, X.shape[0], "batch")
    lcodes, _ = as_codes(labels, X.shape[0], "labels")
    per_label = []
    for lab in np.unique(lcodes):
        mask = lcodes == lab
        sub_codes, _ = as_codes(bcodes[mask], None, "batch")
        n_b = np.unique(sub_codes).size
        if n_b == 1 or n_b == mask.sum():
            continue
        S = group_distance_sums(X[mask], sub_codes, n_b, "euclidean", device=device)
        per_label.append(np.mean(1 - np.abs(silhouette_from_sums(S, sub_codes))))
    if not per_label:
        return warn_nan("asw_batch", "no cell type is present in two or more batches")
    return float(np.mean(per_label))


def isolated_labels(batch, labels, iso_threshold: Optional[int] = None) -> np.ndarray:
    """Label names present in at most ``iso_threshold`` batches (default: the minimum over labels)."""
    bcodes, _ = as_codes(batch, None, "batch")
    lcodes, lnames = as_codes(labels, bcodes.size, "labels")
    pairs = pd.DataFrame({"l": lcodes, "b": bcodes}).drop_duplicates()
    n_batches = pairs.groupby("l")["b"].count()
    thr = int(n_batches.min()) if iso_threshold is None else int(iso_threshold)
    return lnames[n_batches.index[n_batches <= thr].to_numpy()]


def isolated_label_asw(X, batch, labels, *, iso_threshold=None, device=None,
                       sums: Optional[np.ndarray] = None) -> float:
    """Mean over isolated labels of the scaled silhouette of "label vs. rest" (scib, ``cluster=False``)."""
    X = as_embedding(X)
    codes, names = as_codes(labels, X.shape[0], "labels")
    iso = isolated_labels(batch, labels, iso_threshold)
    if np.unique(codes).size < 2:
        return warn_nan("isolated_label_asw", "only one label; 'label vs. rest' needs two groups")
    S = _label_sums(X, codes, device) if sums is None else sums
    scores = []
    for name in iso:
        g = int(np.flatnonzero(names == name)[0])
        two = np.where(codes == g, 0, 1)
        scores.append((silhouette_from_sums(binary_sums(S, g), two).mean() + 1) / 2)
    return float(np.mean(scores))


def best_f1_per_label(labels_codes: np.ndarray, clusters: np.ndarray, n_labels: int) -> np.ndarray:
    """For each label, the highest F1 of "cell in cluster c" as a predictor of "cell has the label"."""
    n_clu = int(clusters.max()) + 1
    table = np.zeros((n_labels, n_clu))
    np.add.at(table, (labels_codes, clusters), 1.0)
    f1 = 2 * table / (table.sum(1, keepdims=True) + table.sum(0, keepdims=True))
    return f1.max(1)


def isolated_label_f1(batch, labels, clusterings: Sequence[np.ndarray], *, iso_threshold=None) -> float:
    """Mean over isolated labels of the best cluster F1 over all ``clusterings`` (e.g. a sweep)."""
    codes, names = as_codes(labels, None, "labels")
    iso = isolated_labels(batch, labels, iso_threshold)
    best = np.zeros(names.size)
    for clusters in clusterings:
        best = np.maximum(best, best_f1_per_label(codes, np.asarray(clusters), names.size))
    return float(np.mean([best[np.flatnonzero(names == name)[0]] for name in iso]))


def pcr(X, batch, *, n_comps: int = 50, seed: int = 0) -> float:
    """Share of the variance of ``X``'s first ``n_comps`` PCs explained by batch (scib's ``pcr``)."""
    X = as_embedding(X)
    codes, _ = as_codes(batch, X.shape[0], "batch")
    scores, var = _pca(X, n_comps, seed)
    counts = np.bincount(codes).astype(float)
    group_sum = np.zeros((counts.size, scores.shape[1]))
    np.add.at(group_sum, codes, scores)
    between = (group_sum**2 / np.maximum(counts, 1)[:, None]).sum(0)  # sum_b n_b * mean_b^2 (centred)
    total = (scores**2).sum(0)
    r2 = np.where(total > 0, np.clip(between / np.where(total > 0, total, 1), 0, 1), 0.0)
    return float((r2 * var).sum() / var.sum())


def _pca(X: np.ndarray, n_comps: int, seed: int):
    """PC scores and variances (scanpy's choice: all components when ``n_comps >= min(n, d)``)."""
    Xc = X - X.mean(0)
    n_comps = min(n_comps, min(X.shape))
    if n_comps == min(X.shape):
        U, s, _ = np.linalg.svd(Xc, full_matrices=False)
        scores, sv = U[:, :n_comps] * s[:n_comps], s[:n_comps]
    else:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=n_comps, svd_solver="arpack", random_state=seed).fit(Xc)
        return pca.transform(Xc), pca.explained_variance_
    return scores, sv**2 / max(X.shape[0] - 1, 1)


def pcr_comparison(X_before, X_after, batch, *, n_comps: int = 50, seed: int = 0) -> float:
    """``(PCR_before - PCR_after) / PCR_before``, clipped at 0 (1 = batch variance fully removed)."""
    X_before = as_embedding(X_before, "X_unintegrated")
    X_after = as_embedding(X_after)
    check_same_rows(X_after, X_before, "X_unintegrated")
    if np.unique(as_codes(batch, X_after.shape[0], "batch")[0]).size < 2:
        return warn_nan("pcr_comparison", "only one batch; there is no batch variance to remove")
    before = pcr(X_before, batch, n_comps=n_comps, seed=seed)
    after = pcr(X_after, batch, n_comps=n_comps, seed=seed)
    if before <= 0:
        return warn_nan("pcr_comparison", "batch explains no variance before integration")
    return float(max(0.0, (before - after) / before))
