"""Column statistics of sparse (CSR/CSC) or dense matrices without densifying them.

>>> import numpy as np, scipy.sparse as sp
>>> mean, var = column_mean_var(sp.csr_matrix(np.array([[1., 0.], [3., 4.]])), ddof=1)
>>> mean.tolist(), var.tolist()
([2.0, 2.0], [2.0, 8.0])
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import scipy.sparse as sp


def _entries(X):
    """(column index, value as float64) of every stored entry, for any sparse format."""
    if X.format == "csr":
        return X.indices, np.asarray(X.data, dtype=np.float64)
    coo = X.tocoo()
    return coo.col, np.asarray(coo.data, dtype=np.float64)


def column_mean_var(X, ddof: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and variance (``ddof`` like numpy) of each column, two-pass for accuracy."""
    n, p = X.shape
    if not sp.issparse(X):
        X = np.asarray(X, dtype=np.float64)
        return X.mean(0), X.var(0, ddof=ddof) if n > ddof else np.zeros(p)
    cols, vals = _entries(X)
    mean = np.bincount(cols, weights=vals, minlength=p) / n
    dev = vals - mean[cols]
    nnz = np.bincount(cols, minlength=p)
    ss = np.bincount(cols, weights=dev * dev, minlength=p) + (n - nnz) * mean * mean
    return mean, ss / (n - ddof) if n > ddof else np.zeros(p)


def column_clipped_sq_sum(X, mean: np.ndarray, sd: np.ndarray, vmax: float) -> np.ndarray:
    """Sum over rows of ``min((x - mean) / sd, vmax) ** 2`` per column (0 where ``sd == 0``).

    This is Seurat's ``SparseRowVarStd`` numerator: only the upper side is clipped.
    """
    n, p = X.shape
    safe = np.where(sd > 0, sd, 1.0)
    if not sp.issparse(X):
        Z = np.minimum((np.asarray(X, dtype=np.float64) - mean) / safe, vmax)
        out = (Z * Z).sum(0)
    else:
        cols, vals = _entries(X)
        z = np.minimum((vals - mean[cols]) / safe[cols], vmax)
        nnz = np.bincount(cols, minlength=p)
        zero = np.minimum(-mean / safe, vmax)
        out = np.bincount(cols, weights=z * z, minlength=p) + (n - nnz) * zero * zero
    return np.where(sd > 0, out, 0.0)


def column_min_max(X) -> Tuple[np.ndarray, np.ndarray]:
    """Minimum and maximum of each column, implicit zeros included."""
    if sp.issparse(X):
        return (np.asarray(X.min(axis=0).toarray()).ravel().astype(np.float64),
                np.asarray(X.max(axis=0).toarray()).ravel().astype(np.float64))
    X = np.asarray(X)
    return X.min(0).astype(np.float64), X.max(0).astype(np.float64)


def row_sums(X) -> np.ndarray:
    """Sum of each row, accumulated in float64."""
    if not sp.issparse(X):
        return np.asarray(X, dtype=np.float64).sum(1)
    coo = X.tocoo()
    return np.bincount(coo.row, weights=np.asarray(coo.data, dtype=np.float64), minlength=X.shape[0])
