"""Seurat 4.3 variable features: ``FindVariableFeatures(selection.method = "vst")`` and
``SelectIntegrationFeatures``.

vst works on raw counts: per gene mean and variance (n - 1); a loess (span 0.3, degree 2, R's
netlib code through ``skmisc.loess``) of log10(variance) on log10(mean) gives the expected
variance; values standardised with it are clipped at sqrt(n_cells) (upper side only) and their
variance ranks the genes. Genes with zero mean are never selected.

Example
-------
>>> import scintegrate as si  # doctest: +SKIP
>>> adata = si.datasets.simulate_counts(n_cells=300, n_genes=200, seed=0)  # doctest: +SKIP
>>> find_variable_features(adata, n_features=50)  # doctest: +SKIP
>>> int(adata.var["highly_variable"].sum())  # doctest: +SKIP
50
"""

from __future__ import annotations

import warnings
from typing import List, Optional, Sequence

import numpy as np
import pandas as pd

from .._validation import check_matrix, is_count_matrix
from ._sparse import column_clipped_sq_sum, column_mean_var

VST_COLUMNS = ["vst_mean", "vst_variance", "vst_variance_expected", "vst_variance_standardized"]


# Conditions that R's loess reports as *warnings* (it goes on with a pseudoinverse); skmisc raises
# them as ValueError after completing the same computation, so the fitted values are still valid.
_LOESS_WARNINGS = ("pseudoinverse used", "neighborhood radius", "reciprocal condition number",
                   "There are other near singularities")


def _loess_fit(x: np.ndarray, y: np.ndarray, span: float) -> np.ndarray:
    """Fitted values of R's ``loess(y ~ x, span = span)`` (degree 2, gaussian, interpolate)."""
    from skmisc.loess import loess

    model = loess(x, y, span=span, degree=2, family="gaussian", surface="interpolate",
                  statistics="approximate")
    try:
        model.fit()
    except ValueError as err:
        msg = err.args[0].decode() if err.args and isinstance(err.args[0], bytes) else str(err)
        if not msg.startswith(_LOESS_WARNINGS):
            raise ValueError(f"vst loess fit failed ({msg}); try a larger span") from err
    fitted = np.asarray(model.outputs.fitted_values, dtype=np.float64)
    if fitted.shape != x.shape or not np.all(np.isfinite(fitted)):
        raise ValueError("vst loess fit produced no finite values; try a larger span")
    return fitted


def vst(X, *, span: float = 0.3, clip_max: Optional[float] = None) -> pd.DataFrame:
    """Array-level vst on a counts matrix (cells in rows, sparse or dense).

    Returns a DataFrame (one row per gene) with ``vst_mean``, ``vst_variance``,
    ``vst_variance_expected`` and ``vst_variance_standardized``; ``clip_max`` defaults to
    sqrt(n_cells) like Seurat's ``clip.max = "auto"``.
    """
    n = X.shape[0]
    if n < 2:
        raise ValueError(f"vst needs at least 2 cells, got {n}")
    clip_max = np.sqrt(n) if clip_max is None else float(clip_max)
    mean, var = column_mean_var(X, ddof=1)
    expected = np.zeros_like(var)
    not_const = var > 0
    if not_const.sum() < 3:
        raise ValueError(f"vst needs at least 3 genes with non-zero variance, got {int(not_const.sum())}")
    fitted = _loess_fit(np.log10(mean[not_const]), np.log10(var[not_const]), span)
    expected[not_const] = 10.0 ** fitted
    standardized = column_clipped_sq_sum(X, mean, np.sqrt(expected), clip_max) / (n - 1)
    return pd.DataFrame({"vst_mean": mean, "vst_variance": var, "vst_variance_expected": expected,
                         "vst_variance_standardized": standardized})


def vst_rank(table: pd.DataFrame) -> np.ndarray:
    """0-based rank by decreasing standardized variance (NaN for zero-mean genes).

    Values are compared at 10 decimals so that genes with mathematically equal values (same
    count sums) keep gene order instead of an order set by rounding noise.
    """
    rank = np.full(len(table), np.nan)
    keep = np.flatnonzero(table["vst_mean"].to_numpy() != 0)
    values = np.round(table["vst_variance_standardized"].to_numpy()[keep], 10)
    order = keep[np.argsort(-values, kind="stable")]
    rank[order] = np.arange(order.size)
    return rank


