"""MetaNeighbor (unsupervised) cluster similarity and BERMUDA's cluster-pair selection.

:func:`metaneighbor_us` follows MetaNeighborUS (Crow et al. 2018, Nat. Commun.; the R code BERMUDA
ships as ``2017-08-28-runMN-US.R`` and the Bioconductor package's ``MetaNeighborUS``):

1. every cell is a vector of gene *ranks* (Spearman correlation = dot product of centred, unit-norm
   rank vectors);
2. each cluster *k* ("training set") votes for every cell *c* with the summed network weight from
   *c* to *k*'s cells, divided by *c*'s node degree (``node_degree_normalization``);
3. for every study *s* and every cluster *i* of *s* ("test set"), the AUROC of finding *i*'s cells
   among all cells of *s* by *k*'s votes is ``A[i, k]``;
4. each pair is scored in both directions (train on *k*, test on *i* and vice versa) and the two
   AUROCs are averaged (symmetric output).

Two ways to build the cell network, chosen by size (``method="auto"``):

- ``"exact"`` (MetaNeighborUS default, n <= ``exact_max_cells`` = 3000): the n x n Spearman
  correlation matrix, replaced by its ranks scaled to (0, 1] — quadratic time and memory;
- ``"fast"`` (MetaNeighborUS ``fast_version``): votes are dot products of rank-standardised cells
  with cluster centroids, shifted by +1 so weights are positive, and normalised by the node degree
  toward the voting cluster's study — linear in the number of cells. Sparse input stays sparse
  (zeros share one tied rank, so a cell is "constant + sparse part").

Both give AUROCs with the same meaning; on small data their similarity matrices agree closely
(tested by rank correlation).

:func:`match_clusters` then applies BERMUDA's Eqs. 3-5: zero within a batch, keep for each cluster
its best match in each other batch, symmetrise with max, binarise at ``threshold`` (S_thr).

Example
-------
>>> import numpy as np
>>> from scintegrate.tools import metaneighbor_us, match_clusters
>>> rng = np.random.default_rng(0)
>>> profiles = rng.gamma(1.0, 5.0, size=(2, 60))
>>> types = np.repeat([0, 1, 0, 1], 30)
>>> X = rng.poisson(profiles[types]).astype(float)
>>> batch = np.repeat(["a", "b"], 60)
>>> cluster = np.array([f"{b}_{t}" for b, t in zip(batch, types)])
>>> S, names = metaneighbor_us(X, batch, cluster)
>>> M = match_clusters(S, [n[0] for n in names], threshold=0.9)
>>> [(names[i], names[j]) for i, j in zip(*np.nonzero(np.triu(M)))]
[('a_0', 'b_0'), ('a_1', 'b_1')]
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.stats import rankdata

METHODS = ("auto", "exact", "fast")
#: largest number of cells for which ``method="auto"`` builds the quadratic exact network
EXACT_MAX_CELLS = 3000
#: cells ranked at a time (bounds the memory of sorting a large sparse matrix)
RANK_CHUNK = 10000


def rank_standardize(X) -> Tuple[object, np.ndarray]:
    """Rank the genes of every cell (ties averaged), centre and scale each cell to unit norm.

    Returns ``(D, b)`` with the standardised ranks equal to ``D + b[:, None]``: for sparse
    non-negative input ``D`` is CSR (the zeros share one rank, whose standardised value is ``b``),
    otherwise ``D`` is dense and ``b`` is 0. A constant cell (no ranking) becomes all zeros.
    Dot products of two standardised cells are their Spearman correlation.

    >>> import numpy as np
    >>> D, b = rank_standardize(np.array([[1., 2., 3.], [3., 2., 1.]]))
    >>> round(float((D[0] + b[0]) @ (D[1] + b[1])), 6)
    -1.0
    """
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        if X.nnz == 0 or X.data.min() >= 0:  # row chunks bound the memory of the sort
            parts = [_rank_standardize_sparse(X[i:i + RANK_CHUNK]) for i in range(0, X.shape[0], RANK_CHUNK)]
            return sp.vstack([d for d, _ in parts], format="csr"), np.concatenate([b for _, b in parts])
        X = X.toarray()
    X = np.asarray(X, dtype=np.float64)
    centred = rankdata(X, axis=1) - (X.shape[1] + 1) / 2.0
    norm = np.sqrt((centred ** 2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        Z = np.where(norm[:, None] > 0, centred / norm[:, None], 0.0)
    return Z, np.zeros(X.shape[0])


def _rank_standardize_sparse(X: sp.csr_matrix) -> Tuple[sp.csr_matrix, np.ndarray]:
    """Sparse rank standardisation: zeros tie at the bottom, non-zeros ranked within their row."""
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)
    X.eliminate_zeros()
    n, G = X.shape
    nnz_row = np.diff(X.indptr)
    n_zero = (G - nnz_row).astype(np.float64)
    rows = np.repeat(np.arange(n), nnz_row)
    order = _row_value_order(X.data, rows)
    vals, srows = X.data[order], rows[order]
    starts = np.ones(vals.size, dtype=bool)
    starts[1:] = (srows[1:] != srows[:-1]) | (vals[1:] != vals[:-1])
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    size = np.diff(np.append(first, vals.size))
    pos = np.arange(vals.size) - X.indptr[srows]  # 0-based position among the row's non-zeros
    first_pos = pos[first]
    ranks_sorted = n_zero[srows] + first_pos[group] + (size[group] - 1) / 2.0 + 1.0
    ranks = np.empty_like(ranks_sorted)
    ranks[order] = ranks_sorted
    mid = (G + 1) / 2.0
    zero_value = (n_zero + 1) / 2.0 - mid  # centred rank of a zero in each row
    centred_nz = ranks - mid
    sq = np.bincount(rows, weights=centred_nz ** 2, minlength=n) + n_zero * zero_value ** 2
    norm = np.sqrt(sq)
    scale = np.divide(1.0, norm, out=np.zeros(n), where=norm > 0)
    b = zero_value * scale
    D = sp.csr_matrix(((centred_nz - zero_value[rows]) * scale[rows], X.indices.copy(), X.indptr.copy()),
                      shape=(n, G))
    return D, b


def _row_value_order(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Stable order by (row, value): one argsort of ``row + scaled value`` (6x faster than lexsort),
    checked, with lexsort as the fallback when float resolution could not separate two values."""
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    lo, span = values.min(), values.max() - values.min()
    key = rows + ((values - lo) * (0.5 / span) if span > 0 else 0.0)
    order = np.argsort(key, kind="stable")
    same_row = rows[order][1:] == rows[order][:-1]
    if np.all(np.diff(values[order])[same_row] >= 0):
        return order
    return np.lexsort((values, rows))


