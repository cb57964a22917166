"""``scintegrate.integrate``: one entry point for every registered method.

The method's :class:`~scintegrate.registry.MethodSpec` names its model class; ``integrate`` checks the
input once, builds the model with ``seed``/``device``/``progress`` and the method's parameters, fits it and
writes its :meth:`~scintegrate.models.IntegrationModel.to_result` into the AnnData.

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

from typing import Optional

import numpy as np

from . import __version__, registry


def available_methods() -> list:
    """Names of the methods ``integrate`` can run in this installation (peers excluded)."""
    return registry.method_names(installed=True)


def build_model(method: str, *, seed: int = 0, device: str = "auto", progress: bool = True, **params):
    """An unfitted model of ``method``. Parameter names and types (from the class's signature), the seed and
    the device are checked first: a ``ValueError`` lists the valid names or says what was expected."""
    from .models._params import check_params, check_seed

    spec = registry.get_spec(method)
    cls = spec.model_class()
    check_params(cls, params, method=spec.name)
    return cls(seed=check_seed(seed), device=device, progress=progress, **params)


def integrate(
    adata,
    method: str = registry.DEFAULT_METHOD,
    *,
    batch_key: str = "batch",
    key_added: Optional[str] = None,
    seed: int = 0,
    device: str = "auto",
    layer: Optional[str] = None,
    input: str = "auto",
    progress: bool = True,
    copy: bool = False,
    **params,
):
    """Integrate the batches of ``adata`` with ``method``; write ``adata.obsm[key_added]``.

    The parameters, seed and device are checked first, then the input (once, by the model's ``fit``).

    ``key_added`` defaults to the method's registered key (``"X_<method>"``). Inputs are checked before
    anything is changed (missing batch column, a single batch, NaN/negative values, empty data, duplicate
    cell names). ``input`` declares the kind of values (``"auto"``: decided from all values, batch by batch;
    ``"counts"`` normalises non-integer estimated counts; ``"log"`` takes the values as they are).
    Method-specific parameters go in ``**params`` (see ``scintegrate methods`` and the model
    classes). Run details are stored in ``adata.uns["scintegrate"][key_added]`` (method, parameters, seed,
    version, training history, stage timings). Returns the AnnData (a new one with ``copy=True``).
    """
    spec = registry.get_spec(method)
    model = build_model(spec.name, seed=seed, device=device, progress=progress, **params)
    result = model.fit(adata, batch_key=batch_key, layer=layer, input=input).to_result()
    if copy:
        adata = adata.copy()
    write_result(adata, result, spec=spec, key=key_added or spec.obsm_key,
                 record={"method": spec.name, "batch_key": batch_key, "seed": int(seed), "device": str(device),
                         "version": __version__, "params": _plain(params)})
    return adata


def write_result(adata, result, *, spec, key: str, record: dict) -> None:
    """Write an :class:`~scintegrate.models.IntegrationResult` into ``adata`` (embedding, outputs, record)."""
    embedding = np.asarray(result.embedding, dtype=np.float32)
    if embedding.shape[0] != adata.n_obs:
        raise RuntimeError(f"method {spec.name!r} returned {embedding.shape[0]} rows for {adata.n_obs} cells")
    adata.obsm[key] = embedding
    for obs_key, values in result.obs.items():
        adata.obs[obs_key] = values
    for obsm_key, values in result.obsm.items():
        adata.obsm[obsm_key] = values
    for layer_key, values in result.layers.items():
        adata.layers[layer_key] = values
    adata.uns.setdefault("scintegrate", {})[key] = {**record, **_plain(result.info)}


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
