"""Seurat 4.3 ``ScaleData``: z-score each gene (sd with n - 1), clip at ``max_value`` (upper side
only, as Seurat does), constant genes become 0; optionally within each batch (``split.by``).

Where the result lives: the dense scaled matrix of the selected features only (cells x features,
float32) goes to ``adata.obsm[key_added]`` (default ``"scaled"``) and the feature names, in column
order, to ``adata.uns[key_added]["features"]``. ``adata.X`` is left untouched, so the log-normalised
data stay sparse.

Example
-------
>>> import anndata as ad, numpy as np
>>> adata = ad.AnnData(np.array([[0., 1.], [2., 1.], [4., 1.]]))
>>> scale_data(adata, features=["0", "1"])
>>> adata.obsm["scaled"].tolist()
[[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0]]
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._validation import check_matrix, get_matrix
from ._sparse import column_mean_var

BLOCK = 1000  # genes densified at a time


def scale_matrix(X, *, max_value: Optional[float] = 10.0, batch_codes=None) -> np.ndarray:
    """Array-level ScaleData of all columns of ``X`` (sparse or dense) -> dense float32.

    ``batch_codes`` (one integer per row) scales every batch separately.
    """
    n, p = X.shape
    codes = np.zeros(n, dtype=np.int64) if batch_codes is None else np.asarray(batch_codes).ravel()
    if codes.size != n:
        raise ValueError(f"{codes.size} batch codes given for {n} cells")
    X = X.tocsr() if sp.issparse(X) else np.asarray(X)
    out = np.empty((n, p), dtype=np.float32)
    levels = np.unique(codes)
    for code in levels:
        rows = np.flatnonzero(codes == code)
        Xb = X if levels.size == 1 else X[rows]
        Xb = Xb.tocsc() if sp.issparse(Xb) else Xb
        target = out if levels.size == 1 else np.empty((rows.size, p), dtype=np.float32)
        for start in range(0, p, BLOCK):
            target[:, start : start + BLOCK] = _scale_block(Xb[:, start : start + BLOCK], max_value)
        if levels.size > 1:
            out[rows] = target
    return out


def _scale_block(block, max_value: Optional[float]) -> np.ndarray:
    mean, var = column_mean_var(block, ddof=1)
    dense = block.toarray() if sp.issparse(block) else block
    sd = np.sqrt(var)
    z = (np.asarray(dense, dtype=np.float64) - mean) / np.where(sd > 0, sd, 1.0)
    z[:, ~(sd > 0)] = 0.0  # Seurat: NaN (0/0) -> 0
    if max_value is not None:
        np.minimum(z, max_value, out=z)
    return z


def _resolve_features(adata, features) -> np.ndarray:
    """Column indices: given names, else ``var["highly_variable"]`` when present, else all genes."""
    if features is None:
        if "highly_variable" in adata.var.columns:
            return np.flatnonzero(adata.var["highly_variable"].to_numpy(dtype=bool))
        return np.arange(adata.n_vars)
    if isinstance(features, str):
        raise TypeError("features must be a list of gene names, not a single string")
    return feature_indices(adata, features)


def feature_indices(adata, features: Sequence[str]) -> np.ndarray:
    """Column indices of the gene names ``features``; a KeyError names the first missing ones."""
    names = pd.Index([str(f) for f in features])
    missing = names[~names.isin(adata.var_names)]
    if len(missing):
        raise KeyError(f"{len(missing)} features not in adata.var_names, e.g. {list(missing[:3])}")
    return adata.var_names.get_indexer(names)


def scale_data(
    adata,
    *,
    features: Optional[Sequence[str]] = None,
    max_value: Optional[float] = 10.0,
    batch_key: Optional[str] = None,
    layer: Optional[str] = None,
    key_added: str = "scaled",
    copy: bool = False,
):
    """Scale the log-normalised data of ``features`` like Seurat's ScaleData.

    ``features`` defaults to ``var["highly_variable"]`` (all genes when that column is absent).
    ``batch_key`` scales within each batch (Seurat ``split.by``). Writes
    ``adata.obsm[key_added]`` (cells x features, float32) and ``adata.uns[key_added]``.
    """
    adata = adata.copy() if copy else adata
    X = get_matrix(adata, layer)
    check_matrix(X, name="adata.X" if layer is None else f"adata.layers[{layer!r}]", allow_negative=True)
    cols = _resolve_features(adata, features)
    if cols.size == 0:
        raise ValueError("no features to scale; run find_variable_features or pass features")
    codes = None
    if batch_key is not None:
        if batch_key not in adata.obs.columns:
            raise KeyError(f"batch column {batch_key!r} not found in adata.obs; available: {list(adata.obs.columns)}")
        codes = pd.Categorical(adata.obs[batch_key].astype(str)).codes
    Xs = X[:, cols] if sp.issparse(X) else np.asarray(X)[:, cols]
    adata.obsm[key_added] = scale_matrix(Xs, max_value=max_value, batch_codes=codes)
    adata.uns[key_added] = {"features": adata.var_names[cols].to_numpy(dtype=str),
                            "max_value": "None" if max_value is None else float(max_value),
                            "batch_key": str(batch_key)}
    return adata if copy else None
