"""Published methods to compare against, each used only when its package is installed.

Every peer is ``fn(adata, batch_key, seed=0, **params) -> embedding (n_cells x d)`` and starts
from the same preprocessing as our baseline (:mod:`scintegrate.benchmark._prep`): log-normalise,
integration features, then scale + PCA for the PCA-based ones.

- ``harmony``   — harmonypy on the PCA (Korsunsky et al. 2019);
- ``scanorama`` — scanorama on the log-normalised integration features (Hie et al. 2019);
- ``scvi``      — scvi-tools' SCVI on the raw counts of the integration features (Lopez et al. 2018);
- ``combat``    — scanpy's ComBat on the log-normalised features, then scale + PCA (Johnson et al. 2007).

Example
-------
>>> from scintegrate.benchmark.peers import available_peers, run_peer
>>> "combat" in available_peers()
True
>>> emb = run_peer(adata, "harmony", batch_key="batch", seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
from typing import Callable, Dict, Tuple

import numpy as np
import pandas as pd

from .._device import seeded
from .._validation import check_adata
from ._prep import counts_matrix, integration_data, pca_of, unintegrated_pca


def harmony(adata, batch_key: str, seed: int = 0, *, n_comps: int = 50, n_features: int = 2000,
            **params) -> np.ndarray:
    """Harmony-corrected PCs (harmonypy defaults: theta=2, sigma=0.1, 10 iterations)."""
    import harmonypy

    pcs = unintegrated_pca(adata, batch_key=batch_key, n_comps=n_comps, n_features=n_features, seed=seed)
    meta = pd.DataFrame({batch_key: adata.obs[batch_key].astype(str).to_numpy()})
    params.setdefault("verbose", False)
    result = harmonypy.run_harmony(pcs, meta, [batch_key], random_state=seed, **params)
    Z = np.asarray(result.Z_corr)
    return Z if Z.shape[0] == adata.n_obs else Z.T  # older harmonypy returns d x n


def scanorama(adata, batch_key: str, seed: int = 0, *, dimred: int = 50, n_features: int = 2000,
              **params) -> np.ndarray:
    """Scanorama's integrated embedding of the log-normalised integration features."""
    import scanorama as sc_rama

    work = integration_data(adata, batch_key=batch_key, n_features=n_features)
    batches = work.obs[batch_key].to_numpy()
    levels = list(pd.unique(batches))
    blocks = [work.X[batches == b] for b in levels]
    dimred = int(min(dimred, work.n_vars - 1, work.n_obs - 1))
    params.setdefault("verbose", 0)
    with seeded(seed):  # scanorama seeds numpy's global generator; restore it afterwards
        integrated, _ = sc_rama.integrate(blocks, [list(work.var_names)] * len(levels), dimred=dimred,
                                          seed=seed, **params)
    out = np.zeros((work.n_obs, integrated[0].shape[1]), dtype=np.float32)
    for b, Z in zip(levels, integrated):
        out[batches == b] = Z
    return out


def scvi(adata, batch_key: str, seed: int = 0, *, n_latent: int = 10, max_epochs=None, n_features: int = 2000,
         device: str = "auto", progress: bool = False, **params) -> np.ndarray:
    """scVI latent space (scvi-tools defaults: 1 hidden layer of 128, 10 latent dims, NB likelihood)."""
    if counts_matrix(adata) is None:
        raise ValueError("scVI needs raw counts (adata.X or adata.layers['counts']); this data is not counts")
    import scvi as scvi_tools

    work = integration_data(adata, batch_key=batch_key, n_features=n_features)
    accelerator = "cpu" if str(device) == "cpu" else "auto"
    # scvi.settings.seed seeds the global generators: restore them afterwards
    with seeded(seed), _quiet_loggers(not progress, "lightning", "lightning.pytorch", "lightning.fabric"):
        scvi_tools.settings.seed = seed
        scvi_tools.model.SCVI.setup_anndata(work, layer="counts", batch_key=batch_key)
        model = scvi_tools.model.SCVI(work, n_latent=n_latent, **params)
        model.train(max_epochs=max_epochs, accelerator=accelerator, enable_progress_bar=progress)
        return np.asarray(model.get_latent_representation(), dtype=np.float32)


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


def combat(adata, batch_key: str, seed: int = 0, *, n_comps: int = 50, n_features: int = 2000) -> np.ndarray:
    """PCs of the ComBat-corrected (empirical Bayes location/scale), then scaled, integration features."""
    import scanpy as sc

    work = integration_data(adata, batch_key=batch_key, n_features=n_features)
    work.X = work.X.toarray() if hasattr(work.X, "toarray") else np.asarray(work.X)
    sc.pp.combat(work, key=batch_key)
    work.X = np.nan_to_num(work.X)  # genes constant within a batch give NaN in ComBat's standardisation
    return pca_of(work, n_comps=n_comps, seed=seed)


#: name -> (module that must be importable, function)
PEERS: Dict[str, Tuple[str, Callable]] = {
    "harmony": ("harmonypy", harmony),
    "scanorama": ("scanorama", scanorama),
    "scvi": ("scvi", scvi),
    "combat": ("scanpy", combat),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def available_peers() -> list:
    """Names of the peers whose package is installed (checked without importing it)."""
    return [name for name, (module, _) in PEERS.items() if _installed(module)]


def get_peer(name: str) -> Callable:
    """The peer function; ``ValueError`` for an unknown name, ``ImportError`` when not installed."""
    key = str(name).lower()
    if key not in PEERS:
        raise ValueError(f"unknown peer method {name!r}; available: {sorted(PEERS)}")
    module, fn = PEERS[key]
    if not _installed(module):
        raise ImportError(f"peer {key!r} needs the package {module!r}, which is not installed "
                          f"(pip install {module if module != 'scvi' else 'scvi-tools'})")
    importlib.import_module(module)
    return fn


def run_peer(adata, name: str, *, batch_key: str = "batch", seed: int = 0, **params) -> np.ndarray:
    """Check ``adata`` and run peer ``name``; returns a float32 ``n_cells x d`` embedding."""
    fn = get_peer(name)
    check_adata(adata, batch_key, allow_negative=False)
    embedding = np.asarray(fn(adata, batch_key, seed, **params), dtype=np.float32)
    if embedding.shape[0] != adata.n_obs:
        raise RuntimeError(f"peer {name!r} returned {embedding.shape[0]} rows for {adata.n_obs} cells")
    return embedding
