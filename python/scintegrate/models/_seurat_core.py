"""Seurat v3 CCA anchors' numeric core (Stuart et al. 2019; Seurat 4.3's FindIntegrationAnchors + IntegrateData).

Arrays in, arrays out, no AnnData; R Seurat 4.3 was read as reference. Per pair of batches (:func:`find_anchors`):

- :func:`cca`: each cell's scaled values standardised over the features (Seurat's ``Standardize``), then the top
  ``dims`` singular vectors of ``Z1 Z2^T`` (never formed: QR of each side, SVD of the small product), signs set by
  the first cell; each cell's canonical vector scaled to unit length;
- anchors: mutual nearest neighbours (``k_anchor``) in that space;
- filtering: an anchor stays when its second cell is among the ``k_filter`` nearest of its first in the
  L2-normalised data of the features most associated with the canonical vectors (:func:`top_dim_features`);
- scoring: the shared neighbours of the two cells (``k_score`` in each batch), rescaled between the 0.01 and 0.9
  quantiles and clipped to [0, 1].

The reciprocal-PCA variant (:func:`find_anchors_rpca`, Seurat's advice for large data) finds the mutual neighbours
in each batch's own PCA space instead, with the other batch projected onto it, and does not filter.

Then (:func:`integrate_pair`) a query group is corrected towards a reference group: the anchors' differences
``query - reference``, weighted per query cell over its ``k_weight`` nearest anchor cells in a PCA of the two
groups (``1 - exp(-(1 - d / d_k) * score / (2 / sd)^2)``, normalised), subtracted from its values; groups merge
along :func:`guide_tree` (complete linkage on ``min(n_i, n_j) / anchors``). Anchors and weights are sparse.

Example
-------
>>> import numpy as np
>>> from scintegrate.models._seurat_core import top_dim_features
>>> loadings = np.random.default_rng(0).normal(size=(500, 30))
>>> len(top_dim_features(loadings)) < 200
True
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np
import scipy.sparse as sp


def standardize_cells(Z: np.ndarray) -> np.ndarray:
    """Each row centred and divided by its standard deviation (n - 1), as Seurat's ``Standardize`` does to the
    columns of its features x cells matrix (a constant row stays zero)."""
    Z = np.asarray(Z, dtype=np.float64)
    centred = Z - Z.mean(1, keepdims=True)
    sd = np.sqrt((centred ** 2).sum(1, keepdims=True) / max(Z.shape[1] - 1, 1))
    sd[sd == 0] = 1.0
    return centred / sd


def cca_factor(Z: np.ndarray, dtype=np.float64) -> Tuple[np.ndarray, np.ndarray]:
    """``(Q, R)``: the QR factors of :func:`standardize_cells` of one batch's scaled values (cells x features),
    computed once per batch and shared by all its pairs."""
    return np.linalg.qr(standardize_cells(Z).astype(dtype, copy=False))


def cca(Z1, Z2, n_cc: int, *, factors=None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(u, v, d)``: the top ``n_cc`` singular triplets of ``S1 S2^T`` (``S``: :func:`standardize_cells` of the
    scaled values, cells x features), each column's sign set so that the first cell of batch 1 is positive.

    ``S1 S2^T = Q1 (R1 R2^T) Q2^T`` is never formed; the small ``R1 R2^T`` (at most features x features) is
    decomposed exactly (its top ``n_cc`` by ARPACK when it is larger than ``3 n_cc``; a randomized SVD is not
    accurate enough here: the canonical correlations lie close together). ``factors``: the two batches'
    :func:`cca_factor` results, when already computed.
    """
    (Q1, R1), (Q2, R2) = factors if factors is not None else (cca_factor(Z1), cca_factor(Z2))
    M = (R1 @ R2.T).astype(np.float64)
    n_cc = int(min(n_cc, *M.shape))
    if min(M.shape) <= 3 * n_cc:
        U, d, Vt = np.linalg.svd(M)
        U, d, V = U[:, :n_cc], d[:n_cc], Vt[:n_cc].T
    else:  # the top n_cc only, to machine precision (ARPACK, a fixed start vector): 4-5x faster at 2,000
        from scipy.sparse.linalg import svds

        U, d, Vt = svds(M, k=n_cc, v0=np.full(min(M.shape), min(M.shape) ** -0.5), solver="arpack")
        order = np.argsort(-d, kind="stable")
        U, d, V = U[:, order], d[order], Vt[order].T
    u, v = Q1 @ U.astype(Q1.dtype), Q2 @ V.astype(Q2.dtype)
    sign = np.where(u[0] < 0, -1.0, 1.0)
    return np.asarray(u * sign, dtype=np.float64), np.asarray(v * sign, dtype=np.float64), d