def _counts_matrix(adata, layer: Optional[str]):
    """The counts to run vst on; falls back to ``X`` like Seurat when the layer is missing."""
    if layer is not None and layer in adata.layers:
        return adata.layers[layer]
    X = adata.X
    if layer is not None and not is_count_matrix(X):
        warnings.warn(f"layer {layer!r} not found and adata.X is not counts; running vst on adata.X "
                      "(Seurat does the same when the counts slot is empty)", UserWarning, stacklevel=3)
    return X


def _batch_codes(adata, batch_key: str) -> pd.Categorical:
    if batch_key not in adata.obs.columns:
        raise KeyError(f"batch column {batch_key!r} not found in adata.obs; available: {list(adata.obs.columns)}")
    batch = adata.obs[batch_key]
    if batch.isna().any():
        raise ValueError(f"obs[{batch_key!r}] has missing values; every cell needs a batch")
    return pd.Categorical(batch.astype(str))


def find_variable_features(
    adata,
    *,
    n_features: int = 2000,
    batch_key: Optional[str] = None,
    layer: Optional[str] = "counts",
    span: float = 0.3,
    copy: bool = False,
):
    """Seurat's vst highly variable genes; sets ``var["highly_variable"]`` and the ``vst_*`` columns.

    Runs on ``adata.layers[layer]`` (raw counts; ``adata.X`` when the layer is absent).
    ``var["highly_variable_rank"]`` is the 0-based rank (NaN for zero-mean genes).

    With ``batch_key``, vst also runs in every batch separately: per-batch tables go to
    ``adata.varm["vst_variance_standardized_per_batch"]`` and ``adata.varm["vst_rank_per_batch"]``
    (DataFrames, one column per batch), and ``highly_variable`` / ``highly_variable_rank`` are the
    integration features of :func:`select_integration_features` (Seurat's per-batch selection).
    The ``vst_*`` columns then describe all cells together.
    """
    if n_features < 1:
        raise ValueError(f"n_features must be at least 1, got {n_features}")
    adata = adata.copy() if copy else adata
    X = _counts_matrix(adata, layer)
    check_matrix(X, name="counts")
    table = vst(X, span=span)
    for col in VST_COLUMNS:
        adata.var[col] = table[col].to_numpy()
    rank = vst_rank(table)
    adata.var["highly_variable_rank"] = rank
    adata.var["highly_variable"] = rank < n_features
    adata.uns["vst"] = {"n_features": int(n_features), "span": float(span), "batch_key": str(batch_key)}
    if batch_key is not None:
        _vst_per_batch(adata, X, batch_key, span)
        features = select_integration_features(adata, batch_key=batch_key, n_features=n_features,
                                               fvf_n_features=n_features)
        position = pd.Series(np.arange(len(features), dtype=float), index=features)
        adata.var["highly_variable_rank"] = position.reindex(adata.var_names).to_numpy()
        adata.var["highly_variable"] = adata.var["integration_feature"].to_numpy()
    return adata if copy else None


def _vst_per_batch(adata, X, batch_key: str, span: float) -> None:
    batch = _batch_codes(adata, batch_key)
    std, ranks = {}, {}
    for code, name in enumerate(batch.categories):
        try:
            table = vst(X[np.flatnonzero(batch.codes == code)], span=span)
        except ValueError as err:
            raise ValueError(f"batch {name!r}: {err}") from err
        std[name] = table["vst_variance_standardized"].to_numpy()
        ranks[name] = vst_rank(table)
    adata.varm["vst_variance_standardized_per_batch"] = pd.DataFrame(std, index=adata.var_names)
    adata.varm["vst_rank_per_batch"] = pd.DataFrame(ranks, index=adata.var_names)
    adata.uns["vst"]["batches"] = np.asarray(batch.categories, dtype=str)


def _per_batch_ranks(adata, batch_key: str, layer: Optional[str], span: float) -> pd.DataFrame:
    """Per-batch vst ranks, computed when absent or made with another ``batch_key``."""
    stored = adata.uns.get("vst", {}).get("batch_key")
    if "vst_rank_per_batch" not in adata.varm or stored != batch_key:
        _batch_codes(adata, batch_key)
        adata.uns.setdefault("vst", {"span": float(span)})["batch_key"] = batch_key
        _vst_per_batch(adata, _counts_matrix(adata, layer), batch_key, span)
    return adata.varm["vst_rank_per_batch"]


