"""fastMNN's numeric core (Haghverdi et al. 2018; batchelor's ``fastMNN``): arrays and tensors, no AnnData.

The steps, in the order :class:`scintegrate.models.fastmnn.FastMNN` runs them:

- :func:`multibatch_pca`: the cells (cosine-normalised by the caller) centred on the mean of the batch means and
  projected on the top ``d`` right singular vectors of the matrix in which each batch's rows are scaled by
  ``1 / sqrt(n_batch)``, so that every batch weighs the same in the rotation (batchelor's ``multiBatchPCA``);
- :func:`merge_mnn`: one merge of two groups of batches (``left``, the reference, and ``right``):
  1. each side is centred along the batch vectors of the other side's earlier merges (batchelor's
     orthogonalisation);
  2. mutual nearest neighbours (``k`` each way, exact Euclidean search, :mod:`._exact_knn`);
  3. the correction of each paired ``right`` cell, the mean of ``left - right`` over its pairs; their mean is the
     batch vector, and the variation along it is removed within each side (the "kissing" fix);
  4. the corrections recomputed on the centred values and smoothed over every ``right`` cell: a tricube kernel on
     its ``k`` nearest paired cells, bandwidth ``ndist`` times the distance to the middle one of them;
- :func:`merge_all`: merges in a given order (each batch onto everything merged before it) or by batchelor's
  ``auto.merge`` rule (the two groups with the most MNN pairs first, counts recomputed after each merge).

Example
-------
>>> import numpy as np, torch
>>> from scintegrate.models._fastmnn_core import merge_all
>>> rng = np.random.default_rng(0)
>>> E = torch.as_tensor(np.r_[rng.normal(size=(200, 5)), rng.normal(size=(200, 5)) + 3], dtype=torch.float32)
>>> out = merge_all(E, [np.arange(200), np.arange(200, 400)], [0, 1], k=5)  # batch means 6.8 apart
>>> bool((out.corrected[200:].mean(0) - out.corrected[:200].mean(0)).norm() < 1.0)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np

from ._exact_knn import knn_into_exact, torch_matrix
from ._ivf_knn import knn_into_approx
from ._mnn_common import randomized_svd

#: with ``knn_method="ivf"``, a side of more than this many rows is searched by inverted lists (exactly below)
EXACT_MAX = 20_000


def multibatch_pca(X, codes: np.ndarray, n_batches: int, d: int, *, seed: int = 0, device="cpu",
                   oversample: int = 10, n_iter: int = 4):
    """``(scores, rotation, center)`` of batchelor's multi-batch PCA of ``X`` (cells x genes, sparse or dense).

    ``center`` is the mean of the batch means (p); the rotation (p x d) holds the top right singular vectors of
    ``diag(1 / sqrt(n_b)) (X - 1 center^T)``, found by a randomized SVD (Halko et al. 2011; ``oversample`` extra
    columns, ``n_iter`` power iterations, start matrix from ``seed``; batchelor uses irlba) with the centring
    implicit (sparse stays sparse); ``scores = (X - 1 center^T) rotation`` (n x d), all float32 torch tensors.
    Signs are fixed by the genes (the largest loading of each component is positive), so permuting the cells
    permutes the rows of the scores and changes nothing else.
    """
    import scipy.sparse as sp
    import torch

    n, p = X.shape
    d = int(min(d, n, p))
    width = int(min(d + oversample, n, p))
    A = torch_matrix(X, device)
    At = torch_matrix(X.T.tocsr() if sp.issparse(X) else np.ascontiguousarray(X.T), device)
    codes_t = torch.as_tensor(np.asarray(codes, dtype=np.int64), device=device)
    sizes = torch.bincount(codes_t, minlength=n_batches).to(torch.float32)
    onehot = torch.zeros(n, n_batches, device=device)
    onehot[torch.arange(n, device=device), codes_t] = 1.0
    means = At @ (onehot / sizes.clamp_min(1.0)[None, :])  # p x B
    center = means[:, sizes > 0].mean(1)
    w = (1.0 / sizes.clamp_min(1.0).sqrt())[codes_t][:, None]

    def times(M):  # W (X - 1 c^T) M
        return w * (A @ M - (center @ M)[None, :])

    def t_times(M):  # (W (X - 1 c^T))^T M
        WM = w * M
        return At @ WM - center[:, None] * WM.sum(0)[None, :]

    _, _, _, Vt = randomized_svd(times, t_times, p, width, seed=seed, n_iter=n_iter, device=device)
    Vt = Vt[:d]
    sign = torch.sign(Vt.gather(1, Vt.abs().argmax(1, keepdim=True)))
    sign[sign == 0] = 1.0
    rotation = (Vt * sign).T.float().contiguous()  # p x d
    scores = A @ rotation - (center @ rotation)[None, :]
    return scores, rotation, center


def center_along(M, vector, rows=None):
    """``M`` with its variation along ``vector`` removed: every row moved along the unit ``vector`` to the mean
    position of the rows (of ``rows``, when given) on it (batchelor's ``.center_along_batch_vector``)."""
    unit = vector / vector.norm().clamp_min(1e-12)
    along = M @ unit
    mid = along.mean() if rows is None else along[rows].mean()
    return M + (mid - along)[:, None] * unit[None, :]


def average_correction(left, right, pairs_left, pairs_right):
    """``(corrections, cells)``: for each ``right`` cell in a pair (``cells``, sorted), the mean of
    ``left[a] - right[b]`` over its pairs ``(a, b)``."""
    import torch

    pl = torch.as_tensor(pairs_left, device=left.device)
    pr = torch.as_tensor(pairs_right, device=left.device)
    cells, slot = torch.unique(pr, return_inverse=True)
    total = torch.zeros(cells.numel(), left.shape[1], device=left.device, dtype=left.dtype)
    total.index_add_(0, slot, left[pl] - right[pr])
    count = torch.bincount(slot, minlength=cells.numel()).to(left.dtype)
    return total / count[:, None], cells


def tricube_average(values, idx, dist, ndist: float = 3.0):
    """Tricube-weighted mean of ``values[idx]`` per row: bandwidth ``ndist`` times the distance to the middle
    neighbour (the ``ceil(k / 2)``-th), at least 1e-8 (batchelor's ``.compute_tricube_average``)."""
    import torch

    middle = (idx.shape[1] + 1) // 2 - 1
    bandwidth = (dist[:, middle] * ndist).clamp_min(1e-8)
    rel = (dist / bandwidth[:, None]).clamp(max=1.0)
    weight = (1.0 - rel ** 3) ** 3
    weight = weight / weight.sum(1, keepdim=True).clamp_min(torch.finfo(weight.dtype).tiny)
    return (values[idx] * weight[:, :, None]).sum(1)


def knn_into(Q, R, k: int, knn_method: str = "exact", seed: int = 0):
    """Euclidean ``k`` neighbours ``(indices, distances)`` of the rows of ``Q`` among those of ``R``: exact, or
    from inverted lists (:func:`scintegrate.models._ivf_knn.knn_into_approx`) when ``knn_method="ivf"`` and ``R``
    has more than :data:`EXACT_MAX` rows. The exact search of a batch against a reference of every batch merged
    before it costs O(n_batch * n_reference), so merging B batches of n cells costs O(B^2 n^2); the lists probe a
    tenth of the reference."""
    if knn_method == "ivf" and R.shape[0] > EXACT_MAX:
        return knn_into_approx(Q, R, k, "euclidean", seed=seed)
    return knn_into_exact(Q, R, k, "euclidean")


def mnn_pairs(left, right, k: int, knn_method: str = "exact", seed: int = 0):
    """Mutual nearest neighbour pairs ``(a, b)`` (rows of ``left``, rows of ``right``, sorted) with ``k``
    neighbours each way, capped at the size of the other side (searched by :func:`knn_into`).

    The neighbours of the ``right`` rows among the ``left`` ones are searched first; only the ``left`` rows
    found there can be in a pair, so only theirs are searched among the ``right`` rows (2-3x faster than one
    pass over every pair when ``left`` is the larger side, the same pairs).
    """
    import torch

    n_right = right.shape[0]
    nn_rl, _ = knn_into(right, left, min(k, left.shape[0]), knn_method, seed)
    candidates = np.unique(nn_rl)
    nn_lr, _ = knn_into(left[torch.as_tensor(candidates, device=left.device)], right, min(k, n_right),
                        knn_method, seed + 1)
    forward = np.repeat(candidates, nn_lr.shape[1]) * n_right + nn_lr.ravel()
    backward = nn_rl.ravel() * n_right + np.repeat(np.arange(n_right, dtype=np.int64), nn_rl.shape[1])
    both = np.intersect1d(forward, backward)
    return both // n_right, both % n_right


@dataclass
class Group:
    """Batches merged so far: their rows (into the full data), values, member batches and batch vectors."""

    rows: np.ndarray
    values: object
    batches: List[int]
    vectors: list = field(default_factory=list)


@dataclass
class MergeResult:
    """What :func:`merge_all` returns: the corrected values (rows as in the input) and, per merge, the batches
    on each side, the MNN pairs (rows of the input), the share of each batch's variance lost, the share of the
    right side's cells in a pair and the batch magnitude (:func:`batch_magnitude`)."""

    corrected: object
    left: List[List[int]]
    right: List[List[int]]
    pairs: List[np.ndarray]
    lost_variance: np.ndarray
    paired_share: List[float]
    magnitude: List[float]


def _variance(values, batches_of_rows, batches):
    """Total variance of each batch's rows."""
    return [float(values[batches_of_rows == b].var(0, unbiased=True).nan_to_num(0.0).sum()) for b in batches]


def merge_mnn(left: Group, right: Group, batch_of, *, k: int = 20, ndist: float = 3.0, knn_method: str = "exact",
              seed: int = 0):
    """Merge ``right`` onto ``left``: returns ``(merged group, pairs (left rows, right rows), lost variance of the
    member batches, share of right cells in a pair, batch magnitude)``. ``batch_of``: the batch of every row;
    ``knn_method``, ``seed``: the searches' (:func:`knn_into`)."""
    import torch

    b_left, b_right = batch_of[left.rows], batch_of[right.rows]
    before = _variance(left.values, b_left, left.batches) + _variance(right.values, b_right, right.batches)
    L, R = _orthogonalised(left, right)
    a, b = mnn_pairs(L, R, k, knn_method, seed)
    corrections, _ = average_correction(L, R, a, b)
    batch_vector = corrections.mean(0)
    magnitude = batch_magnitude(corrections, batch_vector)
    L, R = center_along(L, batch_vector), center_along(R, batch_vector)
    after = _variance(L, b_left, left.batches) + _variance(R, b_right, right.batches)
    corrections, paired = average_correction(L, R, a, b)
    n_near = min(k, int(paired.numel()))
    idx, dist = knn_into(R, R[paired], n_near, knn_method, seed + 2)
    idx, dist = torch.as_tensor(idx, device=R.device), torch.as_tensor(dist, device=R.device)
    R = R + tricube_average(corrections, idx, dist, ndist)
    lost = [1.0 - (n / o if o > 0 else 1.0) for n, o in zip(after, before)]
    merged = Group(np.concatenate([left.rows, right.rows]), torch.cat([L, R]), left.batches + right.batches,
                   left.vectors + right.vectors + [batch_vector])
    pairs = np.stack([left.rows[a], right.rows[b]], 1)
    return merged, pairs, lost, float(paired.numel()) / right.values.shape[0], magnitude


def batch_magnitude(corrections, mean) -> float:
    """``|mean correction| / sqrt(mean |correction|^2)``: 1 when every paired cell moves the same way, near 0
    when the corrections point every which way (batchelor's ``batch.size``, from ``.get_batch_magnitude``)."""
    spread = float((corrections ** 2).sum(1).mean())
    return 0.0 if spread == 0 else float(mean.norm()) / spread ** 0.5


def _orthogonalised(left: Group, right: Group):
    """Each side's values centred along the batch vectors of the other side's earlier merges (batchelor's
    ``.orthogonalize_other``)."""
    L, R = left.values, right.values
    for vector in left.vectors:
        R = center_along(R, vector)
    for vector in right.vectors:
        L = center_along(L, vector)
    return L, R


def _count_pairs(x: Group, y: Group, k: int, knn_method: str = "exact", seed: int = 0) -> int:
    return int(mnn_pairs(*_orthogonalised(x, y), k, knn_method, seed)[0].size)


def merge_all(E, cells: Sequence[np.ndarray], order: Optional[Sequence[int]], *, k: int = 20, ndist: float = 3.0,
              knn_method: str = "exact", seed: int = 0, progress=None) -> MergeResult:
    """All batches of ``E`` (n x d tensor; ``cells[b]``: the rows of batch ``b``) merged into one.

    ``order``: the batches in merge order (the first is the reference; each next one is merged onto everything
    merged before it), or ``None`` for batchelor's ``auto.merge``: the two groups with the most MNN pairs are
    merged first, and the counts of the new group are recomputed after each merge (more searches). ``progress``:
    a callable told of each merge. ``knn_method``, ``seed``: the neighbour searches' (:func:`knn_into`).
    """
    import torch

    n_batches = len(cells)
    batch_of = np.empty(E.shape[0], dtype=np.int64)
    for b, rows in enumerate(cells):
        batch_of[rows] = b
    groups = [Group(np.asarray(rows, dtype=np.int64), E[torch.as_tensor(np.asarray(rows), device=E.device)], [b])
              for b, rows in enumerate(cells)]
    lost = np.zeros((n_batches - 1, n_batches))
    out = MergeResult(None, [], [], [], lost, [], [])
    current = groups[0 if order is None else order[0]]
    if order is None:
        counts = {(i, j): _count_pairs(groups[i], groups[j], k, knn_method, seed)
                  for i in range(n_batches) for j in range(i)}
    for step in range(n_batches - 1):
        if order is not None:
            left, right = current, groups[order[step + 1]]
        else:  # batchelor: the largest count first; ties: R's which() order (the earliest j, then i; i > j)
            i, j = max(counts, key=lambda key: (counts[key], -key[1], -key[0]))
            left, right = groups[i], groups[j]
        merged, pairs, lost_step, share, magnitude = merge_mnn(left, right, batch_of, k=k, ndist=ndist,
                                                               knn_method=knn_method, seed=seed + 3 * step)
        members = left.batches + right.batches
        lost[step, members] = lost_step
        out.left.append(list(left.batches))
        out.right.append(list(right.batches))
        out.pairs.append(pairs)
        out.paired_share.append(share)
        out.magnitude.append(magnitude)
        current = merged
        if order is None:
            keep = [g for g in range(len(groups)) if g not in (i, j)]
            groups = [groups[g] for g in keep] + [merged]
            old = {(keep.index(a), keep.index(b)): v for (a, b), v in counts.items() if a in keep and b in keep}
            new = len(groups) - 1
            old.update({(new, g): _count_pairs(merged, groups[g], k, knn_method, seed) for g in range(new)})
            counts = old
        if progress is not None:
            progress(step)
    corrected = torch.empty_like(E)
    corrected[torch.as_tensor(current.rows, device=E.device)] = current.values
    out.corrected = corrected
    return out
