"""Approximate nearest neighbours by inverted lists in torch: a k-means of the reference rows, each query searched
exactly within the lists whose centres are nearest it (Scanorama's large-data search and fastMNN's merges onto a
large reference; ``benchmarks/results/scanorama_recall.md`` measures the recall).

Example
-------
>>> import torch
>>> from scintegrate.models._ivf_knn import kmeans_lists, knn_into_ivf
>>> R = torch.randn(500, 4, generator=torch.Generator().manual_seed(0))
>>> lists = kmeans_lists(R, 20, seed=0)
>>> idx, dist = knn_into_ivf(R[:3], R, 1, lists, n_probe=20, metric="euclidean")  # every list: exact
>>> idx.ravel().tolist()
[0, 1, 2]
"""

from __future__ import annotations

import numpy as np

from ._exact_knn import BLOCK_ELEMENTS, block_order

#: lists per square root of the reference size, and the share of the lists probed per query
LISTS_PER_SQRT, PROBE_SHARE = 1.0, 0.10


def kmeans_lists(R, n_lists: int, seed: int, n_iter: int = 10):
    """Inverted lists of the rows of ``R`` (torch): Euclidean k-means, Lloyd's ``n_iter`` rounds. The start
    centres are the rows at evenly spaced ranks along a seeded random direction, so they depend on the rows'
    values and not on their order. Returns ``(centroids, rows sorted by list, list offsets)``."""
    import torch

    from .._device import torch_generator

    n = R.shape[0]
    direction = torch.randn(R.shape[1], generator=torch_generator(seed)).to(R)
    along = torch.argsort(R @ direction, stable=True)
    C = R[along[torch.linspace(0, n - 1, n_lists).round().long().to(R.device)]].clone()
    for round_ in range(n_iter + 1):  # n_iter centre updates, then the final assignment
        c_sq = (C * C).sum(1)
        assign = torch.addmm(c_sq[None, :], R, C.T, beta=1.0, alpha=-2.0).argmin(1)  # |r - c|^2 less |r|^2
        if round_ == n_iter:
            break
        sums = torch.zeros_like(C).index_add_(0, assign, R)
        counts = torch.bincount(assign, minlength=n_lists).to(R.dtype)
        filled = counts > 0  # an empty list keeps its centre
        C[filled] = sums[filled] / counts[filled, None]
    order = torch.argsort(assign, stable=True)
    offsets = torch.zeros(n_lists + 1, dtype=torch.long, device=R.device)
    offsets[1:] = torch.cumsum(torch.bincount(assign, minlength=n_lists), 0)
    return C, order, offsets


def knn_into_ivf(Q, R, k: int, lists, n_probe: int, metric: str):
    """The ``k`` neighbours (indices, distances) of the rows of ``Q`` among the rows of ``R``, searched exactly
    within the ``n_probe`` inverted lists whose centres are nearest each query (``lists`` from
    :func:`kmeans_lists`). Each list is scored once against all queries that probe it; nearest first."""
    import torch

    C, order, offsets = lists
    n_lists = C.shape[0]
    n_probe = min(n_probe, n_lists)
    nq = Q.shape[0]
    r_sq = (R * R).sum(1)
    probe = torch.topk(block_order(Q, C, (C * C).sum(1), metric), n_probe, dim=1, largest=False).indices
    flat = probe.reshape(-1)
    by_list = torch.argsort(flat, stable=True)  # (query, slot) entries grouped by list
    per_list = torch.bincount(flat, minlength=n_lists).tolist()
    cand_d = torch.full((nq, n_probe, k), float("inf"), device=Q.device)
    cand_i = torch.zeros((nq, n_probe, k), dtype=torch.long, device=Q.device)
    pos = 0
    for l in range(n_lists):
        entries, pos = by_list[pos:pos + per_list[l]], pos + per_list[l]
        members = order[offsets[l]:offsets[l + 1]]
        if entries.numel() == 0 or members.numel() == 0:
            continue
        qs, slot = entries // n_probe, entries % n_probe
        kk = min(k, members.numel())
        ref, ref_sq = R[members], r_sq[members]
        rows = max(1, BLOCK_ELEMENTS // members.numel())
        for s in range(0, qs.numel(), rows):
            q_rows, q_slot = qs[s:s + rows], slot[s:s + rows]
            q = Q[q_rows]
            d, i = torch.topk(block_order(q, ref, ref_sq, metric), kk, dim=1, largest=False)
            if metric == "euclidean":
                d = (d + (q * q).sum(1, keepdim=True)).clamp_(min=0).sqrt_()
            cand_d[q_rows, q_slot, :kk] = d
            cand_i[q_rows, q_slot, :kk] = members[i]
    d, pos_best = torch.topk(cand_d.reshape(nq, -1), k, dim=1, largest=False)
    i = cand_i.reshape(nq, -1).gather(1, pos_best)
    return i.cpu().numpy().astype(np.int64), d.cpu().numpy()


def list_count(n_rows: int) -> int:
    """Inverted lists for a reference of ``n_rows`` rows: :data:`LISTS_PER_SQRT` per square root, at least 2."""
    return max(2, int(round(LISTS_PER_SQRT * n_rows ** 0.5)))


def probe_count(n_lists: int, probe_share: float = PROBE_SHARE) -> int:
    """Lists probed per query: ``probe_share`` of them, at least 1."""
    return max(1, int(np.ceil(probe_share * n_lists)))


def knn_into_approx(Q, R, k: int, metric: str, *, seed: int = 0, probe_share: float = PROBE_SHARE):
    """The ``k`` neighbours of the rows of ``Q`` among those of ``R`` from inverted lists built on ``R`` for this
    search (:func:`list_count` lists, :func:`probe_count` probed per query): ``(indices, distances)`` arrays."""
    n_lists = list_count(R.shape[0])
    return knn_into_ivf(Q, R, k, kmeans_lists(R, n_lists, seed), probe_count(n_lists, probe_share), metric)
