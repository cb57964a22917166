"""Input checks shared by every entry point.

Each check raises a ``ValueError`` (or ``KeyError`` for a missing column) with a message that
names the problem and what to do, *before* anything is modified.

Example
-------
>>> from scintegrate._validation import check_batches
>>> import pandas as pd
>>> check_batches(pd.Series(["a", "b", "a"]))
['a', 'b']
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp


def get_matrix(adata, layer: Optional[str] = None):
    """Return ``adata.X`` or ``adata.layers[layer]`` (sparse or dense), with a clear error."""
    if layer is None:
        return adata.X
    if layer not in adata.layers:
        raise KeyError(f"layer {layer!r} not found; available layers: {sorted(adata.layers)}")
    return adata.layers[layer]


def _values(X) -> np.ndarray:
    return X.data if sp.issparse(X) else np.asarray(X)


def check_matrix(X, *, name: str = "X", counts: bool = False, allow_negative: bool = False,
                 counts_hint: str = "this step needs raw counts") -> None:
    """Reject empty matrices, NaN/inf, negative values and (``counts=True``) non-integers (the error ends with
    ``counts_hint``).

    ``allow_negative=True`` admits continuous data (log-scale, simulated Gaussians) but still rejects an
    integer-valued matrix with negative entries: those are counts with corrupt values, not log data.
    """
    if X is None or X.shape[0] == 0 or X.shape[1] == 0:
        shape = None if X is None else X.shape
        raise ValueError(f"{name} is empty (shape {shape}); nothing to integrate")
    vals = _values(X)
    if not np.all(np.isfinite(vals)):
        n_bad = int(np.size(vals) - np.isfinite(vals).sum())
        raise ValueError(f"{name} contains {n_bad} NaN or infinite values; remove or impute them first")
    negative = bool(vals.size) and vals.min() < 0
    if negative and allow_negative and np.allclose(vals, np.round(vals)):
        raise ValueError(
            f"{name} holds integer values with negative entries (min {vals.min():.3g}): counts cannot be "
            "negative values; pass the raw counts"
        )
    if negative and not allow_negative:
        raise ValueError(
            f"{name} contains negative values (min {vals.min():.3g}); raw counts are expected. "
            "Pass the counts layer (layer='counts') or data that was not scaled"
        )
    if counts and vals.size and not np.allclose(vals, np.round(vals)):
        raise ValueError(
            f"{name} is not integer counts (e.g. {vals[~np.isclose(vals, np.round(vals))][:3]}); {counts_hint}"
        )


#: log1p of 1e4-normalised counts stays below ~12, log2(CPM + 1) below ~21: larger non-integers are counts
LOG_MAX = 30.0


def _is_integer(vals: np.ndarray) -> bool:
    return all(np.allclose(block, np.round(block)) for block in np.array_split(vals, max(1, vals.size // 10**7)))


def is_integer_matrix(X) -> bool:
    """True when every stored value is a non-negative integer (what an NB likelihood needs)."""
    vals = _values(X).ravel()
    return bool(vals.size == 0 or (vals.min() >= 0 and _is_integer(vals)))


def is_count_matrix(X) -> bool:
    """True when the values are counts: non-negative, and integers or too large for log data (estimated
    counts such as Salmon's). Decided from every stored value; see :mod:`scintegrate.data.kinds`."""
    vals = _values(X).ravel()
    if vals.size == 0:
        return True
    return bool(vals.min() >= 0 and (vals.max() > LOG_MAX or _is_integer(vals)))


def check_embedding(X, *, name: str) -> None:
    """Reject an embedding (``obsm`` matrix) that is not a non-empty 2-D numeric array of finite values."""
    if X is None or X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} is empty or not 2-D (shape {None if X is None else X.shape}); nothing to integrate")
    if not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"{name} holds {X.dtype} values, not numbers")
    finite = np.isfinite(X)
    if not finite.all():
        raise ValueError(f"{name} contains {int(finite.size - finite.sum())} NaN or infinite values; "
                         "remove or impute them first")