def integration_features_from_lists(variable_lists: Sequence[Sequence[str]], n_features: int = 2000) -> List[str]:
    """Seurat's SelectIntegrationFeatures on ordered per-batch variable-feature lists.

    Genes are ranked by the number of lists they appear in; among the genes above the count of
    the ``n_features``-th gene, and then among those tied with it, by the median position
    (1-based) in the lists that contain them. Ties keep R's order (count, then name).
    """
    counts = pd.Series([g for vf in variable_lists for g in vf]).value_counts()
    # R: sort(table(x), decreasing = TRUE) -- names alphabetical, stable sort on the count
    names = np.array(sorted(counts.index))
    values = counts.reindex(names).to_numpy()
    order = np.argsort(-values, kind="stable")
    names, values = names[order], values[order]
    if names.size == 0:
        return []
    tie_val = values[min(n_features, names.size) - 1]
    positions = [{g: i + 1 for i, g in enumerate(vf)} for vf in variable_lists]

    def by_median_rank(genes):
        med = np.array([np.median([p[g] for p in positions if g in p]) for g in genes])
        return list(np.asarray(genes)[np.argsort(med, kind="stable")])

    above = by_median_rank(names[values > tie_val]) if np.any(values > tie_val) else []
    tied = by_median_rank(names[values == tie_val])
    return [str(g) for g in above + tied[: max(n_features - len(above), 0)]]


def select_integration_features(
    adata,
    *,
    batch_key: str,
    n_features: int = 2000,
    fvf_n_features: int = 2000,
    layer: Optional[str] = "counts",
    span: float = 0.3,
    copy: bool = False,
):
    """Seurat's SelectIntegrationFeatures over the batches of ``adata``; returns the ordered gene list.

    Each batch's variable features are its top ``fvf_n_features`` vst genes (computed here when
    :func:`find_variable_features` was not run with this ``batch_key``). Sets
    ``var["integration_feature"]`` and ``uns["integration_features"]``. With ``copy=True``
    returns ``(adata_copy, features)``.
    """
    if n_features < 1:
        raise ValueError(f"n_features must be at least 1, got {n_features}")
    adata = adata.copy() if copy else adata
    ranks = _per_batch_ranks(adata, batch_key, layer, span)
    lists = []
    for name in ranks.columns:
        r = ranks[name].to_numpy()
        top = np.flatnonzero(r < fvf_n_features)
        lists.append(list(adata.var_names[top[np.argsort(r[top])]]))
    features = integration_features_from_lists(lists, n_features)
    adata.var["integration_feature"] = adata.var_names.isin(features)
    adata.uns["integration_features"] = np.asarray(features, dtype=str)
    return (adata, features) if copy else features


def select_features_any(work, *, batch_key: str, n_features: int = 2000, counts: bool = True):
    """Integration features of counts or of values that are not counts; returns ``(features, how)``.

    Counts (``work.X`` log-normalised by :func:`~scintegrate.pp.log_normalize`, counts in
    ``layers["counts"]``): Seurat's SelectIntegrationFeatures over per-batch vst. Other values: all genes
    when there are at most ``n_features``; by overall variance when there are negative values; else
    per-batch vst on the values as given (as Seurat does without counts).
    """
    if counts:
        features = select_integration_features(work, batch_key=batch_key, n_features=n_features,
                                               fvf_n_features=n_features)
        return features, "SelectIntegrationFeatures over per-batch vst"
    import scipy.sparse as sp

    X = work.X
    if work.n_vars <= n_features:
        return list(work.var_names), "all genes"
    if (X.data if sp.issparse(X) else np.asarray(X)).min() < 0:
        _, var = column_mean_var(X, ddof=1)
        top = np.argsort(-var, kind="stable")[:n_features]
        return list(work.var_names[np.sort(top)]), "top variance (input has negative values)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # vst on normalised data, as Seurat without counts
        features = select_integration_features(work, batch_key=batch_key, n_features=n_features,
                                               fvf_n_features=n_features, layer=None)
    return features, "per-batch vst on the given (non-count) values"


def normalize_and_select(work, *, batch_key: str, n_features: int = 2000, counts: bool = True):
    """The first steps every Seurat-style input takes: ``work`` log-normalised in place when it holds counts
    (:func:`~scintegrate.pp.log_normalize`), then its features by :func:`select_features_any`; returns
    ``(features, how)``.

    >>> import anndata as ad, numpy as np, pandas as pd
    >>> work = ad.AnnData(np.random.default_rng(0).poisson(2, (40, 30)).astype(np.float32),
    ...                   obs=pd.DataFrame({"b": ["x", "y"] * 20}))
    >>> normalize_and_select(work, batch_key="b", n_features=10)[1]
    'SelectIntegrationFeatures over per-batch vst'
    """
    if counts:
        from .normalize import log_normalize

        log_normalize(work)
    return select_features_any(work, batch_key=batch_key, n_features=n_features, counts=counts)
