"""Metric tables from AnnData: the only place where the metrics meet ``adata``.

:func:`benchmark` scores several ``obsm`` embeddings of one AnnData and returns a tidy table (one
row per embedding, one column per metric, plus the batch / bio / overall aggregates);
:func:`score_embedding` scores one embedding that may come from anywhere (e.g. exported from Seurat).
The numbers themselves come from :func:`scintegrate.metrics.compute_metrics`.

Example
-------
>>> import scintegrate as si
>>> adata = si.datasets.simulate_counts(n_cells=300, n_genes=200, seed=0)
>>> si.integrate(adata, method="pca", progress=False)  # doctest: +ELLIPSIS
AnnData object ...
>>> df = si.benchmark.benchmark(adata, embeddings=["X_pca_baseline"], progress=False)
>>> list(df.index)
['X_pca_baseline']
"""

from __future__ import annotations

import warnings
from typing import Optional, Sequence, Union

import numpy as np
import pandas as pd

from .. import metrics as _metrics
from .._validation import check_batches

#: every column of a benchmark table, in order (the keys of ``compute_metrics``)
METRIC_COLUMNS = list(_metrics.METRIC_KEYS)
#: metrics averaged into ``batch_score`` (scIB's batch correction plus EBM)
BATCH_METRICS = list(_metrics.BATCH_METRICS)
#: metrics averaged into ``bio_score`` (scIB's bio conservation plus kNN accuracy)
BIO_METRICS = list(_metrics.BIO_METRICS)
#: BERMUDA's own three scores, reported but not aggregated
BERMUDA_METRICS = ["divergence_score", "entropy_score", "silhouette_score"]
#: aggregate scores computed by ``compute_metrics``
AGGREGATES = ["batch_score", "bio_score", "overall"]
#: metrics that need the unintegrated (pre-integration) embedding as reference
NEEDS_REFERENCE = ("pcr_comparison",)
#: metrics where a smaller value is better: BERMUDA's divergence between batches of a shared cluster,
#: and the raw median cLISI (1 = every neighbourhood holds one cell type)
LOWER_IS_BETTER = {"divergence_score", "clisi"}


def _compute_metrics():
    """``scintegrate.metrics.compute_metrics``, looked up at call time (tests may wrap it)."""
    return _metrics.compute_metrics


def _obs_column(adata, key: str, what: str) -> pd.Series:
    if key is None or key not in adata.obs.columns:
        raise KeyError(f"{what} column {key!r} not found in adata.obs; available columns: {list(adata.obs.columns)}")
    col = adata.obs[key]
    if col.isna().any():
        raise ValueError(f"obs[{key!r}] has {int(col.isna().sum())} missing values; every cell needs a {what}")
    return col


def check_inputs(adata, batch_key: str, label_key: str) -> tuple:
    """Validate the batch and label columns; return them as string arrays ``(batch, labels)``."""
    if adata.n_obs == 0:
        raise ValueError("AnnData has no cells; nothing to score")
    batch = _obs_column(adata, batch_key, "batch")
    labels = _obs_column(adata, label_key, "label")
    check_batches(batch, min_batches=2, key=batch_key)
    return batch.astype(str).to_numpy(), labels.astype(str).to_numpy()


def get_embedding(adata, embedding: Union[str, np.ndarray]) -> np.ndarray:
    """An ``obsm`` key or an array as a finite float32 ``n_obs x d`` matrix, with clear errors."""
    if isinstance(embedding, str):
        if embedding not in adata.obsm:
            raise KeyError(f"embedding {embedding!r} not found in adata.obsm; available keys: {list(adata.obsm)}")
        X = adata.obsm[embedding]
        name = f"adata.obsm[{embedding!r}]"
    else:
        X, name = embedding, "embedding"
    X = X.to_numpy() if isinstance(X, pd.DataFrame) else X
    X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] != adata.n_obs:
        raise ValueError(f"{name} has shape {X.shape}; expected {adata.n_obs} rows (one per cell)")
    if X.shape[1] == 0:
        raise ValueError(f"{name} has no dimensions")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains {int((~np.isfinite(X)).sum())} NaN or infinite values")
    return X


def ensure_unintegrated(adata, unintegrated: Optional[str], *, batch_key: str, seed: int = 0):
    """The reference embedding for ``pcr_comparison``: ``obsm[unintegrated]``, computed and stored if missing."""
    if unintegrated is None:
        return None
    if unintegrated not in adata.obsm:
        from ._prep import unintegrated_pca

        adata.obsm[unintegrated] = unintegrated_pca(adata, batch_key=batch_key, seed=seed)
    return get_embedding(adata, unintegrated)


def _no_expression(adata) -> Optional[str]:
    """Why ``adata.X`` cannot give an unintegrated PCA at a glance (no matrix, no genes), else None."""
    if adata.X is None:
        return "adata.X is empty"
    if adata.n_vars == 0:
        return "adata.X has no genes"
    return None


def reference_or_skip(adata, unintegrated: Optional[str], metrics=None, *, batch_key: str, seed: int = 0):
    """:func:`ensure_unintegrated`, but an embedding that comes without a usable ``.X`` is still scored.

    When ``obsm[unintegrated]`` is missing and ``.X`` cannot give it (e.g. an embedding made in R, saved
    with 0 or 1 genes or all-zero ``.X``), return None and warn once, naming the requested metrics of
    :data:`NEEDS_REFERENCE` that are skipped (NaN; the aggregates average the rest).
    """
    if unintegrated is None or unintegrated in adata.obsm:
        return ensure_unintegrated(adata, unintegrated, batch_key=batch_key, seed=seed)
    reason = _no_expression(adata)
    if reason is None:
        try:
            return ensure_unintegrated(adata, unintegrated, batch_key=batch_key, seed=seed)
        except ValueError as err:  # too few genes, no counts, ...: the same checks integrate() makes
            reason = str(err).split("\n")[0]
    skipped = [m for m in _metrics.resolve_metrics(metrics) if m in NEEDS_REFERENCE]
    if skipped:
        warnings.warn(f"no unintegrated reference: obsm[{unintegrated!r}] is missing and cannot be computed from "
                      f".X ({reason}); skipped {skipped} (batch_score and overall average the other metrics); "
                      f"supply one with unintegrated=<obsm key> (CLI: --unintegrated OBSM_KEY)",
                      UserWarning, stacklevel=3)
    return None


