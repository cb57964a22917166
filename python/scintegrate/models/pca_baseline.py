"""The uncorrected baseline: Seurat's PCA of all batches together (registry name ``"pca"``).

Raw counts -> LogNormalize -> integration features (per-batch vst + SelectIntegrationFeatures)
-> ScaleData -> PCA, all from :mod:`scintegrate.pp`. Input that is not raw counts is taken as
already normalised (features as :func:`scintegrate.pp.select_features_any` chooses them). Runs on the
CPU (numpy); ``device`` is accepted for the common contract.

Example
-------
>>> import scintegrate as si
>>> from scintegrate.models import PCABaseline
>>> adata = si.datasets.simulate_counts(n_cells=300, n_genes=200, seed=0)
>>> PCABaseline(n_comps=10).fit(adata, batch_key="batch").embed().shape
(300, 10)
"""

from __future__ import annotations

import numpy as np

from ._base import IntegrationModel


class PCABaseline(IntegrationModel):
    """Uncorrected Seurat-style PCA (the reference every integration is scored against).

    Parameters
    ----------
    n_comps
        Principal components (50; capped at ``min(n_cells, n_features) - 1``).
    n_features
        Integration features (2,000, Seurat's default).
    seed
        Seed of the randomized SVD's start vector.
    device, progress
        Accepted for the common model contract; the PCA runs on the CPU and shows no bar.
    """

    method = "pca"

    def __init__(self, *, n_comps: int = 50, n_features: int = 2000, seed: int = 0, device: str = "auto",
                 progress: bool = False):
        if int(n_comps) < 1 or int(n_features) < 2:
            raise ValueError(f"n_comps must be >= 1 and n_features >= 2, got {n_comps}, {n_features}")
        self._setup({"n_comps": int(n_comps), "n_features": int(n_features)}, seed=seed, device=device,
                    progress=progress)

    def _fit(self, adata, data) -> None:
        from .. import pp

        work = data.to_anndata("batch")
        with self._stage("pca"):
            features, how = pp.normalize_and_select(work, batch_key="batch", n_features=self.params["n_features"],
                                                    counts=data.is_counts)
            pp.scale_data(work, features=features)
            pp.run_pca(work, n_comps=self.params["n_comps"], seed=self.seed)
        self.embedding_ = np.asarray(work.obsm["X_pca"], dtype=np.float32)
        self.normalized_, self.feature_selection_ = bool(data.is_counts), how
        self.features_ = [str(f) for f in features]
        self.variance_ratio_ = np.asarray(work.uns["X_pca"]["variance_ratio"], dtype=float)

    def _outputs(self) -> dict:
        return {"info": {"normalized": self.normalized_, "feature_selection": self.feature_selection_,
                         "features": np.asarray(self.features_, dtype=str), "n_comps": int(self.embedding_.shape[1]),
                         "variance_ratio": self.variance_ratio_}}

    def _fitted_state(self):
        return ({"normalized": self.normalized_, "feature_selection": self.feature_selection_},
                {"features": np.asarray(self.features_, dtype=str), "variance_ratio": self.variance_ratio_})

    def _restore_state(self, state, arrays) -> None:
        self.normalized_, self.feature_selection_ = state["normalized"], state["feature_selection"]
        self.features_, self.variance_ratio_ = arrays["features"].tolist(), arrays["variance_ratio"]