def _indicator(codes: np.ndarray, n_levels: int) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(codes.size), (np.arange(codes.size), codes)), shape=(codes.size, n_levels))


def _votes_exact(D, b: np.ndarray, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
    """MetaNeighborUS default: ranked Spearman network, votes = in-cluster weight / node degree."""
    Z = (D.toarray() if sp.issparse(D) else np.asarray(D)) + b[:, None]
    corr = np.round(Z @ Z.T, 10)  # exact ties stay ties despite rounding in the products
    constant = ~np.any(Z != 0, axis=1)  # cor() is NA for a constant cell; NA ranks become 0
    valid = ~(constant[:, None] | constant[None, :])
    ranks = np.zeros_like(corr)
    ranks[valid] = rankdata(corr[valid])
    del corr
    ranks /= ranks.max() if ranks.max() > 0 else 1.0
    sum_in = np.asarray(_indicator(cluster, n_clusters).T.dot(ranks).T)
    degree = ranks.sum(axis=0)
    return np.divide(sum_in, degree[:, None], out=np.zeros_like(sum_in), where=degree[:, None] > 0)


def _votes_fast(D, b: np.ndarray, cluster: np.ndarray, n_clusters: int, cluster_study: np.ndarray,
                n_studies: int) -> np.ndarray:
    """MetaNeighborUS fast_version: (corr + 1) summed per cluster via centroids / degree to that study."""
    L = _indicator(cluster, n_clusters)
    n_per_cluster = np.asarray(L.sum(axis=0)).ravel()
    summed = L.T @ D  # clusters x genes
    summed = summed.toarray() if sp.issparse(summed) else np.asarray(summed)
    centroids = summed.T + (L.T @ b)[None, :]  # genes x clusters: sum of standardised cells
    votes = np.asarray(D @ centroids) + np.outer(b, centroids.sum(axis=0)) + n_per_cluster[None, :]
    S = _indicator(cluster_study, n_studies)  # clusters x studies
    degree = votes @ S.toarray()  # summed (corr + 1) toward each study: cells x studies
    denom = degree[:, cluster_study]
    return np.divide(votes, denom, out=np.zeros_like(votes), where=denom > 0)


def _aurocs(votes: np.ndarray, study: np.ndarray, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
    """A[i, k]: AUROC of finding test cluster i's cells within i's study by training cluster k's votes."""
    out = np.full((n_clusters, n_clusters), np.nan)
    for s in np.unique(study):
        rows = np.flatnonzero(study == s)
        members = np.unique(cluster[rows])
        ranks = rankdata(votes[rows], axis=0)
        local = np.searchsorted(members, cluster[rows])
        pos = _indicator(local, members.size)
        n_pos = np.asarray(pos.sum(axis=0)).ravel()[:, None]
        n_neg = rows.size - n_pos
        sum_pos = np.asarray(pos.T @ ranks)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[members] = (sum_pos / n_pos - (n_pos + 1) / 2.0) / n_neg
    return out


def _symmetrize(A: np.ndarray) -> np.ndarray:
    """Average both directions; a direction that is undefined (a study with one cluster) is skipped."""
    stacked = np.stack([A, A.T])
    finite = np.isfinite(stacked)
    total = np.where(finite, stacked, 0.0).sum(axis=0)
    count = finite.sum(axis=0)
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


def metaneighbor_us(
    X,
    study: Sequence,
    cluster: Sequence,
    *,
    method: str = "auto",
    exact_max_cells: int = EXACT_MAX_CELLS,
    symmetric: bool = True,
    ranked: Optional[Tuple[object, np.ndarray]] = None,
) -> Tuple[np.ndarray, list]:
    """MetaNeighborUS AUROC matrix between all clusters of all studies (cells x genes input).

    ``X`` is expression (counts, CPM or log values, sparse or dense: only within-cell gene ranks
    matter) restricted to the genes to compare on, e.g. highly variable genes. ``cluster`` labels
    must be unique across studies (a cluster lies in one study). Returns ``(A, names)`` with
    ``A[i, j]`` the mean AUROC of clusters ``names[i]`` and ``names[j]`` (rows: test, columns:
    train when ``symmetric=False``). ``method``: ``"exact"``, ``"fast"`` or ``"auto"`` (exact up
    to ``exact_max_cells`` cells). ``ranked`` may hold ``rank_standardize(X)`` computed before, to
    reuse it.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    n = X.shape[0]
    study, cluster = np.asarray(study).astype(str), np.asarray(cluster).astype(str)
    if study.size != n or cluster.size != n:
        raise ValueError(f"study ({study.size}) and cluster ({cluster.size}) need one entry per cell ({n})")
    if X.shape[1] < 2:
        raise ValueError(f"MetaNeighbor needs at least 2 genes to rank, got {X.shape[1]}")
    names, cl_codes = np.unique(cluster, return_inverse=True)
    studies, st_codes = np.unique(study, return_inverse=True)
    cluster_study = np.zeros(names.size, dtype=np.int64)
    cluster_study[cl_codes] = st_codes
    if np.any(pd.crosstab(cl_codes, st_codes).to_numpy().astype(bool).sum(axis=1) > 1):
        raise ValueError("every cluster must lie in a single study; prefix cluster labels with the study")
    D, b = rank_standardize(X) if ranked is None else ranked
    if method == "exact" or (method == "auto" and n <= exact_max_cells):
        votes = _votes_exact(D, b, cl_codes, names.size)
    else:
        votes = _votes_fast(D, b, cl_codes, names.size, cluster_study, studies.size)
    A = _aurocs(votes, st_codes, cl_codes, names.size)
    return (_symmetrize(A) if symmetric else A), names.tolist()


def match_clusters(similarity: np.ndarray, cluster_batch: Sequence, threshold: float = 0.90) -> np.ndarray:
    """BERMUDA Eqs. 3-5: binary matrix of similar cluster pairs from a cluster similarity matrix.

    Within-batch entries are set to 0; for each cluster only its most similar cluster in each other
    batch is kept (symmetrised with max, so a pair survives when either side picks it); entries
    below ``threshold`` (S_thr; the paper recommends 0.85-0.90) are dropped and the rest set to 1.

    >>> import numpy as np
    >>> S = np.array([[0, 0, .95, .5], [0, 0, .6, .92], [.95, .6, 0, 0], [.5, .92, 0, 0]])
    >>> match_clusters(S, ["a", "a", "b", "b"], 0.9).astype(int).tolist()
    [[0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0]]
    """
    S = np.array(similarity, dtype=np.float64)
    batch = np.asarray(cluster_batch).astype(str)
    if S.ndim != 2 or S.shape[0] != S.shape[1] or S.shape[0] != batch.size:
        raise ValueError(f"similarity must be square with one row per cluster ({batch.size}), got {S.shape}")
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold (S_thr) must lie in [0, 1], got {threshold}")
    S = np.where(np.isfinite(S), S, 0.0)
    S[batch[:, None] == batch[None, :]] = 0.0
    best = np.zeros(S.shape, dtype=bool)
    for other in np.unique(batch):
        cols = np.flatnonzero(batch == other)
        rows = np.flatnonzero(batch != other)
        best[rows, cols[np.argmax(S[np.ix_(rows, cols)], axis=1)]] = True
    best |= best.T
    return (best & (S >= threshold) & (S > 0)).astype(np.float64)


def cluster_pairs(matches: np.ndarray) -> np.ndarray:
    """``(n_pairs, 2)`` int array of the matched cluster index pairs ``i < j`` of a binary matrix."""
    i, j = np.nonzero(np.triu(np.asarray(matches), k=1))
    return np.stack([i, j], axis=1).astype(np.int64)


def unmatched_clusters(matches: np.ndarray, names: Optional[Sequence] = None) -> list:
    """Clusters (names or indices) that have no similar cluster in any other batch."""
    idx = np.flatnonzero(~np.asarray(matches).astype(bool).any(axis=1))
    return idx.tolist() if names is None else [names[i] for i in idx]