def l2_rows(M: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (rows of zeros stay zero: Seurat's ``L2Norm``)."""
    norm = np.linalg.norm(M, axis=1, keepdims=True)
    return np.divide(M, norm, out=np.zeros_like(M, dtype=np.float64), where=norm > 0)


def _top(column: np.ndarray, num: int) -> List[int]:
    """Seurat's ``Top(balanced = TRUE)``: ``round(num / 2)`` most positive and most negative rows (one feature
    of the largest magnitude when ``num == 1``)."""
    if num == 1:
        return [int(np.argmax(np.abs(column)))]
    half = int(round(num / 2))  # R and Python both round half to even
    order = np.argsort(-column, kind="stable")
    positive, negative = list(order[:half]), list(order[::-1][:half])
    if positive[-1] == negative[-1]:
        negative = negative[:-1]
    return [int(i) for i in positive + negative]


def top_dim_features(loadings: np.ndarray, features_per_dim: int = 100, max_features: int = 200) -> np.ndarray:
    """Seurat's ``TopDimFeatures``: the features among the top ``y`` per dimension (balanced), with ``y`` the
    largest number that keeps the union below ``max(2 * dims, max_features)`` features; indices into the rows."""
    n_dims = loadings.shape[1]
    cap = max(2 * n_dims, max_features)
    num = min(features_per_dim, loadings.shape[0])
    counts = [len({f for dim in range(n_dims) for f in _top(loadings[:, dim], y)}) for y in range(1, num + 1)]
    below = [c for c in counts if c < cap] or counts[:1]
    per_dim = int(np.argmax(below)) + 1
    seen = dict.fromkeys(f for dim in range(n_dims) for f in _top(loadings[:, dim], per_dim))
    return np.asarray(list(seen), dtype=np.int64)


def knn(query: np.ndarray, data: np.ndarray, k: int, device="cpu") -> Tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean ``k`` nearest rows of ``data`` for each row of ``query`` (indices, distances)."""
    import torch

    from ._exact_knn import knn_into_exact

    Q = torch.as_tensor(np.ascontiguousarray(query, dtype=np.float32), device=device)
    R = torch.as_tensor(np.ascontiguousarray(data, dtype=np.float32), device=device)
    return knn_into_exact(Q, R, int(min(k, R.shape[0])), "euclidean")


def anchor_pairs(nn_ab: np.ndarray, nn_ba: np.ndarray, k_anchor: int) -> Tuple[np.ndarray, np.ndarray]:
    """Seurat's ``FindAnchorPairs``: ``(a, b)`` with ``b`` among the ``k_anchor`` nearest of ``a`` in batch 2 and
    ``a`` among those of ``b`` in batch 1, ordered by ``a``, then by the rank of ``b``."""
    ab = nn_ab[:, :k_anchor]
    a = np.repeat(np.arange(ab.shape[0]), ab.shape[1])
    b = ab.ravel()
    mutual = (nn_ba[b, :k_anchor] == a[:, None]).any(1)
    return a[mutual], b[mutual]


def score_anchors(a, b, nn_aa, nn_ab, nn_ba, nn_bb, k_score: int) -> np.ndarray:
    """Seurat's ``ScoreAnchors``: shared neighbours of ``a`` (its ``k_score`` in batch 1, self included, and in
    batch 2) and ``b`` (the same from batch 2), rescaled between the 0.01 and 0.9 quantiles, clipped to [0, 1]."""
    if a.size == 0:
        return np.zeros(0)
    n1 = nn_aa.shape[0]
    set_a = np.concatenate([nn_aa[a, :k_score], nn_ab[a, :k_score] + n1], 1)
    set_b = np.concatenate([nn_ba[b, :k_score], nn_bb[b, :k_score] + n1], 1)
    both = np.sort(np.concatenate([set_a, set_b], 1), axis=1)
    shared = (both[:, 1:] == both[:, :-1]).sum(1).astype(np.float64)
    low, high = np.quantile(shared, 0.01), np.quantile(shared, 0.9)
    if high == low:
        return np.ones_like(shared)
    return np.clip((shared - low) / (high - low), 0.0, 1.0)


def find_anchors(scaled1, scaled2, data1, data2, *, dims: int = 30, k_anchor: int = 5, k_filter: int = 200,
                 k_score: int = 30, max_features: int = 200, factors=None, device="cpu") -> dict:
    """Anchors between two batches (Seurat's CCA path of ``FindIntegrationAnchors`` for one pair).

    ``scaled*``: each batch's scaled values of the integration features (cells x features, its own
    ``ScaleData``); ``data*``: the log-normalised values of the same features (dense or sparse), for the
    filtering. Returns ``{"cell1", "cell2", "score"}`` (rows of each batch) and ``"n_unfiltered"``,
    ``"filtered"`` (whether ``k_filter`` applied: not when a batch holds fewer cells, as in Seurat). ``factors``:
    the two batches' :func:`cca_factor` results, when already computed (once per batch, not per pair).
    """
    u, v, _ = cca(scaled1, scaled2, dims, factors=factors)
    loadings = np.concatenate([scaled1, scaled2]).T @ np.concatenate([u, v])
    E1, E2 = l2_rows(u), l2_rows(v)
    n1, n2 = E1.shape[0], E2.shape[0]
    k_nb = max(k_anchor, k_score)
    nn_aa, _ = knn(E1, E1, k_nb + 1, device)
    nn_bb, _ = knn(E2, E2, k_nb + 1, device)
    nn_ab, _ = knn(E1, E2, k_nb, device)
    nn_ba, _ = knn(E2, E1, k_nb, device)
    a, b = anchor_pairs(nn_ab, nn_ba, min(k_anchor, nn_ab.shape[1], nn_ba.shape[1]))
    n_unfiltered = int(a.size)
    filtered = min(n1, n2) >= k_filter and a.size > 0
    if filtered:
        features = top_dim_features(loadings, 100, max_features)
        cells = np.unique(a)
        cn1 = l2_rows(_dense(data1[cells][:, features]))
        cn2 = l2_rows(_dense(data2[:, features]))
        nn, _ = knn(cn1, cn2, k_filter, device)
        slot = np.searchsorted(cells, a)
        keep = (nn[slot] == b[:, None]).any(1)
        a, b = a[keep], b[keep]
    k_s = min(k_score, nn_aa.shape[1], nn_ab.shape[1], nn_ba.shape[1], nn_bb.shape[1])
    score = score_anchors(a, b, nn_aa, nn_ab, nn_ba, nn_bb, k_s)
    return {"cell1": a, "cell2": b, "score": score, "n_unfiltered": n_unfiltered, "filtered": bool(filtered)}


def rpca_spaces(pc1, pc2, scaled1, scaled2) -> Tuple[np.ndarray, np.ndarray]:
    """Seurat's ``ReciprocalProject`` for one pair: ``(ref, query)``, both batches' cells (batch 1 first) in batch 1's
    PCA space (its own scores, batch 2's scaled values projected on its loadings) and in batch 2's; each
    dimension divided by its standard deviation over all cells, then each cell scaled to unit length.
    ``pc*``: ``(scores, loadings)`` of each batch's own PCA of its scaled values."""
    ref = np.concatenate([pc1[0], scaled2 @ pc1[1]])
    query = np.concatenate([scaled1 @ pc2[1], pc2[0]])
    return tuple(l2_rows(E / np.where(E.std(0, ddof=1) > 0, E.std(0, ddof=1), 1.0)) for E in (ref, query))


def find_anchors_rpca(pc1, pc2, scaled1, scaled2, *, k_anchor: int = 5, k_score: int = 30, device="cpu") -> dict:
    """Anchors between two batches by reciprocal PCA (Seurat's ``reduction = "rpca"``): the neighbours of batch 1's
    cells among batch 2's in batch 2's space and those of batch 2's among batch 1's in batch 1's
    (:func:`rpca_spaces`), each batch's own neighbours in its own PCA, no filtering (as Seurat), the same scores."""
    ref, query = rpca_spaces(pc1, pc2, scaled1, scaled2)
    n1 = pc1[0].shape[0]
    k_nb = max(k_anchor, k_score)
    nn_aa, _ = knn(pc1[0], pc1[0], k_nb + 1, device)
    nn_bb, _ = knn(pc2[0], pc2[0], k_nb + 1, device)
    nn_ab, _ = knn(query[:n1], query[n1:], k_nb, device)
    nn_ba, _ = knn(ref[n1:], ref[:n1], k_nb, device)
    a, b = anchor_pairs(nn_ab, nn_ba, min(k_anchor, nn_ab.shape[1], nn_ba.shape[1]))
    k_s = min(k_score, nn_aa.shape[1], nn_ab.shape[1], nn_ba.shape[1], nn_bb.shape[1])
    score = score_anchors(a, b, nn_aa, nn_ab, nn_ba, nn_bb, k_s)
    return {"cell1": a, "cell2": b, "score": score, "n_unfiltered": int(a.size), "filtered": True}


def _dense(X) -> np.ndarray:
    return np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)


def guide_tree(similarity: np.ndarray) -> List[Tuple[List[int], List[int]]]:
    """Complete-linkage agglomeration (R's ``hclust`` default) on ``1 / similarity`` (Seurat's
    ``BuildSampleTree``): the merges in order, each as the two groups of batches it joins."""
    n = similarity.shape[0]
    with np.errstate(divide="ignore"):
        dist = np.where(similarity > 0, 1.0 / np.where(similarity > 0, similarity, 1.0), np.inf)
    groups = {i: [i] for i in range(n)}
    merges = []
    while len(groups) > 1:
        keys = sorted(groups)
        best, pair = None, None
        for x in range(len(keys)):
            for y in range(x + 1, len(keys)):
                d = max(dist[i, j] for i in groups[keys[x]] for j in groups[keys[y]])
                if best is None or d < best:
                    best, pair = d, (keys[x], keys[y])
        left, right = groups.pop(pair[0]), groups.pop(pair[1])
        merges.append((left, right))
        groups[n + len(merges)] = left + right
    return merges


def integrate_pair(values: np.ndarray, ref_rows: np.ndarray, query_rows: np.ndarray, anchor_ref: np.ndarray,
                   anchor_query: np.ndarray, score: np.ndarray, *, dims: int = 30, k_weight: int = 100,
                   sd_weight: float = 1.0, seed: int = 0, device="cpu") -> Tuple[np.ndarray, dict]:
    """The query rows of ``values`` (cells x features) corrected towards the reference rows (Seurat's
    ``RunIntegration``): returns ``(corrected query values, info)``. Anchors are given as rows of ``values``."""
    from ..pp.pca import pca
    from ..pp.scale import scale_matrix

    merged = np.concatenate([ref_rows, query_rows])
    scaled = scale_matrix(values[merged], max_value=10.0)
    n_comps = int(min(dims, merged.size - 1, scaled.shape[1] - 1))
    scores, _, _ = pca(scaled, n_comps, seed=seed)
    position = np.empty(values.shape[0], dtype=np.int64)
    position[merged] = np.arange(merged.size)
    embed_query = scores[position[query_rows]]
    anchor_cells, slot = np.unique(anchor_query, return_inverse=True)
    k = int(min(k_weight, anchor_query.size, anchor_cells.size))
    idx, dist = knn(embed_query, scores[position[anchor_cells]], k, device)
    dist = dist.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = 1.0 - dist / dist[:, -1:]
    rel = np.nan_to_num(rel, nan=0.0)
    W = _weights(rel, idx, slot, score, k, sd_weight)
    sums = np.asarray(W.sum(1)).ravel()
    unweighted = int((sums <= 0).sum())
    W = sp.diags(np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)) @ W
    difference = values[anchor_query] - values[anchor_ref]
    corrected = values[query_rows] - np.asarray(W @ difference, dtype=values.dtype)
    return corrected, {"k_weight": k, "n_anchors": int(anchor_query.size), "unweighted_cells": unweighted}


