"""Pieces the MNN and anchor methods (Scanorama, fastMNN, Seurat CCA) share: their input, their corrected-features
layer and the randomized SVD.

Example
-------
>>> import torch
>>> from scintegrate.models._mnn_common import randomized_svd
>>> A = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
>>> Q, Ub, s, Vt = randomized_svd(lambda M: A @ M, lambda M: A.T @ M, 8, 8, seed=0)
>>> bool(torch.allclose(s.float(), torch.linalg.svdvals(A), rtol=1e-4))
True
"""

from __future__ import annotations


def unit_length_features(data, n_features: int, *, scale: bool = True):
    """``(X, features, how)``: the data log-normalised when it holds counts, its integration features chosen as
    for the uncorrected baseline (:func:`scintegrate.pp.normalize_and_select`), each cell scaled to unit length
    (``scale``; cosine normalisation)."""
    from .. import pp
    from ._exact_knn import l2_normalize_rows

    work = data.to_anndata("batch")
    features, how = pp.normalize_and_select(work, batch_key="batch", n_features=n_features, counts=data.is_counts)
    X = work[:, list(features)].X
    return (l2_normalize_rows(X) if scale else X), features, how


def features_layer(values, n_vars: int, genes, features):
    """``values`` (cells x ``features``) as a CSR matrix of the data's shape: the features' columns hold them,
    the other genes' are empty (a layer ``integrate`` can write)."""
    import scipy.sparse as sp

    cols = genes.get_indexer(list(features))
    out = sp.csr_matrix(values)
    out = sp.csr_matrix((out.data, cols[out.indices].astype(out.indices.dtype), out.indptr),
                        shape=(out.shape[0], n_vars))
    out.sort_indices()
    return out


def randomized_svd(times, t_times, p: int, width: int, *, seed: int = 0, n_iter: int = 2, device="cpu"):
    """``(Q, Ub, s, Vt)`` of the randomized SVD (Halko et al. 2011) of the n x p operator given by ``times``
    (``A @ M``) and ``t_times`` (``A^T @ M``): ``A ~ Q Ub diag(s) Vt`` with ``width`` columns and ``n_iter``
    power iterations, the start matrix drawn from a generator seeded with ``seed`` (float64 factors of the
    small matrix)."""
    import torch

    from .._device import torch_generator

    omega = torch.randn(p, width, generator=torch_generator(seed), dtype=torch.float32).to(device)
    Q = torch.linalg.qr(times(omega)).Q
    for _ in range(n_iter):
        Q = torch.linalg.qr(t_times(Q)).Q
        Q = torch.linalg.qr(times(Q)).Q
    B = t_times(Q).T  # width x p = Q^T A
    Ub, s, Vt = torch.linalg.svd(B.double(), full_matrices=False)
    return Q, Ub, s, Vt
