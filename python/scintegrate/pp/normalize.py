"""Seurat's ``NormalizeData(normalization.method = "LogNormalize")``: ``log1p(x / total * scale_factor)``.

Example
-------
>>> import anndata as ad, numpy as np
>>> adata = ad.AnnData(np.array([[1., 3.], [2., 2.]], dtype=np.float32))
>>> log_normalize(adata, scale_factor=4)
>>> np.round(adata.X.astype(float), 4).tolist()
[[0.6931, 1.3863], [1.0986, 1.0986]]
>>> adata.layers["counts"].tolist()
[[1.0, 3.0], [2.0, 2.0]]
"""

from __future__ import annotations

import warnings
from typing import Optional

import numpy as np
import scipy.sparse as sp

from .._validation import check_matrix, is_count_matrix
from ._sparse import row_sums


def log_normalize_matrix(X, scale_factor: float = 1e4):
    """Array-level LogNormalize (cells in rows); sparse in, CSR out; dtype float32 or float64 kept.

    Cells with zero total counts stay zero.
    """
    check_matrix(X, name="counts")
    if not scale_factor > 0:
        raise ValueError(f"scale_factor must be positive, got {scale_factor}")
    dtype = X.dtype if np.issubdtype(X.dtype, np.floating) else np.float32
    totals = row_sums(X)
    factors = np.divide(scale_factor, totals, out=np.zeros_like(totals), where=totals > 0)
    if sp.issparse(X):
        out = sp.csr_matrix(X, dtype=np.float64, copy=True)
        out.data *= np.repeat(factors, np.diff(out.indptr))
        np.log1p(out.data, out=out.data)
        return out.astype(dtype)
    return np.log1p(np.asarray(X, dtype=np.float64) * factors[:, None]).astype(dtype)


def log_normalize(
    adata,
    *,
    scale_factor: float = 1e4,
    counts_layer: Optional[str] = "counts",
    copy: bool = False,
):
    """Log-normalise raw counts in ``adata.X`` like Seurat 4.3 (``LogNormalize``, natural log).

    The raw counts are kept in ``adata.layers[counts_layer]`` (skipped when ``counts_layer`` is
    None); ``adata.X`` becomes ``log1p(count / cell_total * scale_factor)``. Sparse stays sparse.
    ``adata.uns["log_normalize"]`` records the scale factor. Returns the AnnData when ``copy``.
    """
    adata = adata.copy() if copy else adata
    X = adata.X
    check_matrix(X, name="adata.X")
    if not is_count_matrix(X):
        warnings.warn("adata.X does not look like raw counts (non-integer values); normalising it anyway",
                      UserWarning, stacklevel=2)
    if counts_layer is not None:
        adata.layers[counts_layer] = X.copy()
    adata.X = log_normalize_matrix(X, scale_factor)
    adata.uns["log_normalize"] = {"scale_factor": float(scale_factor), "counts_layer": str(counts_layer)}
    return adata if copy else None
