"""Scanorama's numeric core (Hie et al. 2019): arrays and tensors in, arrays and tensors out, no AnnData.

The steps, in the order :class:`scintegrate.models.scanorama.Scanorama` runs them:

- :func:`~scintegrate.models._exact_knn.l2_normalize_rows` and :func:`randomized_pca`: cells scaled to unit length, then a centred
  randomized SVD of the merged matrix (the embedding is ``U * s``);
- :func:`find_matches`: mutual nearest neighbours (MNN) between every pair of batches, on the embedding
  scaled to unit length: the ``knn`` neighbours of each cell among the cells of all other batches (searched
  pair of batches by pair, exact blocked torch search, inverted lists in torch for large data or pynndescent,
  and merged), a pair
  ``(a, b)`` being mutual when each is among the other's; sparse index pairs, never a cells x cells matrix;
- :func:`alignment_scores` and :func:`merge_order`: the panorama graph, edge weight
  ``max(n_i^M / n_i, n_j^M / n_j)`` (``n_i^M``: cells of batch ``i`` with a match in ``j``), edges above
  ``alpha`` in decreasing weight;
- :func:`assemble`: the batches merged edge by edge into panoramas, each move a Gaussian-smoothed
  translation (:func:`smoothed_translation`); the steps are returned so that :func:`replay` applies the
  same merges to another matrix (the corrected expression).

Unlike the package, nothing depends on the order of the cells or of the batches (the inverted lists of large
data start from centres chosen by value, so up to float rounding): a cell's neighbours are
searched among all other batches at once (the package searches the batches listed before it, then those
after it), batches are numbered in the order of their names, and ties of the merge order are broken by the
data. With two batches the neighbours are those of the package's exact search (``approx=False``).

Example
-------
>>> import numpy as np
>>> from scintegrate.models._scanorama_core import find_matches, alignment_scores
>>> rng = np.random.default_rng(0)
>>> E = rng.normal(size=(60, 5)).astype(np.float32)
>>> cells = [np.arange(30), np.arange(30, 60)]
>>> matches = find_matches(E, cells, knn=5)
>>> sorted(alignment_scores(matches, [30, 30]))
[(0, 1)]
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

from ._exact_knn import mutual_pairs
from ._exact_knn import knn_into_exact as _knn_into_exact
from ._exact_knn import pair_knn_exact as _pair_knn_exact
from ._exact_knn import torch_matrix as _torch_matrix
from ._ivf_knn import kmeans_lists as _kmeans_lists
from ._ivf_knn import knn_into_ivf as _knn_into_ivf
from ._ivf_knn import list_count, probe_count
from ._mnn_common import randomized_svd

#: data of at most this many cells is searched exactly on the CPU (``method="auto"``; inverted lists above)
EXACT_MAX = 20_000
#: batches of at most this many cells are searched exactly also with pynndescent
NNDESCENT_MIN = 4096
#: inverted-list search (``method="ivf"``): batches of at most this many cells are searched exactly (the lists
#: per square root of the batch size and the share probed are :mod:`._ivf_knn`'s)
IVF_MIN = 2048
#: elements of one block of the merging kernel (4 MiB: it is updated in place several times, so it stays in cache)
KERNEL_BLOCK = 1 << 20
#: an edge is skipped once both its batches were on more than this many edges (the package's rule)
MAX_MERGES = 3


# ---------------------------------------------------------------------------------------------- embedding
def randomized_pca(X, k: int, *, seed: int = 0, device="cpu", oversample: int = 10, n_iter: int = 2):
    """``U * s`` of the centred ``X`` (cells x genes, sparse or dense): a randomized SVD (Halko et al. 2011).

    The mean is subtracted implicitly (sparse input stays sparse). ``oversample`` extra columns and
    ``n_iter`` power iterations (the package uses fbpca with 2 and 2); the start matrix comes from a
    generator seeded with ``seed``. Signs are fixed by the genes (the largest loading of each component is
    positive), so permuting the cells permutes the rows of the result and changes nothing else.
    Returns an ``n x k`` float32 tensor on ``device``.
    """
    import torch


    n, p = X.shape
    k = int(min(k, n, p))
    width = int(min(k + oversample, n, p))
    A, At = _torch_matrix(X, device), _torch_matrix(X.T if not sp.issparse(X) else X.T.tocsr(), device)
    mean = (At @ torch.full((n, 1), 1.0 / n, device=device)).ravel()  # column means, p

    def times(M):  # (X - 1 mean^T) @ M
        return A @ M - (mean @ M)[None, :]

    def t_times(M):  # (X - 1 mean^T)^T @ M
        return At @ M - mean[:, None] * M.sum(0)[None, :]

    Q, Ub, s, Vt = randomized_svd(times, t_times, p, width, seed=seed, n_iter=n_iter, device=device)
    Ub, s, Vt = Ub[:, :k], s[:k], Vt[:k]
    sign = torch.sign(Vt.gather(1, Vt.abs().argmax(1, keepdim=True))).ravel()
    sign[sign == 0] = 1.0
    return ((Q.double() @ Ub) * (s * sign)[None, :]).float()


# ---------------------------------------------------------------------------------------------- matching
def _keep_nearest(best, idx, dist, k: int):
    """Merge neighbour lists ``(idx, dist)`` into the running ``best`` ``(idx, dist)``, keeping ``k`` per row."""
    if best is not None:
        idx, dist = np.concatenate([best[0], idx], 1), np.concatenate([best[1], dist], 1)
    if idx.shape[1] > k:
        keep = np.argsort(dist, axis=1, kind="stable")[:, :k]
        idx, dist = np.take_along_axis(idx, keep, 1), np.take_along_axis(dist, keep, 1)
    return idx, dist


def find_matches(E, cells: Sequence[np.ndarray], *, knn: int = 20, metric: str = "manhattan",
                 method: str = "auto", scope: str = "others", device="cpu",
                 seed: int = 0) -> Dict[Tuple[int, int], tuple]:
    """Mutual nearest neighbours between the batches on the rows of ``E`` scaled to unit length.

    ``cells[b]`` are the rows of batch ``b``. ``scope="others"``: the ``knn`` neighbours of a cell are
    searched among the cells of all other batches at once (the package searches the batches before, then
    after, a batch: an order it depends on); ``"pair"``: ``knn`` in each other batch. Returns
    ``{(i, j): (a, b)}`` for ``i < j`` with at least one pair: ``a`` indexes ``cells[i]``, ``b`` ``cells[j]``.
    ``method``: ``"exact"`` (blocked torch search on ``device``), ``"ivf"`` (inverted lists: a torch k-means
    of each batch into ``sqrt(n)`` lists, each query searched exactly in the 10% of lists whose centres are
    nearest; batches of at most :data:`IVF_MIN` cells are searched exactly), ``"nndescent"`` (pynndescent, an
    index per batch; batches of a few thousand cells are searched exactly) or ``"auto"`` (exact on CUDA or
    up to :data:`EXACT_MAX` cells, inverted lists above). The approximate searches find most, not all, exact
    neighbours (recall in ``benchmarks/results/scanorama_recall.md``; the package's own default, Annoy with
    10 trees, finds fewer).
    """
    import torch

    if metric not in ("manhattan", "euclidean"):
        raise ValueError(f"metric must be 'manhattan' or 'euclidean', got {metric!r}")
    if scope not in ("others", "pair"):
        raise ValueError(f"scope must be 'others' or 'pair', got {scope!r}")
    E = torch.as_tensor(E, dtype=torch.float32).to(device)
    U = E / E.norm(dim=1, keepdim=True).clamp_min(1e-12)
    n = sum(len(c) for c in cells)
    if method == "auto":
        method = "exact" if (torch.device(device).type == "cuda" or n <= EXACT_MAX) else "ivf"
    if method not in ("exact", "ivf", "nndescent"):
        raise ValueError(f"knn_method must be 'auto', 'exact', 'ivf' or 'nndescent', got {method!r}")
    parts = [U[torch.as_tensor(np.asarray(c), device=U.device)] for c in cells]
    if method == "exact" and scope == "others" and metric == "euclidean":  # one matrix product per batch
        rows = np.concatenate([np.asarray(c, dtype=np.int64) for c in cells])
        neighbours = []
        for b, c in enumerate(cells):
            mask = np.ones(U.shape[0], dtype=bool)
            mask[np.asarray(c, dtype=np.int64)] = False
            rest = rows[mask[rows]]
            idx, _ = _knn_into_exact(parts[b], U[torch.as_tensor(rest, device=U.device)], min(knn, rest.size),
                                     metric)
            neighbours.append(rest[idx])
        return _group_mutual(cells, neighbours, n)
    search = {"nndescent": _nndescent_search, "ivf": _ivf_search}.get(method)
    into = None if search is None else search(parts, knn, metric, seed)
    matches, best = {}, [None] * len(cells)
    for i in range(len(cells)):
        for j in range(i + 1, len(cells)):
            k_ij, k_ji = min(knn, len(cells[j])), min(knn, len(cells[i]))
            if into is None or not {i, j} & getattr(into, "indexed", {i, j}):  # exact: one pass gives both ways
                (nn_ij, d_ij), (nn_ji, d_ji) = _pair_knn_exact(parts[i], parts[j], k_ij, k_ji, metric)
            else:
                (nn_ij, d_ij), (nn_ji, d_ji) = into(i, j, k_ij), into(j, i, k_ji)
            if scope == "pair":
                a, b = mutual_pairs(nn_ij, nn_ji, len(cells[j]))
                if a.size:
                    matches[(i, j)] = (a, b)
                continue
            best[i] = _keep_nearest(best[i], cells[j][nn_ij], d_ij, knn)
            best[j] = _keep_nearest(best[j], cells[i][nn_ji], d_ji, knn)
    if scope == "pair":
        return matches
    return _group_mutual(cells, [b[0] for b in best], n)


def _group_mutual(cells, neighbours, n: int):
    """MNN pairs from each cell's neighbours among all other batches (global rows), grouped by pair of batches."""
    batch_of, local = np.empty(n, np.int64), np.empty(n, np.int64)
    for b, c in enumerate(cells):
        batch_of[c], local[c] = b, np.arange(len(c))
    rows = np.concatenate([np.repeat(c, nb.shape[1]) for c, nb in zip(cells, neighbours)])
    cols = np.concatenate([nb.ravel() for nb in neighbours])
    code = rows * n + cols
    mutual = np.intersect1d(code, cols * n + rows)
    a, b = mutual // n, mutual % n
    keep = batch_of[a] < batch_of[b]
    a, b = a[keep], b[keep]
    matches = {}
    pair = batch_of[a] * len(cells) + batch_of[b]
    for key in np.unique(pair):
        sel = pair == key
        matches[(int(key // len(cells)), int(key % len(cells)))] = (local[a[sel]], local[b[sel]])
    return matches


def _ivf_search(parts, knn: int, metric: str, seed: int):
    """``into(i, j, k)`` as :func:`_nndescent_search`, from inverted lists (torch k-means) built once per batch
    of more than :data:`IVF_MIN` cells; smaller batches are searched exactly."""
    lists = {}
    for b, X in enumerate(parts):
        if X.shape[0] > IVF_MIN:
            lists[b] = _kmeans_lists(X, list_count(X.shape[0]), seed + b)

    def into(i, j, k):
        if j not in lists:
            return _knn_into_exact(parts[i], parts[j], k, metric)
        return _knn_into_ivf(parts[i], parts[j], k, lists[j], probe_count(lists[j][0].shape[0]), metric)
    into.indexed = set(lists)  # pairs of two batches without lists are searched exactly in one pass
    return into


def _nndescent_search(parts, knn: int, metric: str, seed: int):
    """``into(i, j, k)``: the ``k`` neighbours (indices, distances) of batch ``i``'s cells in batch ``j``
    (a pynndescent index per batch, built once; small batches are searched exactly)."""
    from pynndescent import NNDescent

    arrays = [p.cpu().numpy() for p in parts]
    indexes = {}
    for b, X in enumerate(arrays):
        if X.shape[0] > NNDESCENT_MIN:
            indexes[b] = NNDescent(X, metric=metric, n_neighbors=max(30, knn + 1), random_state=seed)
            indexes[b].prepare()

    def into(i, j, k):
        if j not in indexes:
            return _knn_into_exact(parts[i], parts[j], k, metric)
        idx, dist = indexes[j].query(arrays[i], k=k)
        return idx.astype(np.int64), dist.astype(np.float32)
    return into


# ---------------------------------------------------------------------------------------------- panoramas
def alignment_scores(matches, sizes: Sequence[int]) -> Dict[Tuple[int, int], float]:
    """Edge weights of the panorama graph: ``max(n_i^M / n_i, n_j^M / n_j)`` for every matched pair."""
    return {(i, j): max(np.unique(a).size / sizes[i], np.unique(b).size / sizes[j])
            for (i, j), (a, b) in matches.items()}


def merge_order(scores, matches, *, alpha: float = 0.10) -> List[Tuple[int, int]]:
    """The edges with weight above ``alpha``, heaviest first; ties go to the pair with more MNN pairs, then
    to the lower batch numbers (batches are numbered in the order of their names)."""
    keep = [e for e, s in scores.items() if s > alpha]
    return sorted(keep, key=lambda e: (-scores[e], -len(matches[e][0]), e))


def smoothed_translation(points, anchors, bias, *, sigma: float = 15.0, batch_size: int = 5000, counts=None):
    """``sum_m w_cm bias_m / sum_m w_cm`` with ``w_cm = exp(-sigma / 2 * |points_c - anchors_m|^2)``.

    The package's kernel (scikit-learn's ``rbf_kernel`` with ``gamma = 0.5 * sigma``), computed in blocks
    (``batch_size`` anchors at a time) with a running maximum of the exponent, so that no weight underflows
    and the result is never NaN. ``counts[m]`` (default 1) says how many matches anchor ``m`` stands for,
    ``bias[m]`` being the sum of their translations. Tensors in, a tensor shaped like ``points`` out.
    """
    import torch

    gamma = 0.5 * float(sigma)
    out = torch.empty_like(points)
    a_sq = (anchors * anchors).sum(1)
    log_counts = torch.zeros_like(a_sq) if counts is None else torch.log(counts.to(a_sq.dtype))
    mean_bias = bias if counts is None else bias / counts.to(a_sq.dtype)[:, None]
    step = max(1, int(batch_size))
    rows = max(1, KERNEL_BLOCK // min(step, anchors.shape[0]))
    for r0 in range(0, points.shape[0], rows):
        p = points[r0:r0 + rows]
        p_sq = (p * p).sum(1, keepdim=True)
        top = torch.full((p.shape[0],), -float("inf"), device=p.device, dtype=p.dtype)
        num = torch.zeros_like(p)
        den = torch.zeros(p.shape[0], device=p.device, dtype=p.dtype)
        for c0 in range(0, anchors.shape[0], step):
            a, c1 = anchors[c0:c0 + step], c0 + step
            # logit = -gamma |p - a|^2 + log(count), every step in place on one block (memory-bound otherwise)
            w = torch.addmm(a_sq[None, c0:c1], p, a.T, beta=1.0, alpha=-2.0)
            w.add_(p_sq).clamp_(min=0).mul_(-gamma).add_(log_counts[None, c0:c1])
            new_top = torch.maximum(top, w.max(1).values)
            scale = torch.exp(top - new_top)
            w.sub_(new_top[:, None]).exp_()
            num.mul_(scale[:, None]).addmm_(w, mean_bias[c0:c1])
            den.mul_(scale).add_(w.sum(1))
            top = new_top
        out[r0:r0 + rows] = num / den[:, None]
    return out


def _translate(X, moving, ds, ref, sigma, batch_size):
    """Move the rows ``moving`` of ``X`` (in place) by the smoothed translation of the matches ``ds -> ref``.

    Matches that start at the same cell share one anchor (their translations summed, their number as its
    weight): the same numbers as one anchor per match, at a fraction of the cost.
    """
    import torch

    if len(ds) == 0 or len(moving) == 0:
        return
    anchors, inverse = np.unique(ds, return_inverse=True)
    mv, d, r, a, inv = (torch.as_tensor(v, device=X.device) for v in (moving, ds, ref, anchors, inverse))
    bias = torch.zeros((len(anchors), X.shape[1]), dtype=X.dtype, device=X.device).index_add_(0, inv, X[r] - X[d])
    counts = torch.bincount(inv, minlength=len(anchors))
    X[mv] += smoothed_translation(X[mv], X[a], bias, sigma=sigma, batch_size=batch_size, counts=counts)


def assemble(E, cells: Sequence[np.ndarray], matches, order, *, sigma: float = 15.0, batch_size: int = 5000):
    """Merge the batches along ``order`` (in place on the tensor ``E``, one row per cell); returns the steps.

    As the package: a batch joining a panorama moves onto it with the matches to every member; a batch
    already in a panorama moves its whole panorama with the matches of the edge (also when both ends are
    in the same panorama); two new batches start a panorama at the larger one; an edge is skipped once both
    its batches took part in more than :data:`MAX_MERGES` merges. A step is ``(i, j, moving, ds, ref)``
    (global row indices; ``ds[m]`` is matched to ``ref[m]``).
    """
    sizes = [len(c) for c in cells]
    home: Dict[int, list] = {}  # batch -> its panorama (a shared list)
    seen = {b: 0 for b in range(len(cells))}
    steps = []

    def pairs(x, y):  # the matches of batches x, y as global rows (x's cells first)
        if (x, y) in matches:
            a, b = matches[(x, y)]
            return cells[x][a], cells[y][b]
        if (y, x) in matches:
            a, b = matches[(y, x)]
            return cells[x][b], cells[y][a]
        return np.empty(0, np.int64), np.empty(0, np.int64)

    for i, j in order:
        seen[i] += 1
        seen[j] += 1
        if seen[i] > MAX_MERGES and seen[j] > MAX_MERGES:
            continue
        if i not in home and j not in home:
            if sizes[i] < sizes[j]:
                i, j = j, i
            home[i] = [i]
        if i not in home or j not in home:
            mover, target = (i, j) if i not in home else (j, i)
            got = [pairs(mover, p) for p in home[target]]
            ds, ref = np.concatenate([g[0] for g in got]), np.concatenate([g[1] for g in got])
            moving = cells[mover]
            home[target].append(mover)
            home[mover] = home[target]
        else:
            ds, ref = pairs(i, j)
            moving = np.concatenate([cells[p] for p in home[i]])
            if home[i] is not home[j]:
                merged = home[i] + home[j]
                for p in merged:
                    home[p] = merged
        _translate(E, moving, ds, ref, sigma, batch_size)
        steps.append((i, j, moving, ds, ref))
    return steps


def replay(X, steps, *, sigma: float = 15.0, batch_size: int = 5000):
    """Apply the merges of :func:`assemble` to another matrix of the same cells (in place; tensor)."""
    for _, _, moving, ds, ref in steps:
        _translate(X, moving, ds, ref, sigma, batch_size)
    return X
