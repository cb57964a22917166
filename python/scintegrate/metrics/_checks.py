"""Input checks for the metrics: embeddings, label vectors and the "is this metric defined" tests.

Every public metric validates its inputs here first, so bad input fails with a ``ValueError`` that
names the problem instead of an error deep inside scikit-learn, igraph or UMAP.

Example
-------
>>> import numpy as np
>>> from scintegrate.metrics._checks import as_embedding, as_codes
>>> X = as_embedding(np.zeros((3, 2)))
>>> as_codes(["b", "a", "b"], n=3, name="batch")
(array([1, 0, 1]), array(['a', 'b'], dtype=object))
"""

from __future__ import annotations

import warnings
from typing import Optional, Tuple

import numpy as np
import pandas as pd
import scipy.sparse as sp


class MetricWarning(UserWarning):
    """A metric could not be computed (returned NaN) or was computed on reduced input."""


def as_embedding(X, name: str = "X", min_cells: int = 2) -> np.ndarray:
    """Dense float64 2-D array without NaN/inf and with at least ``min_cells`` rows."""
    if X is None:
        raise ValueError(f"{name} is None; pass an embedding of shape (n_cells, n_dims)")
    if sp.issparse(X):
        X = X.toarray()
    try:
        X = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric matrix (n_cells, n_dims): {err}") from None
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_cells, n_dims); got shape {X.shape}")
    if X.shape[0] < min_cells or X.shape[1] == 0:
        raise ValueError(f"{name} has shape {X.shape}; need at least {min_cells} cells and 1 dimension")
    n_bad = int(X.size - np.count_nonzero(np.isfinite(X)))
    if n_bad:
        raise ValueError(
            f"{name} contains {n_bad} NaN or infinite values; metrics are undefined on them "
            "(remove those cells or fix the embedding first)"
        )
    return X


def as_codes(values, n: Optional[int] = None, name: str = "labels") -> Tuple[np.ndarray, np.ndarray]:
    """Integer codes ``0..L-1`` and the sorted category names of a label vector.

    Raises when the length differs from ``n`` or when a value is missing.
    """
    if values is None:
        raise ValueError(f"{name} is None; pass one value per cell")
    series = pd.Series(np.asarray(values).ravel() if not isinstance(values, pd.Series) else values.values)
    if n is not None and len(series) != n:
        raise ValueError(f"{name} has length {len(series)} but the embedding has {n} cells")
    if series.isna().any():
        raise ValueError(f"{name} has {int(series.isna().sum())} missing values; every cell needs one")
    cat = pd.Categorical(series.astype(str))
    return np.asarray(cat.codes, dtype=np.int64), np.asarray(cat.categories, dtype=object)


def n_levels(codes: np.ndarray) -> int:
    """Number of distinct codes actually present."""
    return int(np.unique(codes).size)


def warn_nan(metric: str, reason: str) -> float:
    """Emit a :class:`MetricWarning` naming why ``metric`` is NaN and return NaN."""
    warnings.warn(f"{metric} is NaN: {reason}", MetricWarning, stacklevel=3)
    return float("nan")


def check_same_rows(X: np.ndarray, other: np.ndarray, name: str) -> None:
    """Raise when ``other`` has a different number of rows than ``X``."""
    if other.shape[0] != X.shape[0]:
        raise ValueError(f"{name} has {other.shape[0]} rows but the embedding has {X.shape[0]} cells")
