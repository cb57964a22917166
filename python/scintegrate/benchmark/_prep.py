"""The one preprocessing chain shared by the unintegrated baseline and the peer methods.

log-normalise (counts only) -> integration features across batches -> (scale -> PCA), all with
:mod:`scintegrate.pp`, on a private copy: the caller's AnnData is never changed.

Example
-------
>>> import scintegrate as si
>>> from scintegrate.benchmark._prep import unintegrated_pca
>>> adata = si.datasets.simulate_counts(n_cells=300, n_genes=200, seed=0)
>>> unintegrated_pca(adata, batch_key="batch", n_comps=10).shape
(300, 10)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._validation import is_count_matrix


def counts_matrix(adata):
    """Raw counts of ``adata`` (``layers["counts"]`` or ``X``), or ``None`` when it holds none."""
    if "counts" in adata.layers and is_count_matrix(adata.layers["counts"]):
        return adata.layers["counts"]
    return adata.X if is_count_matrix(adata.X) else None


def integration_data(adata, *, batch_key: str, n_features: int = 2000):
    """A new AnnData: log-normalised values on the integration features, counts in ``layers["counts"]``.

    Counts are log-normalised with ``pp.log_normalize`` and features chosen with
    ``pp.select_integration_features``. Data that is not counts (already log-normalised) keeps
    its values; its features are all genes, or scanpy's Seurat-flavour HVGs when there are more
    than ``n_features``.
    """
    import anndata as ad

    from .. import pp

    counts = counts_matrix(adata)
    X = adata.X if counts is None else counts
    X = sp.csr_matrix(X, dtype=np.float32) if sp.issparse(X) else np.array(X, dtype=np.float32)
    work = ad.AnnData(X=X, obs=pd.DataFrame({batch_key: adata.obs[batch_key].astype(str).to_numpy()},
                                            index=adata.obs_names.copy()),
                      var=pd.DataFrame(index=adata.var_names.copy()))
    if counts is not None:
        pp.log_normalize(work)
        features = list(pp.select_integration_features(work, batch_key=batch_key, n_features=n_features))
    else:
        features = _log_data_features(work, batch_key, n_features)
    return work[:, features].copy()


def _log_data_features(work, batch_key: str, n_features: int) -> list:
    if work.n_vars <= n_features:
        return list(work.var_names)
    import scanpy as sc

    hvg = sc.pp.highly_variable_genes(work, n_top_genes=n_features, flavor="seurat", batch_key=batch_key,
                                      inplace=False)
    return list(work.var_names[hvg["highly_variable"].to_numpy()])


def pca_of(work, *, n_comps: int = 50, seed: int = 0) -> np.ndarray:
    """Scale ``work`` (in place) and return its first ``n_comps`` principal components."""
    from .. import pp

    n_comps = int(min(n_comps, work.n_obs - 1, work.n_vars - 1))
    pp.scale_data(work)
    pp.run_pca(work, n_comps=n_comps, seed=seed)
    return np.asarray(work.obsm["X_pca"], dtype=np.float32)


def unintegrated_pca(adata, *, batch_key: str, n_comps: int = 50, n_features: int = 2000,
                     seed: int = 0) -> np.ndarray:
    """PCA of the log-normalised, scaled integration features: the "no integration" baseline."""
    work = integration_data(adata, batch_key=batch_key, n_features=n_features)
    return pca_of(work, n_comps=n_comps, seed=seed)