def default_embeddings(adata) -> list:
    """``obsm`` keys that look like embeddings: one row per cell, more than 2 columns, numeric."""
    keys = []
    for key, value in adata.obsm.items():
        shape = getattr(value, "shape", ())
        numeric = isinstance(value, pd.DataFrame) or np.issubdtype(getattr(value, "dtype", object), np.number)
        if len(shape) == 2 and shape[0] == adata.n_obs and shape[1] > 2 and numeric:
            keys.append(key)
    if not keys:
        raise ValueError(f"adata.obsm has no embedding to score (keys: {list(adata.obsm)}); pass embeddings=[...]")
    return keys


def _order_columns(df: pd.DataFrame) -> pd.DataFrame:
    known = [c for c in METRIC_COLUMNS if c in df.columns]
    return df[known + [c for c in df.columns if c not in known]]


def benchmark(
    adata,
    *,
    batch_key: str = "batch",
    label_key: str = "cell_type",
    embeddings: Optional[Sequence[str]] = None,
    unintegrated: Optional[str] = "X_pca",
    metrics: Optional[Sequence[str]] = None,
    seed: int = 0,
    device: Optional[str] = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Score each ``adata.obsm`` embedding; one row per embedding, one column per metric.

    ``embeddings`` lists ``obsm`` keys (default: every per-cell matrix in ``obsm`` except 2-D
    visualisations such as ``X_umap``).
    ``unintegrated`` names the pre-integration embedding used by ``pcr_comparison``; when it is
    not in ``adata.obsm`` it is computed with :mod:`scintegrate.pp` (log-normalise, integration
    features, scale, PCA) and stored there; when ``.X`` cannot give it (embeddings from another tool,
    saved without expression) ``pcr_comparison`` is NaN with one warning. ``None`` skips it. ``metrics`` selects a subset
    (default: all). The index holds the ``obsm`` keys (name ``"embedding"``).

    >>> df = benchmark(adata, embeddings=["X_pca", "X_bermuda"])  # doctest: +SKIP
    >>> df[["batch_score", "bio_score", "overall"]]  # doctest: +SKIP
    """
    batch, labels = check_inputs(adata, batch_key, label_key)
    if embeddings is not None:
        embeddings = [embeddings] if isinstance(embeddings, str) else list(embeddings)
        if len(embeddings) == 0:
            raise ValueError("no embeddings given; pass obsm keys, e.g. embeddings=['X_pca']")
        for key in embeddings:  # fail before any work (the unintegrated one may still be computed)
            if key != unintegrated:
                get_embedding(adata, key)
    compute = _compute_metrics()
    X_ref = reference_or_skip(adata, unintegrated, metrics, batch_key=batch_key, seed=seed)
    keys = default_embeddings(adata) if embeddings is None else embeddings
    matrices = {key: get_embedding(adata, key) for key in keys}
    rows, keys = {}, list(matrices)
    if progress:
        from tqdm.auto import tqdm

        keys = tqdm(keys, desc="scoring embeddings")
    for key in keys:
        scores = compute(matrices[key], batch, labels, X_unintegrated=X_ref, metrics=metrics, seed=seed,
                         device=device, progress=False)
        rows[key] = {name: float(value) for name, value in scores.items()}
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "embedding"
    return _order_columns(df)


def score_embedding(
    adata,
    embedding: Union[str, np.ndarray],
    *,
    batch_key: str = "batch",
    label_key: str = "cell_type",
    unintegrated: Optional[str] = "X_pca",
    metrics: Optional[Sequence[str]] = None,
    seed: int = 0,
    device: Optional[str] = None,
    name: Optional[str] = None,
) -> pd.DataFrame:
    """Score one embedding (an ``obsm`` key or an ``n_obs x d`` array); a one-row table.

    For embeddings computed elsewhere, e.g. Seurat's ``integrated`` PCA exported to ``obsm``.
    ``unintegrated`` is the ``obsm`` key of the reference of ``pcr_comparison`` (computed from ``.X``
    and stored when missing, as in :func:`benchmark`). An AnnData without usable expression (0 or 1 genes,
    all-zero ``.X``) and without ``obsm[unintegrated]`` is still scored: ``pcr_comparison`` is NaN, with
    one warning saying how to supply the reference.

    >>> score_embedding(adata, "X_seurat_cca", batch_key="batch", label_key="cell_type")  # doctest: +SKIP
    >>> score_embedding(adata, "X_seurat_cca", unintegrated="X_seurat_pca")  # doctest: +SKIP
    """
    row_name = name or (embedding if isinstance(embedding, str) else "embedding")
    batch, labels = check_inputs(adata, batch_key, label_key)
    X = get_embedding(adata, embedding)
    X_ref = reference_or_skip(adata, unintegrated, metrics, batch_key=batch_key, seed=seed)
    scores = _compute_metrics()(X, batch, labels, X_unintegrated=X_ref, metrics=metrics, seed=seed,
                                device=device, progress=False)
    df = pd.DataFrame({k: [float(v)] for k, v in scores.items()}, index=pd.Index([row_name], name="embedding"))
    return _order_columns(df)