def get_embedding(adata, rep: str) -> np.ndarray:
    """``adata.obsm[rep]`` as a dense array; a ``KeyError`` lists the ``obsm`` keys."""
    if rep not in adata.obsm:
        raise KeyError(f"use_rep {rep!r} not found in adata.obsm; available keys: {sorted(adata.obsm)}")
    X = adata.obsm[rep]
    return X.toarray() if sp.issparse(X) else np.asarray(X)


def batch_keys(batch_key) -> Optional[list]:
    """``batch_key`` (one column name, a list of them or ``None``) as a list of names or ``None``."""
    if batch_key is None:
        return None
    keys = list(batch_key) if isinstance(batch_key, (list, tuple)) else [batch_key]
    if not keys:
        raise ValueError("batch_key is an empty list: name the adata.obs column(s) that hold each cell's batch")
    return keys


def check_batches(batch: pd.Series | Sequence, *, min_batches: int = 2, key: str = "batch") -> list:
    """Check a batch vector: no missing values and at least ``min_batches`` levels.

    Returns the batch levels in order of first appearance.
    """
    batch = pd.Series(batch)
    if batch.isna().any():
        raise ValueError(f"obs[{key!r}] has {int(batch.isna().sum())} missing values; every cell needs a batch")
    levels = list(pd.unique(batch.astype(str)))
    if len(levels) < min_batches:
        raise ValueError(
            f"obs[{key!r}] has {len(levels)} batch ({levels}); integration needs at least {min_batches} batches"
        )
    if min_batches >= 2 and len(levels) > 2:
        sizes = batch.astype(str).value_counts()
        if sizes.median() < 2:
            raise ValueError(
                f"obs[{key!r}] has {len(levels)} levels for {len(batch)} cells (median {sizes.median():g} cell per "
                "level): it looks like a cell-level value (an ID or a continuous measurement), not a batch; "
                "pass the column that names each cell's batch")
    return levels


def check_adata(
    adata,
    batch_key: Optional[str] = "batch",
    *,
    layer: Optional[str] = None,
    min_batches: int = 2,
    counts: bool = False,
    allow_negative: bool = False,
    rep: Optional[str] = None,
    counts_hint: str = "this step needs raw counts",
) -> None:
    """All the checks an integration method runs on its AnnData input (``counts_hint``: see :func:`check_matrix`).

    ``batch_key`` may be a list of columns (each is checked). With ``rep`` the input is the embedding
    ``adata.obsm[rep]``: it is checked instead of the matrix, and genes are not needed.
    """
    if adata.n_obs == 0 or (adata.n_vars == 0 and rep is None):
        raise ValueError(f"AnnData is empty ({adata.n_obs} cells x {adata.n_vars} genes)")
    if not adata.obs_names.is_unique:
        dup = adata.obs_names[adata.obs_names.duplicated()][:3].tolist()
        raise ValueError(f"cell names are not unique (e.g. {dup}); call adata.obs_names_make_unique() first")
    if rep is None and not adata.var_names.is_unique:
        dup = adata.var_names[adata.var_names.duplicated()][:3].tolist()
        raise ValueError(f"gene names are not unique (e.g. {dup}); call adata.var_names_make_unique() first")
    for key in batch_keys(batch_key) or []:
        if key not in adata.obs.columns:
            raise KeyError(
                f"batch column {key!r} not found in adata.obs; available columns: {list(adata.obs.columns)}"
            )
        check_batches(adata.obs[key], min_batches=min_batches, key=key)
    if rep is not None:
        check_embedding(get_embedding(adata, rep), name=f"adata.obsm[{rep!r}]")
        return
    label = "adata.X" if layer is None else f"adata.layers[{layer!r}]"
    check_matrix(get_matrix(adata, layer), name=label, counts=counts, allow_negative=allow_negative,
                 counts_hint=counts_hint)
