"""The one preprocessing chain shared by the unintegrated baseline and the peer methods.

It is the chain of the uncorrected baseline (:mod:`scintegrate.models.pca_baseline`): log-normalise
(counts only) -> integration features across batches -> (scale -> PCA), all with
:mod:`scintegrate.pp`, on a private copy; the caller's AnnData is never changed. Raw counts are
taken from ``layers["counts"]`` when ``X`` holds something else.

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


def _input_data(adata, batch_key: str):
    """A bare AnnData of the counts (or of ``X`` when there are none) and the batch column."""
    import anndata as ad

    counts = counts_matrix(adata)
    X = adata.X if counts is None else counts
    X = sp.csr_matrix(X, dtype=np.float32) if sp.issparse(X) else np.array(X, dtype=np.float32)
    obs = pd.DataFrame({batch_key: adata.obs[batch_key].astype(str).to_numpy()}, index=adata.obs_names.copy())
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=adata.var_names.copy())), counts is not None


def integration_data(adata, *, batch_key: str, n_features: int = 2000):
    """A new AnnData: log-normalised values on the integration features, counts in ``layers["counts"]``.

    Features are chosen exactly as the uncorrected baseline chooses them
    (:func:`scintegrate.pp.select_features_any`).
    """
    from .. import pp

    work, has_counts = _input_data(adata, batch_key)
    features, _ = pp.normalize_and_select(work, batch_key=batch_key, n_features=n_features, counts=has_counts)
    return work[:, list(features)].copy()


def pca_of(work, *, n_comps: int = 50, seed: int = 0) -> np.ndarray:
    """Scale all genes of ``work`` (Seurat ScaleData, in place) and return its first ``n_comps`` PCs."""
    from .. import pp

    n_comps = int(min(n_comps, work.n_obs - 1, work.n_vars - 1))
    pp.scale_data(work, features=list(work.var_names))
    pp.run_pca(work, n_comps=n_comps, seed=seed)
    return np.asarray(work.obsm["X_pca"], dtype=np.float32)


def unintegrated_pca(adata, *, batch_key: str, n_comps: int = 50, n_features: int = 2000,
                     seed: int = 0) -> np.ndarray:
    """The "no integration" baseline: the registry's baseline (Seurat-style PCA of all batches together)."""
    from .. import registry

    work, _ = _input_data(adata, batch_key)
    baseline = registry.specs("baseline")[0].model_class()
    model = baseline(n_comps=n_comps, n_features=n_features, seed=seed, progress=False)
    return model.fit(work, batch_key=batch_key).embed()
