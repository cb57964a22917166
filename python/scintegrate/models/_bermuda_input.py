"""BERMUDA's input transform: counts -> CPM/TPM -> log2(x+1) -> per-batch standardisation -> [0,1].

BERMUDA (Wang et al. 2019, ``pre_processing.py``) standardises each gene within each batch
(``sklearn.preprocessing.scale``: mean 0, population sd 1, a constant gene stays 0) and then scales
it linearly to [0, 1] (``minmax_scale``). Both steps are affine and increasing per (batch, gene),
so the whole map is ``x * slope[b, g] + offset[b, g]`` on the log values. :func:`bermuda_scaling_fit`
computes those coefficients from a sparse matrix without densifying it;
:meth:`BermudaScaling.apply` turns a minibatch of rows into the dense float32 network input.

``scope`` says over which cells the [0, 1] range is taken:

- ``"batch"`` (default, as in BERMUDA's code: ``minmax_scale`` runs on each data set separately):
  every gene spans [0, 1] within every batch (the standardisation then cancels out exactly);
- ``"global"``: min and max of the standardised values over all cells, so batches share one scale
  (``BERMUDA(scaling_scope="global")``; see the model's docstring for what it changes).

Example
-------
>>> import numpy as np, scipy.sparse as sp
>>> from scintegrate.models._bermuda_input import log_cpm, bermuda_scaling_fit
>>> X = sp.csr_matrix(np.array([[1., 0.], [3., 2.], [0., 5.], [2., 2.]]))
>>> codes = np.array([0, 0, 1, 1])
>>> scaling = bermuda_scaling_fit(log_cpm(X), codes)
>>> scaling.apply(log_cpm(X), codes).round(3)
array([[1., 0.],
       [0., 1.],
       [0., 1.],
       [1., 0.]], dtype=float32)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._validation import check_matrix, get_matrix, is_count_matrix
from ..pp._sparse import column_mean_var, column_min_max, row_sums
from ..pp.scale import feature_indices

SCOPES = ("batch", "global")


def log_cpm(X, gene_lengths: Optional[np.ndarray] = None, *, scale: float = 1e6, base: float = 2.0):
    """Counts -> CPM (or TPM with ``gene_lengths``) -> ``log2(x + 1)``; sparse in, sparse (CSR) out.

    With ``gene_lengths`` (one positive length per column) counts are divided by length before the
    per-cell normalisation (TPM). Cells with zero total stay zero.

    >>> import numpy as np
    >>> log_cpm(np.array([[1., 3.]])).round(4)
    array([[17.9316, 19.5165]])
    """
    check_matrix(X, name="counts")
    sparse = sp.issparse(X)
    X = sp.csr_matrix(X, dtype=np.float64, copy=True) if sparse else np.array(X, dtype=np.float64)
    if gene_lengths is not None:
        lengths = np.asarray(gene_lengths, dtype=np.float64).ravel()
        if lengths.size != X.shape[1] or not np.all(np.isfinite(lengths)) or np.any(lengths <= 0):
            raise ValueError(f"gene_lengths must hold {X.shape[1]} positive finite values (one per gene)")
        X = X.multiply(1.0 / lengths[None, :]).tocsr() if sparse else X / lengths[None, :]
    totals = row_sums(X)
    factors = np.divide(scale, totals, out=np.zeros_like(totals), where=totals > 0)
    if sparse:
        X = sp.diags(factors) @ X
        X.data = np.log1p(X.data) / np.log(base)
        return X.tocsr()
    return np.log1p(X * factors[:, None]) / np.log(base)


@dataclass
class BermudaScaling:
    """Per-(batch, gene) affine map from log expression to BERMUDA's [0, 1] input.

    ``mean``/``sd`` (n_batches x n_genes) standardise within a batch (population sd, 1 where the
    gene is constant); ``zmin``/``zmax`` (n_batches x n_genes) are the range of the standardised
    values used for the [0, 1] scaling (identical rows when ``scope="global"``).
    """

    batches: list
    mean: np.ndarray
    sd: np.ndarray
    zmin: np.ndarray
    zmax: np.ndarray
    scope: str = "batch"
    slope: np.ndarray = field(init=False, repr=False)
    offset: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        span = self.zmax - self.zmin
        span = np.where(span > 0, span, 1.0)  # sklearn's minmax_scale keeps a constant gene at 0
        self.slope = (1.0 / (self.sd * span)).astype(np.float32)
        self.offset = (-(self.mean / self.sd + self.zmin) / span).astype(np.float32)

    @property
    def n_genes(self) -> int:
        return self.mean.shape[1]

    def apply(self, X_rows, batch_codes_rows) -> np.ndarray:
        """Dense float32 ``X_rows * slope[batch] + offset[batch]`` for a minibatch of log rows."""
        codes = np.asarray(batch_codes_rows, dtype=np.int64).ravel()
        if X_rows.shape[1] != self.n_genes:
            raise ValueError(f"rows have {X_rows.shape[1]} genes but the scaling was fitted on {self.n_genes}")
        if codes.size != X_rows.shape[0]:
            raise ValueError(f"{codes.size} batch codes given for {X_rows.shape[0]} rows")
        if codes.size and (codes.min() < 0 or codes.max() >= len(self.batches)):
            raise ValueError(f"batch codes must lie in [0, {len(self.batches) - 1}]")
        dense = X_rows.toarray() if sp.issparse(X_rows) else np.asarray(X_rows)
        out = dense.astype(np.float32, copy=True)
        out *= self.slope[codes]
        out += self.offset[codes]
        return out


def _column_stats(X) -> tuple:
    """Mean, population sd (1 for a constant column, like sklearn's ``scale``), min and max."""
    mean, var = column_mean_var(X, ddof=0)
    sd = np.sqrt(var)
    # relative tolerance: a constant column can show rounding-level variance
    sd = np.where(sd > 1e-12 * np.maximum(np.abs(mean), 1.0), sd, 1.0)
    cmin, cmax = column_min_max(X)
    return mean, sd, cmin, cmax


def bermuda_scaling_fit(X_log, batch_codes, *, scope: str = "batch",
                        batches: Optional[Sequence] = None) -> BermudaScaling:
    """Fit the per-(batch, gene) standardise-then-[0,1] map on log expression (sparse or dense).

    ``batch_codes`` are integers 0..B-1 (one per row); ``batches`` optionally names them.
    Nothing is densified: per-batch column statistics come from row slices of a CSR matrix, and
    the min/max of the standardised values follow from the raw column min/max because the map
    is increasing.
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    check_matrix(X_log, name="log expression", allow_negative=True)
    codes = np.asarray(batch_codes).ravel()
    if codes.size != X_log.shape[0]:
        raise ValueError(f"{codes.size} batch codes given for {X_log.shape[0]} cells")
    if not np.issubdtype(codes.dtype, np.integer) or codes.min() < 0:
        raise ValueError("batch_codes must be non-negative integers (e.g. pd.Categorical(...).codes)")
    n_batches = int(codes.max()) + 1 if batches is None else len(batches)
    present = np.bincount(codes, minlength=n_batches)
    if present.size > n_batches or np.any(present == 0):
        raise ValueError(f"every batch code in 0..{n_batches - 1} needs at least one cell; counts {present.tolist()}")
    X = sp.csr_matrix(X_log) if sp.issparse(X_log) else np.asarray(X_log)
    stats = [_column_stats(X[codes == b]) for b in range(n_batches)]
    mean, sd, cmin, cmax = (np.vstack([s[i] for s in stats]) for i in range(4))
    zmin, zmax = (cmin - mean) / sd, (cmax - mean) / sd
    if scope == "global":
        zmin = np.broadcast_to(zmin.min(0), zmin.shape).copy()
        zmax = np.broadcast_to(zmax.max(0), zmax.shape).copy()
    names = list(range(n_batches)) if batches is None else list(batches)
    return BermudaScaling(batches=names, mean=mean, sd=sd, zmin=zmin, zmax=zmax, scope=scope)


def _feature_index(adata, features) -> np.ndarray:
    """Column indices for ``features``: None (all genes), a boolean ``var`` column name, or names."""
    if features is None:
        return np.arange(adata.n_vars)
    if isinstance(features, str):
        if features not in adata.var.columns:
            raise KeyError(f"features={features!r} is not a column of adata.var; pass a list of gene names")
        return np.flatnonzero(adata.var[features].to_numpy(dtype=bool))
    return feature_indices(adata, features)


def bermuda_transform(
    adata,
    *,
    batch_key: str = "batch",
    features: Union[None, str, Sequence[str]] = None,
    layer: Optional[str] = None,
    gene_lengths: Optional[np.ndarray] = None,
    scope: str = "batch",
    key_added: str = "bermuda_input",
    copy: bool = False,
):
    """BERMUDA's input: counts -> CPM/TPM -> log2(x+1) -> per-batch standardise -> [0,1] per gene.

    ``features``: None (all genes), the name of a boolean ``var`` column (e.g.
    ``"integration_feature"``) or a list of gene names. ``gene_lengths`` (``adata.n_vars`` values:
    CPM/TPM is computed over all genes, then the features are taken) switches CPM to TPM. Input that is
    not raw counts skips CPM and log (with a warning) and is treated as log expression.

    Stores the dense float32 matrix (cells x features) in ``adata.obsm[key_added]`` and
    ``adata.uns[key_added]`` = {"features", "batches", "scope", "log_cpm"}.

    >>> import scintegrate as si
    >>> adata = si.datasets.simulate_counts(n_cells=200, n_genes=50, seed=0)  # doctest: +SKIP
    >>> bermuda_transform(adata).obsm["bermuda_input"].max()  # doctest: +SKIP
    1.0
    """
    if batch_key not in adata.obs.columns:
        raise KeyError(f"batch column {batch_key!r} not found in adata.obs; available: {list(adata.obs.columns)}")
    adata = adata.copy() if copy else adata
    X = get_matrix(adata, layer)
    cols = _feature_index(adata, features)
    if cols.size == 0:
        raise ValueError("no features selected; check the features argument")
    counts = is_count_matrix(X)
    if counts:
        X_log = log_cpm(X, gene_lengths)
    else:
        warnings.warn("input is not raw counts (non-integer or negative values); skipping CPM and log2(x+1) "
                      "and treating it as log expression", UserWarning, stacklevel=2)
        X_log = sp.csr_matrix(X) if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    X_log = X_log[:, cols]
    batch = pd.Categorical(adata.obs[batch_key].astype(str))
    scaling = bermuda_scaling_fit(X_log, batch.codes.astype(np.int64), scope=scope,
                                  batches=list(batch.categories))
    adata.obsm[key_added] = scaling.apply(X_log, batch.codes)
    adata.uns[key_added] = {"features": adata.var_names[cols].to_numpy(dtype=str),
                            "batches": np.asarray(scaling.batches, dtype=str), "scope": scope,
                            "log_cpm": bool(counts)}
    return adata if copy else None


# ---------------------------------------------------------------------- what BERMUDA.fit / embed use
def _log_matrix(X, cols, counts: bool):
    """Sparse float32 log2(CPM+1) (counts) or the values as they are (log data), on ``cols``."""
    if counts:
        return sp.csr_matrix(log_cpm(X)[:, cols], dtype=np.float32)
    X = X[:, cols]
    return sp.csr_matrix(X, dtype=np.float32) if sp.issparse(X) else np.asarray(X, dtype=np.float32)


def prepare_input(data, features, scope: str = "batch"):
    """``(X_log, scaling)`` of a :class:`~scintegrate.data.CellData` on ``features``: the log matrix BERMUDA
    trains on (sparse) and the fitted per-(batch, gene) scaling (batch codes = ``data.batch``)."""
    X_log = _log_matrix(data.X, data.columns(features), data.is_counts)
    scaling = bermuda_scaling_fit(X_log, data.batch, batches=list(data.batch_levels), scope=scope)
    return X_log, scaling


def input_for_new_data(data, features, fitted: BermudaScaling):
    """Log input, batch codes and scaling for new cells: the fitted scaling for known batches; a new batch
    gets its own standardisation and, with ``scope="global"``, the fitted common [0, 1] range (else its own)."""
    X_log = _log_matrix(data.X, data.columns(features), data.is_counts)
    known = {b: i for i, b in enumerate(fitted.batches)}
    own = bermuda_scaling_fit(X_log, data.batch, batches=list(data.batch_levels))
    if fitted.scope == "global":  # every fitted row holds the common range
        own.zmin[:], own.zmax[:] = fitted.zmin[0], fitted.zmax[0]

    def row(name, array, k):
        return getattr(fitted, array)[known[name]] if name in known else getattr(own, array)[k]
    arrays = {a: np.vstack([row(b, a, k) for k, b in enumerate(data.batch_levels)])
              for a in ("mean", "sd", "zmin", "zmax")}
    scaling = BermudaScaling(batches=list(data.batch_levels), scope=fitted.scope, **arrays)
    return X_log, data.batch, scaling
