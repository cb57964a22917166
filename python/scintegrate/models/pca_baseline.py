"""The ``"pca"`` baseline of :func:`scintegrate.integrate`: Seurat's uncorrected PCA.

Raw counts -> LogNormalize -> integration features (per-batch vst + SelectIntegrationFeatures)
-> ScaleData -> PCA, all from :mod:`scintegrate.pp`. Input that is not raw counts is taken as
already normalised: no normalisation; features by per-batch vst on it when it is non-negative and
has more than ``n_features`` genes, by overall variance when it has negative values, all genes
otherwise. Runs on the CPU (numpy); ``device`` and ``progress`` are accepted and ignored.

Example
-------
>>> import scintegrate as si  # doctest: +SKIP
>>> adata = si.datasets.simulate_counts(n_cells=300, n_genes=200, seed=0)  # doctest: +SKIP
>>> si.integrate(adata, method="pca", progress=False).obsm["X_pca_baseline"].shape  # doctest: +SKIP
(300, 50)
"""

from __future__ import annotations

import warnings
from typing import Tuple

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .. import pp
from .._validation import is_count_matrix
from ..pp._sparse import column_mean_var


def _features_for_non_counts(work, batch_key: str, n_features: int) -> Tuple[list, str]:
    X = work.X
    if work.n_vars <= n_features:
        return list(work.var_names), "all genes"
    has_negative = (X.data if sp.issparse(X) else np.asarray(X)).min() < 0
    if has_negative:
        _, var = column_mean_var(X, ddof=1)
        top = np.argsort(-var, kind="stable")[:n_features]
        return list(work.var_names[np.sort(top)]), "top variance (input has negative values)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # vst on normalised data, as Seurat without counts
        features = pp.select_integration_features(work, batch_key=batch_key, n_features=n_features,
                                                  fvf_n_features=n_features, layer=None)
    return features, "per-batch vst on the given (non-count) values"


def integrate_pca(
    adata,
    *,
    batch_key: str = "batch",
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
    n_comps: int = 50,
    n_features: int = 2000,
):
    """Uncorrected Seurat-style PCA of all batches together; returns ``(embedding, info)``.

    ``n_comps`` is capped at ``min(n_cells, n_features) - 1``. ``info`` holds the features used,
    whether the counts were normalised and the PCs' variance ratios.
    """
    if n_comps < 1 or n_features < 2:
        raise ValueError(f"n_comps must be >= 1 and n_features >= 2, got {n_comps}, {n_features}")
    X = adata.X
    work = ad.AnnData(X=X.copy(), obs=pd.DataFrame({batch_key: adata.obs[batch_key].astype(str).to_numpy()},
                                                   index=adata.obs_names.copy()),
                      var=pd.DataFrame(index=adata.var_names.copy()))
    counts = is_count_matrix(X)
    if counts:
        pp.log_normalize(work)
        features = pp.select_integration_features(work, batch_key=batch_key, n_features=n_features,
                                                  fvf_n_features=n_features)
        selection = "SelectIntegrationFeatures over per-batch vst"
    else:
        features, selection = _features_for_non_counts(work, batch_key, n_features)
    pp.scale_data(work, features=features)
    pp.run_pca(work, n_comps=n_comps, seed=seed)
    info = {
        "normalized": bool(counts),
        "feature_selection": selection,
        "features": np.asarray(features, dtype=str),
        "n_comps": int(work.obsm["X_pca"].shape[1]),
        "variance_ratio": np.asarray(work.uns["X_pca"]["variance_ratio"], dtype=float),
    }
    return work.obsm["X_pca"], info
