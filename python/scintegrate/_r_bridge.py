"""What the R package calls through reticulate (``Rpkg/R/python.R`` is its only user).

R hands over plain pieces -- the slots of a genes x cells ``dgCMatrix`` as a scipy CSC matrix (or an
F-ordered array), character vectors, ``(values, levels)`` tuples for factors -- and gets plain pieces
back: numpy arrays, CSR slots, strings, and run records as JSON text. Method names, default keys and
quick parameters come from :mod:`scintegrate.registry`, so R lists no method by hand.

Example
-------
>>> import scipy.sparse as sp
>>> from scintegrate import _r_bridge as rb
>>> X = sp.random(5, 4, density=0.5, format="csc", random_state=0)  # genes x cells, as R stores it
>>> adata = rb.make_adata(X, ["c1", "c2", "c3", "c4"], list("abcde"), {"batch": ["x", "x", "y", "y"]})
>>> adata.shape, adata.X.format
((4, 5), 'csr')
>>> "pca" in [m["name"] for m in rb.methods()]
True
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from typing import Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp

from . import registry


# ---------------------------------------------------------------------- the registry, for R
def version() -> str:
    """The version of the Python package."""
    from . import __version__

    return __version__


def _spec_info(spec) -> dict:
    return {"name": spec.name, "kind": spec.kind, "key": spec.obsm_key, "obs_keys": list(spec.obs_keys),
            "obsm_keys": list(spec.obsm_keys), "layer_keys": list(spec.layer_keys),
            "quick_params": dict(spec.quick_params), "description": spec.description,
            "labels_param": spec.labels_param}


def methods() -> list:
    """Every method R can run (methods and the baseline, no peers) with its default key and quick params.

    >>> [m["key"] for m in methods() if m["name"] == "pca"]
    ['X_pca_baseline']
    """
    return [_spec_info(registry.get_spec(name)) for name in registry.method_names()]


def default_method() -> str:
    """The method run when R names none (``registry.DEFAULT_METHOD``).

    >>> default_method() in [m["name"] for m in methods()]
    True
    """
    return registry.DEFAULT_METHOD


def check_method(name: str) -> dict:
    """The spec of ``name`` as :func:`methods` gives it; a ``ValueError`` names the methods R can run, a
    ``RuntimeError`` says that the method's module cannot be imported.

    >>> check_method("PCA")["key"]
    'X_pca_baseline'
    """
    names = registry.method_names()
    if str(name).lower() not in names:
        peer = " (an external peer that only the benchmark runs)" if str(name).lower() in registry.peer_names() else ""
        raise ValueError(f"unknown method {name!r}{peer}; available: {names}")
    spec = registry.get_spec(name)
    try:
        spec.model_class()
    except Exception as err:  # ImportError, AttributeError, or an error of the module itself
        raise RuntimeError(f"method '{spec.name}' is registered but cannot be imported in this installation "
                           f"({type(err).__name__}: {err})") from None
    return _spec_info(spec)


# ---------------------------------------------------------------------- R -> Python
def make_adata(X, cells, genes, obs: dict):
    """An AnnData over ``X`` given genes x cells (CSC, or an F-ordered array): ``X.T`` is the cells x genes
    CSR (or C-ordered) matrix over the same memory -- no copy. ``obs`` values are sequences or
    ``(values, levels)`` tuples (factors).

    >>> adata = make_adata(sp.csc_matrix(np.eye(3)), ["a", "b", "c"], ["g1", "g2", "g3"], {})
    >>> adata.obs_names.tolist(), adata.X.format
    (['a', 'b', 'c'], 'csr')
    """
    import anndata as ad

    columns = {k: (pd.Categorical(v[0], categories=v[1]) if isinstance(v, tuple) else v) for k, v in obs.items()}
    frame = pd.DataFrame(columns, index=pd.Index([str(c) for c in cells], dtype=str))
    return ad.AnnData(X=X.T, obs=frame, var=pd.DataFrame(index=pd.Index([str(g) for g in genes], dtype=str)))


# ---------------------------------------------------------------------- Python -> R
def to_slots(M) -> dict:
    """A cells x genes matrix as the slots of the genes x cells ``dgCMatrix`` R builds (CSR = transposed CSC).

    >>> to_slots(sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])))["dim"]
    [2, 3]
    """
    M = sp.csr_matrix(M)
    M.sort_indices()
    return {"x": np.asarray(M.data, dtype=np.float64), "i": np.asarray(M.indices, dtype=np.int32),
            "p": np.asarray(M.indptr, dtype=np.int32), "dim": [int(M.shape[1]), int(M.shape[0])]}


def obs_column(col):
    """An ``obs`` column for R: ``(levels, 1-based codes)`` for a categorical, an array for numbers and
    booleans, strings otherwise.

    >>> obs_column(pd.Series(pd.Categorical(["b", "a", "b"])))[0]
    ['a', 'b']
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        return [str(c) for c in col.cat.categories], np.asarray(col.cat.codes, dtype=np.int32) + 1
    if col.dtype.kind in "biuf":
        return np.asarray(col)
    return [str(v) for v in col]


