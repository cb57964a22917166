"""Published methods to compare against, as model classes behind the registry (``kind="peer"``).

Each peer runs only when its package is installed, and starts from the same preprocessing as our baseline
(:mod:`scintegrate.benchmark._prep`): log-normalise, integration features, then scale + PCA for the
PCA-based ones. They are registered in :mod:`scintegrate.registry` and run by the benchmark:

- :class:`HarmonyPy`   — harmonypy on the PCA (Korsunsky et al. 2019);
- :class:`ScanoramaPy` — scanorama on the log-normalised integration features (Hie et al. 2019);
- :class:`ScviTools`   — scvi-tools' SCVI on the raw counts of the integration features (Lopez et al. 2018);
- :class:`ScanviTools` — scvi-tools' scANVI from that SCVI, with cell-type labels (Xu et al. 2021);
- :class:`ComBat`      — scanpy's ComBat on the log-normalised features, then scale + PCA (Johnson et al. 2007);
- :class:`SeuratR`     — R Seurat 4.3's CCA anchors + IntegrateData, then scale + PCA (Stuart et al. 2019), in R.

Example
-------
>>> from scintegrate.benchmark.peers import available_peers, run_peer
>>> "combat" in available_peers()
True
>>> emb = run_peer(adata, "combat", batch_key="batch", seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import importlib
import logging

import numpy as np
import pandas as pd

from .. import registry
from .._device import seeded
from ..models._base import IntegrationModel
from ._prep import counts_matrix, integration_data, pca_of, unintegrated_pca

#: the environment variable naming a Python interpreter with scvi-tools (when it is not importable here)
SCVI_PYTHON_ENV = "SCINTEGRATE_SCVI_PYTHON"


class PeerModel(IntegrationModel):
    """Base of the peers: ``_run(adata)`` returns the embedding; the package is imported at fit time."""

    package = ""

    def __init__(self, *, seed: int = 0, device: str = "auto", progress: bool = False, **params):
        self._setup(params, seed=seed, device=device, progress=progress)

    def _fit(self, adata, data) -> None:
        spec = self.spec()
        for module in () if spec.runs_elsewhere() else spec.requires:
            try:
                importlib.import_module(module)
            except ImportError as err:
                raise ImportError(f"peer {spec.name!r} needs the package {module!r}, which is not installed or "
                                  f"broken ({err}); pip install {self.package or module}") from None
        with self._stage("integration"):
            self.embedding_ = np.asarray(self._run(adata, self.batch_key_), dtype=np.float32)


class HarmonyPy(PeerModel):
    """Harmony-corrected PCs (harmonypy defaults: theta=2, sigma=0.1, 10 iterations; extra params go to
    ``harmonypy.run_harmony``)."""

    method, package = "harmonypy", "harmonypy"

    def __init__(self, *, n_comps: int = 50, n_features: int = 2000, seed: int = 0, device: str = "auto",
                 progress: bool = False, **harmony_params):
        super().__init__(seed=seed, device=device, progress=progress, n_comps=n_comps, n_features=n_features,
                         **harmony_params)

    def _run(self, adata, batch_key):
        import harmonypy

        p = dict(self.params)
        seed, n_comps, n_features = p.pop("seed"), p.pop("n_comps"), p.pop("n_features")
        pcs = unintegrated_pca(adata, batch_key=batch_key, n_comps=n_comps, n_features=n_features, seed=seed)
        meta = pd.DataFrame({batch_key: adata.obs[batch_key].astype(str).to_numpy()})
        p.setdefault("verbose", False)
        result = harmonypy.run_harmony(pcs, meta, [batch_key], random_state=seed, **p)
        Z = np.asarray(result.Z_corr)
        return Z if Z.shape[0] == adata.n_obs else Z.T  # older harmonypy returns d x n


class ScanoramaPy(PeerModel):
    """Scanorama's integrated embedding of the log-normalised integration features (``dimred`` 50)."""

    method, package = "scanoramapy", ""  # pip name = its module (spec.requires); our method owns the name

    def __init__(self, *, dimred: int = 50, n_features: int = 2000, seed: int = 0, device: str = "auto",
                 progress: bool = False, **scanorama_params):
        super().__init__(seed=seed, device=device, progress=progress, dimred=dimred, n_features=n_features,
                         **scanorama_params)

    def _run(self, adata, batch_key):
        import scanorama as sc_rama

        p = dict(self.params)
        seed, dimred, n_features = p.pop("seed"), p.pop("dimred"), p.pop("n_features")
        work = integration_data(adata, batch_key=batch_key, n_features=n_features)
        batches = work.obs[batch_key].to_numpy()
        levels = list(pd.unique(batches))
        blocks = [work.X[batches == b] for b in levels]
        dimred = int(min(dimred, work.n_vars - 1, work.n_obs - 1))
        p.setdefault("verbose", 0)
        with seeded(seed):  # scanorama seeds numpy's global generator; restore it afterwards
            integrated, _ = sc_rama.integrate(blocks, [list(work.var_names)] * len(levels), dimred=dimred,
                                              seed=seed, **p)
        out = np.zeros((work.n_obs, integrated[0].shape[1]), dtype=np.float32)
        for b, Z in zip(levels, integrated):
            out[batches == b] = Z
        return out


