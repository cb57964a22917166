"""A toy method registered from outside the package, as a third-party plugin would do.

Importing this module registers ``"toy"``; ``SCINTEGRATE_PLUGINS=scintegrate_toy`` (with this folder on
``PYTHONPATH``) makes the CLI and the R package see it. It centres a seeded random projection of
log1p(counts) on each batch's mean: a real, if crude, batch correction with a fit, new-cell embedding and
save/load.
"""

import numpy as np

from scintegrate.models import IntegrationModel
from scintegrate.registry import MethodSpec, register


class ToyModel(IntegrationModel):
    """Random projection of log1p values, centred per batch.

    Parameters
    ----------
    n_dims
        Dimensions of the projection.
    seed, device, progress
        Seed of the projection; accepted device; no progress bar.
    """

    method = "toy"
    embed_needs_batch = True

    def __init__(self, *, n_dims: int = 3, seed: int = 0, device: str = "auto", progress: bool = False):
        if int(n_dims) < 1:
            raise ValueError(f"n_dims must be >= 1, got {n_dims}")
        self._setup({"n_dims": int(n_dims)}, seed=seed, device=device, progress=progress)

    def _project(self, data):
        X = data.X.toarray() if hasattr(data.X, "toarray") else np.asarray(data.X)
        return (np.log1p(np.maximum(X, 0)) @ self.projection_).astype(np.float32)

    def _fit(self, adata, data):
        with self._stage("projection"):
            rng = np.random.default_rng(self.seed)
            self.projection_ = rng.normal(size=(data.X.shape[1], self.params["n_dims"]))
            Z = self._project(data)
            self.batch_levels_ = list(data.batch_levels)
            self.batch_means_ = np.stack([Z[data.batch == b].mean(0) for b in range(data.n_batches)])
            self.embedding_ = Z - self.batch_means_[data.batch]

    def _embed_new(self, adata, data):
        Z = self._project(data)
        known = {b: i for i, b in enumerate(self.batch_levels_)}
        means = np.stack([self.batch_means_[known[b]] if b in known else Z[data.batch == k].mean(0)
                          for k, b in enumerate(data.batch_levels)])
        return Z - means[data.batch]

    def _outputs(self):
        return {"obs": {"toy_norm": np.linalg.norm(self.embedding_, axis=1)}, "info": {"n_dims": self.params["n_dims"]}}

    def _fitted_state(self):
        return {"batch_levels": self.batch_levels_}, {"projection": self.projection_, "batch_means": self.batch_means_}

    def _restore_state(self, state, arrays):
        self.batch_levels_ = state["batch_levels"]
        self.projection_, self.batch_means_ = arrays["projection"], arrays["batch_means"]


register(MethodSpec(name="toy", model="scintegrate_toy:ToyModel", description="toy plugin: centred random projection",
                    input=("counts", "log"), obs_keys=("toy_norm",), quick_params={"n_dims": 4}), replace=True)
