"""Exact nearest neighbours between two sets of rows in torch, one block of rows at a time, and mutual pairs.

Shared by the MNN methods (Scanorama, fastMNN): arrays and tensors in, arrays out, never a dense
cells x cells matrix (each block of distances holds at most :data:`BLOCK_ELEMENTS` values).

Example
-------
>>> import torch
>>> from scintegrate.models._exact_knn import pair_knn_exact, mutual_pairs
>>> A, B = torch.tensor([[0.0], [10.0]]), torch.tensor([[0.5], [9.0], [20.0]])
>>> (ab, _), (ba, _) = pair_knn_exact(A, B, 1, 1, "euclidean")
>>> [a.tolist() for a in mutual_pairs(ab, ba, 3)]
[[0, 1], [0, 1]]
"""

from __future__ import annotations

import warnings
from typing import Tuple

import numpy as np
import scipy.sparse as sp

#: elements of one block of a distance or kernel matrix (32 MiB of float32)
BLOCK_ELEMENTS = 1 << 23


def l2_normalize_rows(X):
    """Each row divided by its Euclidean norm (rows of zeros stay zero); sparse stays sparse, float32."""
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float32, copy=True)
        norms = np.sqrt(np.asarray(X.multiply(X).sum(1)).ravel())
        norms[norms == 0] = 1.0
        X.data /= np.repeat(norms, np.diff(X.indptr)).astype(np.float32)
        return X
    X = np.array(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return X / norms


def torch_matrix(X, device):
    """A torch tensor of ``X`` on ``device`` (sparse CSR stays sparse, with int32 indices where they fit: on the
    CPU they share the scipy matrix's memory, and the products are faster than with int64)."""
    import torch

    if not sp.issparse(X):
        return torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32), device=device)
    X = sp.csr_matrix(X, dtype=np.float32)
    index = np.int32 if max(X.nnz, *X.shape) < np.iinfo(np.int32).max else np.int64
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(torch.as_tensor(X.indptr.astype(index, copy=False)),
                                       torch.as_tensor(X.indices.astype(index, copy=False)),
                                       torch.as_tensor(X.data), size=X.shape).to(device)


def block_order(q, ref, ref_sq, metric: str):
    """Distances of the rows of ``q`` to those of ``ref`` up to a per-row constant: Manhattan (exact), or
    ``|ref_j|^2 - 2 q_i . ref_j`` for Euclidean (squared distance less ``|q_i|^2``; one matrix product)."""
    import torch

    if metric == "manhattan":
        return torch.cdist(q, ref, p=1)
    return torch.addmm(ref_sq[None, :], q, ref.T, beta=1.0, alpha=-2.0)


def pair_knn_exact(A, B, k_ab: int, k_ba: int, metric: str):
    """Exact neighbours both ways between the rows of ``A`` and ``B`` (torch) from one pass over their distances,
    one block of rows at a time: ``(indices into B, distances)`` of each row of ``A`` (``nA x k_ab``) and the
    same of ``B`` into ``A``. Used where one pass over a pair serves both directions: Manhattan distances (no
    matrix product, so their computation dominates) and ``scope="pair"``."""
    import torch

    nA, nB = A.shape[0], B.shape[0]
    rows = max(1, BLOCK_ELEMENTS // max(nB, 1))
    b_sq = (B * B).sum(1)
    ab_i, ab_d, best_d, best_i = [], [], None, None
    for start in range(0, nA, rows):
        q = A[start:start + rows]
        D = block_order(q, B, b_sq, metric)
        if metric == "euclidean":
            D = (D + (q * q).sum(1, keepdim=True)).clamp_(min=0).sqrt_()
        d, i = torch.topk(D, k_ab, dim=1, largest=False)
        ab_i.append(i.cpu())
        ab_d.append(d.cpu())
        d, i = torch.topk(D, min(k_ba, D.shape[0]), dim=0, largest=False)
        i = i + start
        if best_d is not None:
            d, i = torch.cat([best_d, d]), torch.cat([best_i, i])
            d, pos = torch.topk(d, min(k_ba, d.shape[0]), dim=0, largest=False)
            i = i.gather(0, pos)
        best_d, best_i = d, i
    return ((torch.cat(ab_i).numpy().astype(np.int64), torch.cat(ab_d).numpy()),
            (best_i.T.cpu().numpy().astype(np.int64), best_d.T.cpu().numpy()))


def knn_into_exact(Q, R, k: int, metric: str):
    """The exact ``k`` neighbours (indices, distances) of the rows of ``Q`` among the rows of ``R`` (torch, one
    block of rows at a time; nearest first)."""
    import torch

    rows = max(1, BLOCK_ELEMENTS // max(R.shape[0], 1))
    r_sq = (R * R).sum(1)
    out_i, out_d = [], []
    for s in range(0, Q.shape[0], rows):
        q = Q[s:s + rows]
        d, i = torch.topk(block_order(q, R, r_sq, metric), k, dim=1, largest=False)
        if metric == "euclidean":
            d = (d + (q * q).sum(1, keepdim=True)).clamp_(min=0).sqrt_()
        out_i.append(i.cpu())
        out_d.append(d.cpu())
    return torch.cat(out_i).numpy().astype(np.int64), torch.cat(out_d).numpy()


def mutual_pairs(nn_ab: np.ndarray, nn_ba: np.ndarray, n_b: int) -> Tuple[np.ndarray, np.ndarray]:
    """The pairs ``(a, b)`` with ``b`` among the neighbours of ``a`` and ``a`` among those of ``b``, sorted."""
    ab = (np.repeat(np.arange(nn_ab.shape[0], dtype=np.int64), nn_ab.shape[1]) * n_b + nn_ab.ravel())
    ba = nn_ba.ravel() * n_b + np.repeat(np.arange(nn_ba.shape[0], dtype=np.int64), nn_ba.shape[1])
    both = np.intersect1d(ab, ba)
    return both // n_b, both % n_b