def to_json(obj) -> str:
    """``obj`` (a run record: dicts, lists, numpy arrays and scalars) as JSON text for ``jsonlite``; NaN and
    infinities become ``null``, other objects their ``str``.

    >>> to_json({"a": np.array([1.0, np.nan]), "b": np.int64(2)})
    '{"a": [1.0, null], "b": 2}'
    """
    def plain(v):
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple, np.ndarray)):
            return [plain(x) for x in (v.tolist() if isinstance(v, np.ndarray) else v)]
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v if v is None or isinstance(v, (bool, int, float, str)) else str(v)
    return json.dumps(plain(obj))


def adata_slots(adata) -> dict:
    """Counts (``X``) as slots, names, ``obs`` columns and ``uns`` (JSON) of an AnnData."""
    return {"counts": to_slots(adata.X), "cells": [str(c) for c in adata.obs_names],
            "genes": [str(g) for g in adata.var_names],
            "obs": {str(c): obs_column(adata.obs[c]) for c in adata.obs.columns}, "uns": to_json(dict(adata.uns))}


def round_trip(X, cells, genes) -> dict:
    """``adata_slots`` of ``make_adata(X, ...)``, plus whether ``X`` arrived as CSR over R's memory, read-only."""
    adata = make_adata(X, cells, genes, {})
    out = adata_slots(adata)
    out.update(format=adata.X.format, no_copy_in_python=bool(np.shares_memory(adata.X.data, X.data)),
               read_only=not adata.X.data.flags.writeable)
    return out


def read_h5ad(path) -> dict:
    """``adata_slots`` of an .h5ad file, read by :func:`scintegrate.datasets.read_h5ad` (the CLI's reader:
    a one-line ``FileNotFoundError`` / ``ValueError`` for a missing file or a file that is not h5ad)."""
    from .datasets import read_h5ad as read

    return adata_slots(read(path))


def simulate(**params) -> dict:
    """``adata_slots`` of :func:`scintegrate.datasets.simulate_counts` (``params`` as it takes them)."""
    from .datasets import simulate_counts

    return adata_slots(simulate_counts(**params))


# ---------------------------------------------------------------------- runs
def load_torch() -> dict:
    """Import torch so that it calls its own BLAS (MKL), also inside R; say how it was loaded.

    R links the BLAS it was built with (``libblas.so.3``, often the single-threaded reference BLAS), which
    exports the same Fortran symbols (``sgemm_``, ``dgemm_``, ...) as the MKL inside ``libtorch_cpu``. A
    Python embedded in R that imports torch the usual way binds torch's calls to R's BLAS: every matrix
    product then runs on one thread, an order of magnitude slower (BERMUDA: ~6 s instead of 0.2 s per
    epoch). When such a symbol is already in the process, torch is imported with ``RTLD_DEEPBIND`` (its
    libraries look up their own symbols first); the dlopen flags are restored right after. Nothing changes
    in a plain Python, or when torch was imported already (``foreign_blas`` then says whether it may use
    the host's BLAS).

    >>> sorted(load_torch())
    ['deepbind', 'foreign_blas', 'loaded_now', 'threads']
    """
    import ctypes
    import sys

    loaded_now = "torch" not in sys.modules
    try:
        foreign = hasattr(ctypes.CDLL(None), "sgemm_")
    except OSError:  # pragma: no cover - no dlopen(NULL) on this platform
        foreign = False
    deepbind = loaded_now and foreign and hasattr(os, "RTLD_DEEPBIND") and hasattr(sys, "setdlopenflags")
    if deepbind:
        flags = sys.getdlopenflags()
        sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
        try:
            import torch
        finally:
            sys.setdlopenflags(flags)
    else:
        import torch
    global _TORCH_LOAD
    if _TORCH_LOAD is None:
        _TORCH_LOAD = {"loaded_now": loaded_now, "deepbind": deepbind, "foreign_blas": foreign and not deepbind}
    return {**_TORCH_LOAD, "threads": torch.get_num_threads()}