class ScviTools(PeerModel):
    """scVI latent space (scvi-tools defaults: 1 hidden layer of 128, 10 latent dims, ZINB likelihood).

    Runs in this process when scvi-tools imports here; otherwise in the Python environment named by the
    environment variable ``SCINTEGRATE_SCVI_PYTHON`` (scvi-tools needs NumPy 2, R's reticulate NumPy 1), through
    ``_scvitools_child.py`` on a temporary h5ad of the integration features' counts.
    """

    method, package = "scvitools", "scvi-tools"

    def __init__(self, *, n_latent: int = 10, max_epochs=None, n_features: int = 2000, seed: int = 0,
                 device: str = "auto", progress: bool = False, **scvi_params):
        super().__init__(seed=seed, device=device, progress=progress, n_latent=n_latent, max_epochs=max_epochs,
                         n_features=n_features, **scvi_params)

    def _labels(self, adata):
        """The labels the child trains scANVI on (``None``: scVI only)."""
        return None

    def _run(self, adata, batch_key):
        if counts_matrix(adata) is None:
            raise ValueError("scVI needs raw counts (adata.X or adata.layers['counts']); this data is not counts")
        p = dict(self.params)
        seed, n_latent, max_epochs = p.pop("seed"), p.pop("n_latent"), p.pop("max_epochs")
        labels = self._labels(adata)
        for key in ("labels_key", "unlabeled_category"):
            p.pop(key, None)
        work = integration_data(adata, batch_key=batch_key, n_features=p.pop("n_features"))
        accelerator = "cpu" if self.device.type == "cpu" else "gpu"
        train = {} if max_epochs is None else {"max_epochs": int(max_epochs)}
        if self.spec().runs_elsewhere():
            return _scvitools_elsewhere(work, batch_key, seed=seed, accelerator=accelerator,
                                        model={"n_latent": n_latent, **p}, train=train, labels=labels)
        import scvi as scvi_tools

        # scvi.settings.seed seeds the global generators: restore them afterwards
        with seeded(seed), _quiet_loggers(not self.progress, "lightning", "lightning.pytorch", "lightning.fabric"):
            scvi_tools.settings.seed = seed
            if labels is not None:
                work.obs["scanvi_labels"] = labels
            scvi_tools.model.SCVI.setup_anndata(work, layer="counts", batch_key=batch_key)
            model = scvi_tools.model.SCVI(work, n_latent=n_latent, **p)
            model.train(accelerator=accelerator, enable_progress_bar=self.progress, **train)
            if labels is not None:
                model = scvi_tools.model.SCANVI.from_scvi_model(model, UNLABELED, labels_key="scanvi_labels")
                model.train(accelerator=accelerator, enable_progress_bar=self.progress)
            return np.asarray(model.get_latent_representation(), dtype=np.float32)


class ScanviTools(ScviTools):
    """scvi-tools' scANVI: its SCVI at the defaults, then ``SCANVI.from_scvi_model`` trained at its defaults,
    with the labels of ``labels_key`` (``unlabeled_category`` and missing values are unlabelled)."""

    method = "scanvitools"

    def __init__(self, *, labels_key: str = "cell_type", unlabeled_category: str = "Unknown", n_latent: int = 10,
                 max_epochs=None, n_features: int = 2000, seed: int = 0, device: str = "auto",
                 progress: bool = False, **scvi_params):
        super().__init__(n_latent=n_latent, max_epochs=max_epochs, n_features=n_features, seed=seed, device=device,
                         progress=progress, labels_key=labels_key, unlabeled_category=unlabeled_category,
                         **scvi_params)

    def _labels(self, adata):
        key = self.params["labels_key"]
        if key not in adata.obs.columns:
            raise KeyError(f"labels column {key!r} not found in adata.obs")
        values = adata.obs[key].astype(object).to_numpy()
        names = np.where(pd.isna(values), UNLABELED, values).astype(str)
        return np.where(names == self.params["unlabeled_category"], UNLABELED, names)


#: the unlabelled category handed to scvi-tools
UNLABELED = "Unknown"