def _weights(rel, idx, slot, score, k: int, sd_weight: float) -> sp.csr_matrix:
    """Seurat's ``FindWeightsC``: for each query cell, its neighbours' anchors in order (an anchor cell may hold
    several anchors) until ``k`` weights, each ``1 - exp(-rel * score / (2 / sd)^2)``; cells x anchors."""
    order = np.argsort(slot, kind="stable")
    starts = np.searchsorted(slot[order], np.arange(idx.max() + 1 if idx.size else 0))
    counts = np.bincount(slot, minlength=starts.size)
    n_cells, n_nb = idx.shape
    c = counts[idx]  # anchors held by each neighbour
    before = np.cumsum(c, 1) - c  # weights already taken before each neighbour
    take = np.clip(k - before, 0, c)
    cell = np.repeat(np.repeat(np.arange(n_cells), n_nb), take.ravel())
    nb_flat = np.repeat(np.arange(n_cells * n_nb), take.ravel())
    offset = np.arange(cell.size) - np.repeat(np.cumsum(take.ravel()) - take.ravel(), take.ravel())
    anchor = order[starts[idx.ravel()[nb_flat]] + offset]
    weight = 1.0 - np.exp(-rel.ravel()[nb_flat] * score[anchor] / (2.0 / sd_weight) ** 2)
    return sp.csr_matrix((weight, (cell, anchor)), shape=(n_cells, score.size))