_TORCH_LOAD: Optional[dict] = None


@contextlib.contextmanager
def torch_threads(threads: Optional[int]):
    """Run a block with ``threads`` torch intra-op threads (``None``: as set), restoring the number after.

    ``torch.set_num_threads`` is called only when the number changes: a call after torch has run (even
    with the current number) makes later training slower (DeepBID's pretraining: ~30% on one thread).

    >>> with torch_threads(1) as n:
    ...     n
    1
    """
    import torch

    before = torch.get_num_threads()
    n = before if threads is None else int(threads)
    if n < 1:
        raise ValueError(f"threads must be a positive whole number, got {threads}")
    if n != before:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if n != before:
            torch.set_num_threads(before)


def integrate(adata, method, batch_key, key, seed, device, params, threads=None) -> dict:
    """Run :func:`scintegrate.integrate` with ``threads`` torch threads (``None``: as set) and return what R
    stores: the embedding (float64, cells x d), the new ``obs`` columns, the further ``obsm`` matrices and
    layers (CSR slots), and the run record (JSON, with the threads used).

    >>> import scintegrate as si
    >>> adata = si.datasets.simulate_counts(n_cells=100, n_genes=50, seed=0)
    >>> out = integrate(adata, "pca", "batch", "X_pca_baseline", 0, "cpu", {"n_comps": 5, "progress": False})
    >>> out["embedding"].shape
    (100, 5)
    """
    from .api import integrate as run

    obs_before, obsm_before, layers_before = set(adata.obs.columns), set(adata.obsm.keys()), set(adata.layers.keys())
    with torch_threads(threads) as n:
        run(adata, method=method, batch_key=batch_key, key_added=key, seed=int(seed), device=device, **params)
    record = dict(adata.uns["scintegrate"][key])
    record["threads"] = n
    return {"embedding": np.asarray(adata.obsm[key], dtype=np.float64),
            "obs": {c: obs_column(adata.obs[c]) for c in adata.obs.columns if c not in obs_before},
            "obsm": {k: np.asarray(adata.obsm[k], dtype=np.float64) for k in adata.obsm.keys()
                     if k != key and k not in obsm_before},
            "layers": {k: to_slots(v) for k, v in adata.layers.items() if k not in layers_before},
            "record": to_json(record)}


def metrics(X, batch, labels, X_unintegrated, metrics, seed) -> dict:
    """:func:`scintegrate.metrics.compute_metrics` with its warnings collected: ``{"values", "warnings"}``.

    >>> rng = np.random.default_rng(0)
    >>> out = metrics(rng.normal(size=(40, 2)), ["a", "b"] * 20, ["x"] * 20 + ["y"] * 20, None, ["ilisi"], 0)
    >>> round(out["values"]["ilisi"], 1) > 1
    True
    """
    import warnings

    from .metrics import compute_metrics

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = compute_metrics(np.asarray(X, dtype=np.float64), np.asarray(batch, dtype=str),
                              np.asarray(labels, dtype=str), X_unintegrated=X_unintegrated, metrics=metrics,
                              seed=int(seed))
    return {"values": {k: float(v) for k, v in out.items()}, "warnings": sorted({str(w.message) for w in caught})}
