"""``scintegrate.integrate``: one entry point for every method, and the method registry.

Each method is a function ``fn(adata, *, batch_key, seed, device, progress, **params) -> (embedding, info)``
living in its own module; the registry maps names to ``"module:function"`` so nothing heavy is imported
until a method is used.

Example
-------
>>> import scintegrate as si
>>> adata = si.datasets.simulate_counts(n_cells=300, n_genes=200, seed=0)
>>> si.integrate(adata, method="pca", batch_key="batch", progress=False)  # doctest: +ELLIPSIS
AnnData object ...
>>> adata.obsm["X_pca_baseline"].shape[0]
300
"""

from __future__ import annotations

import importlib
from typing import Callable, Dict, Optional

import numpy as np

from . import __version__
from ._validation import check_adata

#: name -> "module:function"; a method lands by adding one line here.
METHODS: Dict[str, str] = {
    "pca": "scintegrate.models.pca_baseline:integrate_pca",
    "bermuda": "scintegrate.models.bermuda:integrate_bermuda",
    "deepbid": "scintegrate.models.deepbid:integrate_deepbid",
}

#: default ``obsm`` key of each method's embedding
DEFAULT_KEYS = {"pca": "X_pca_baseline"}

#: methods that also take log-scale / continuous input with negative values (e.g. BERMUDA's 2-D Gaussian toy)
ACCEPTS_NEGATIVE = {"pca", "bermuda"}


def available_methods() -> list:
    """Names of the methods whose implementation is importable in this installation."""
    names = []
    for name in METHODS:
        try:
            get_method(name)
        except (ImportError, AttributeError):
            continue
        names.append(name)
    return names


def get_method(name: str) -> Callable:
    """The integration function registered under ``name`` (case-insensitive)."""
    key = str(name).lower()
    if key not in METHODS:
        raise ValueError(f"unknown method {name!r}; available: {sorted(METHODS)}")
    module_name, func_name = METHODS[key].split(":")
    return getattr(importlib.import_module(module_name), func_name)


def integrate(
    adata,
    method: str = "bermuda",
    *,
    batch_key: str = "batch",
    key_added: Optional[str] = None,
    seed: int = 0,
    device: str = "auto",
    layer: Optional[str] = None,
    progress: bool = True,
    copy: bool = False,
    **params,
):
    """Integrate the batches of ``adata`` with ``method``; write ``adata.obsm[key_added]``.

    ``key_added`` defaults to ``"X_<method>"``. Inputs are checked before anything is changed
    (missing batch column, a single batch, NaN/negative values, empty data, duplicate cell names).
    Method-specific parameters go in ``**params``. Run details are stored in
    ``adata.uns["scintegrate"][key_added]`` (method, parameters, seed, version, training history).
    Returns the AnnData when ``copy=True``, otherwise modifies it in place and returns it too.
    """
    fn = get_method(method)
    method = str(method).lower()
    check_adata(adata, batch_key, layer=layer, allow_negative=method in ACCEPTS_NEGATIVE)
    if copy:
        adata = adata.copy()
    work = adata if layer is None else _with_layer_as_x(adata, layer)
    embedding, info = fn(work, batch_key=batch_key, seed=seed, device=device, progress=progress, **params)
    embedding = np.asarray(embedding, dtype=np.float32)
    if embedding.shape[0] != adata.n_obs:
        raise RuntimeError(f"method {method!r} returned {embedding.shape[0]} rows for {adata.n_obs} cells")
    key = key_added or DEFAULT_KEYS.get(method, f"X_{method}")
    adata.obsm[key] = embedding
    for obs_key, values in (info or {}).pop("obs", {}).items():
        adata.obs[obs_key] = values
    for obsm_key, values in (info or {}).pop("obsm", {}).items():
        adata.obsm[obsm_key] = values
    for layer_key, values in (info or {}).pop("layers", {}).items():
        adata.layers[layer_key] = values
    record = {"method": method, "batch_key": batch_key, "seed": int(seed), "device": str(device),
              "version": __version__, "params": _plain(params)}
    record.update(_plain(info or {}))
    adata.uns.setdefault("scintegrate", {})[key] = record
    return adata


def _with_layer_as_x(adata, layer: str):
    import anndata as ad

    return ad.AnnData(X=adata.layers[layer], obs=adata.obs, var=adata.var)


def _plain(obj):
    """Make a structure storable in ``.uns`` / h5ad (no None, tuples or numpy scalars)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return np.asarray(obj) if all(isinstance(v, (int, float, np.number)) for v in obj) else [
            _plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None:
        return "None"
    return obj