def _scvitools_elsewhere(work, batch_key, *, seed, accelerator, model, train, labels=None) -> np.ndarray:
    """scvi-tools' SCVI in the interpreter ``$SCINTEGRATE_SCVI_PYTHON`` (see :class:`ScviTools`)."""
    import json
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    import anndata as ad

    python = os.environ.get(SCVI_PYTHON_ENV, "")
    if not python or not Path(python).exists():
        raise ImportError(f"peer 'scvitools' needs scvi-tools: pip install scvi-tools, or set {SCVI_PYTHON_ENV} to "
                          "the python of an environment that has it")
    with tempfile.TemporaryDirectory(prefix="scvitools_") as tmp:
        tmp = Path(tmp)
        obs = pd.DataFrame({"batch": work.obs[batch_key].astype(str).to_numpy()}, index=work.obs_names)
        if labels is not None:
            obs["labels"] = np.asarray(labels, dtype=str)
        ad.AnnData(X=work.layers["counts"], obs=obs).write_h5ad(tmp / "in.h5ad")
        (tmp / "params.json").write_text(json.dumps({"seed": int(seed), "accelerator": accelerator, "model": model,
                                                     "train": train, "semi_supervised": labels is not None,
                                                     "unlabeled_category": UNLABELED}))
        child = Path(__file__).with_name("_scvitools_child.py")
        done = subprocess.run([python, str(child), str(tmp / "in.h5ad"), str(tmp / "params.json"),
                               str(tmp / "out.npz")], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"scvi-tools failed in {python}: {done.stderr.strip().splitlines()[-1:]}")
        with np.load(tmp / "out.npz") as out:
            return out["latent"]


class ComBat(PeerModel):
    """PCs of the ComBat-corrected (empirical Bayes location/scale), then scaled, integration features."""

    method, package = "combat", "scanpy"

    def __init__(self, *, n_comps: int = 50, n_features: int = 2000, seed: int = 0, device: str = "auto",
                 progress: bool = False):
        super().__init__(seed=seed, device=device, progress=progress, n_comps=n_comps, n_features=n_features)

    def _run(self, adata, batch_key):
        import scanpy as sc

        work = integration_data(adata, batch_key=batch_key, n_features=self.params["n_features"])
        work.X = work.X.toarray() if hasattr(work.X, "toarray") else np.asarray(work.X)
        sc.pp.combat(work, key=batch_key)
        work.X = np.nan_to_num(work.X)  # genes constant within a batch give NaN in ComBat's standardisation
        return pca_of(work, n_comps=self.params["n_comps"], seed=self.seed)


class SeuratR(PeerModel):
    """PCs of R Seurat's integrated assay (FindIntegrationAnchors with CCA, or reciprocal PCA with
    ``reduction="rpca"``, + IntegrateData at Seurat's defaults, through rpy2; :func:`scintegrate.io.seurat_integration_reference.seurat_cca_reference`). Seurat's own errors
    (a batch with fewer cells than ``dims``) are raised as ``ValueError``, so the benchmark skips the set."""

    method, package = "seuratr", "rpy2 and R Seurat"

    def __init__(self, *, n_features: int = 2000, dims: int = 30, k_filter: int = 200, k_weight: int = 100,
                 reduction: str = "cca", n_pcs: int = 30, seed: int = 0, device: str = "auto",
                 progress: bool = False):
        super().__init__(seed=seed, device=device, progress=progress, n_features=n_features, dims=dims,
                         k_filter=k_filter, k_weight=k_weight, reduction=reduction, n_pcs=n_pcs)

    def _run(self, adata, batch_key):
        from ..io.seurat_integration_reference import seurat_cca_reference

        p = {k: v for k, v in self.params.items() if k != "seed"}
        ref = seurat_cca_reference(adata, batch_key=batch_key, **p)
        if ref["error"] is not None:
            raise ValueError(f"R Seurat failed: {ref['error'].splitlines()[0]}")
        return ref["integrated_pcs"]


@contextlib.contextmanager
def _quiet_loggers(quiet: bool, *names: str):
    """Raise the given loggers to WARNING for a block (Lightning's banners), then restore them."""
    loggers = [logging.getLogger(name) for name in names] if quiet else []
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def available_peers() -> list:
    """Names of the registered peers whose package is installed (checked without importing it)."""
    return registry.peer_names(installed=True)


def run_peer(adata, name: str, *, batch_key: str = "batch", seed: int = 0, **params) -> np.ndarray:
    """Fit peer ``name`` on ``adata``; returns its float32 ``n_cells x d`` embedding."""
    spec = registry.get_spec(name)
    if spec.kind != "peer":
        raise ValueError(f"{spec.name!r} is not a peer method; peers: {registry.peer_names()}")
    from ..api import build_model

    return build_model(spec.name, seed=seed, **params).fit(adata, batch_key=batch_key).embed()
