"""The base of every model class: one fit / embed / to_result / save / load contract.

A model class subclasses :class:`IntegrationModel`, names its registry entry in ``method`` and
implements

- ``_fit(adata, data)``: train on the already-checked input (``data`` is the
  :class:`~scintegrate.data.CellData` of ``adata``) and set ``embedding_``;
- ``_embed_new(adata, data)``: the embedding of cells it was not trained on (optional);
- ``_outputs()``: further per-cell outputs ``{"obs": ..., "obsm": ..., "layers": ..., "info": ...}``;
- ``_fitted_state()`` / ``_restore_state(state, arrays)``: what a saved model keeps besides its weights;
- ``_build_module()``: the ``nn.Module`` to load weights into (networks only).

Hyperparameters live in ``params`` (constructor arguments only); fitted values are attributes with a
trailing underscore. The device is resolved once, in the constructor; input is checked once, in
:meth:`fit`. A saved model is a folder with ``model.json`` (class, method, format, package version,
hyperparameters, fitted scalars), ``arrays.npz`` (fitted arrays) and ``weights.pt`` (networks).

Example
-------
>>> import scintegrate as si
>>> from scintegrate.models import PCABaseline
>>> adata = si.datasets.simulate_counts(n_cells=200, n_genes=100, seed=0)
>>> model = PCABaseline(n_comps=5).fit(adata, batch_key="batch")
>>> model.embed().shape, sorted(model.timings_)
((200, 5), ['pca'])
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Dict, Optional

import numpy as np

#: bumped when the folder layout of saved models changes
FORMAT_VERSION = 2


@dataclass
class IntegrationResult:
    """What ``integrate`` writes: the embedding and the further per-cell outputs, plus a JSON-able record."""

    embedding: np.ndarray
    obs: Dict[str, object] = field(default_factory=dict)
    obsm: Dict[str, np.ndarray] = field(default_factory=dict)
    layers: Dict[str, object] = field(default_factory=dict)
    info: Dict[str, object] = field(default_factory=dict)


class IntegrationModel:
    """Base class of the user-facing model classes (AnnData in, results out)."""

    #: registry name of the method this class implements
    method: ClassVar[str] = ""
    #: whether embedding new cells needs their batch column
    embed_needs_batch: ClassVar[bool] = False

    module = None

    def _setup(self, params: dict, *, seed: int, device, progress: bool) -> None:
        """Store hyperparameters and resolve the device (called by every subclass's ``__init__``)."""
        from .._device import resolve_device
        from ._params import check_seed

        self.params = {**params, "seed": check_seed(seed)}
        self.device = resolve_device(device)
        self.progress = bool(progress)
        self.module = None
        self.timings_: Dict[str, float] = {}
        self.embedding_: Optional[np.ndarray] = None

    @property
    def seed(self) -> int:
        return int(self.params["seed"])

    @classmethod
    def spec(cls):
        """This class's :class:`~scintegrate.registry.MethodSpec`."""
        from ..registry import get_spec

        return get_spec(cls.method)

    # ------------------------------------------------------------------ fit / embed
    def fit(self, adata, *, batch_key="batch", layer: Optional[str] = None, input: str = "auto"):
        """Check ``adata`` (see :func:`scintegrate.data.check_input`), then train; returns ``self``.

        ``input`` declares the kind of values (``"auto"``: decided from every value, batch by batch;
        ``"counts"``: normalise them as counts, e.g. non-integer estimated counts; ``"log"``: take them as
        they are). The decision is kept in ``input_kind_`` and in the run record (``"embedding"`` when the
        method reads ``adata.obsm``, see :meth:`_input_rep`). ``batch_key`` is one ``obs`` column, or a list
        of them for methods whose spec has ``multi_batch``.
        """
        from ..data import check_input, extract

        if isinstance(batch_key, (list, tuple)) and len(batch_key) == 1:
            batch_key = batch_key[0]
        rep = self._input_rep(adata, layer=layer, input=input)
        check_input(adata, batch_key, layer=layer, spec=self.spec(), rep=rep)
        data = extract(adata, batch_key, layer=layer, input=input, rep=rep)
        batch_key = list(batch_key) if isinstance(batch_key, (list, tuple)) else batch_key
        self.batch_key_, self.layer_, self.input_, self.input_kind_ = batch_key, layer, input, data.kind
        self.n_cells_, self.var_names_ = adata.n_obs, [str(g) for g in adata.var_names]
        self.timings_ = {}
        self._fit(adata, data)
        if self.embedding_ is None or self.embedding_.shape[0] != adata.n_obs:
            raise RuntimeError(f"{type(self).__name__} produced no embedding for the {adata.n_obs} cells")
        return self

    def _input_rep(self, adata, *, layer: Optional[str], input: str) -> Optional[str]:
        """The ``adata.obsm`` key a method reads instead of the expression matrix (``None``: the matrix)."""
        return None

    def embed(self, adata=None, *, batch_key: Optional[str] = None, layer: Optional[str] = None) -> np.ndarray:
        """The embedding of the training cells (``adata=None``) or of new cells (float32, cells in rows)."""
        self._check_fitted()
        if adata is None:
            if self.embedding_ is None:
                raise ValueError("this model holds no training embedding; pass adata")
            return self.embedding_.copy()
        if type(self)._embed_new is IntegrationModel._embed_new:  # embeds only its training cells: say so first,
            self._embed_new(adata, None)  # before checking adata (raises NotImplementedError)
        adata, data = self._new_cells(adata, batch_key=batch_key, layer=layer)
        return self._embed_new(adata, data)

    def _new_cells(self, adata, *, batch_key: Optional[str], layer: Optional[str]):
        """``(adata, data)`` of new cells, checked as the training cells were (genes aligned to training)."""
        from ..data import check_input, extract

        key = batch_key if batch_key is not None else (getattr(self, "batch_key_", None) or "batch")
        if not self.embed_needs_batch and key not in adata.obs.columns:
            key = None
        check_input(adata, key, layer=layer, spec=self.spec(), min_batches=1)
        genes = self.required_genes()
        missing = [g for g in genes if g not in set(adata.var_names.astype(str))]
        if missing:
            raise KeyError(f"{len(missing)} of the model's {len(genes)} genes are missing from the data, "
                           f"e.g. {missing[:3]}")
        if genes == self.var_names_ and list(adata.var_names) != genes:
            adata = adata[:, genes]  # the model reads columns by position: align them to training
        data = extract(adata, key, layer=layer, input=getattr(self, "input_", "auto"))
        trained = getattr(self, "input_kind_", data.kind)
        if data.is_counts != (trained in ("counts", "noninteger_counts")) or (trained == "scaled") != (
                data.kind == "scaled"):
            raise ValueError(f"the model was fitted on {trained.replace('_', '-')} values but these cells hold "
                             f"{data.kind.replace('_', '-')} values; pass them in the same form")
        return adata, data

    def required_genes(self) -> list:
        """Genes new cells must have (default: every training gene, in training order)."""
        return self.var_names_

    def _embed_new(self, adata, data) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} embeds only the cells it was fitted on")

    def to_result(self) -> IntegrationResult:
        """The embedding and every further output of the fitted model, as ``integrate`` writes them."""
        self._check_fitted()
        out = self._outputs()
        info = {"timings": dict(self.timings_), "input": getattr(self, "input_kind_", "unknown"),
                **out.get("info", {})}
        return IntegrationResult(embedding=np.asarray(self.embed(), dtype=np.float32), obs=out.get("obs", {}),
                                 obsm=out.get("obsm", {}), layers=out.get("layers", {}), info=info)

    def _outputs(self) -> dict:
        return {}

    def _check_fitted(self) -> None:
        if getattr(self, "embedding_", None) is None and self.module is None:
            raise RuntimeError(f"the {type(self).__name__} model is not fitted; call fit() first")

    @contextlib.contextmanager
    def _stage(self, name: str):
        """Time a stage of ``fit`` into ``timings_[name]`` (seconds)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings_[name] = round(time.perf_counter() - start, 3)

    # ------------------------------------------------------------------ save / load
    def _fitted_state(self):
        """``(JSON-able dict, dict of arrays)`` a saved model keeps besides params and weights."""
        return {}, {}

    def _restore_state(self, state: dict, arrays: Dict[str, np.ndarray]) -> None:
        """Set the fitted attributes from what :meth:`_fitted_state` returned."""

    def _build_module(self):
        return None

    def save(self, path, overwrite: bool = False) -> Path:
        """Write the fitted model to the folder ``path`` (complete or not at all)."""
        from .. import __version__

        self._check_fitted()
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"{path} exists and is not a folder")
        if path.exists() and any(path.iterdir()) and not overwrite:
            raise FileExistsError(f"{path} exists and is not empty; pass overwrite=True")
        state, arrays = self._fitted_state()
        common = {"embedding": self.embedding_, "var_names": np.asarray(self.var_names_, dtype=str)}
        meta = {"class": type(self).__name__, "method": self.method, "format": FORMAT_VERSION,
                "version": __version__, "params": self.params,
                "fitted": {"batch_key": self.batch_key_, "layer": self.layer_, "n_cells": int(self.n_cells_),
                           "input": self.input_, "input_kind": self.input_kind_,
                           "timings": self.timings_, **state}}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            (tmp / "model.json").write_text(json.dumps(meta, indent=2, default=_json_default))
            np.savez_compressed(tmp / "arrays.npz", **{k: np.asarray(v) for k, v in {**common, **arrays}.items()
                                                         if v is not None})
            if self.module is not None:
                import torch

                torch.save({k: v.detach().cpu() for k, v in self.module.state_dict().items()}, tmp / "weights.pt")
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return path

    @classmethod
    def load(cls, path, device: Optional[str] = "cpu"):
        """Load a model saved with :meth:`save` onto ``device``."""
        from .. import __version__
        from .._device import resolve_device

        path = Path(path)
        meta = _read_meta(path)
        if meta.get("class") != cls.__name__:
            raise ValueError(f"{path} holds a {meta.get('class')} model, not {cls.__name__}")
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path} was saved by scintegrate {meta.get('version', '?')} in format "
                             f"{meta.get('format', 1)}; this is scintegrate {__version__} (format {FORMAT_VERSION}): "
                             "refit the model with this version")
        obj = cls.__new__(cls)
        obj.params, obj.device, obj.progress, obj.module = meta["params"], resolve_device(device), False, None
        fitted = meta["fitted"]
        obj.batch_key_, obj.layer_, obj.n_cells_ = fitted["batch_key"], fitted["layer"], fitted["n_cells"]
        obj.input_, obj.input_kind_ = fitted["input"], fitted["input_kind"]
        obj.timings_ = fitted.get("timings", {})
        try:
            with np.load(path / "arrays.npz", allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except Exception as err:
            raise ValueError(f"{path}/arrays.npz is damaged or not a scintegrate model file ({err})") from None
        obj.embedding_ = arrays.pop("embedding", None)
        obj.var_names_ = arrays.pop("var_names").tolist()
        obj._restore_state(fitted, arrays)
        module = obj._build_module()
        if module is not None:
            obj.module = _load_weights(module, path / "weights.pt").to(obj.device).eval()
        return obj


def _read_meta(path: Path) -> dict:
    file = path / "model.json"
    if not file.exists():
        raise FileNotFoundError(f"{path} does not hold a saved scintegrate model (no model.json)")
    try:
        meta = json.loads(file.read_text())
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"{file} is damaged: not a scintegrate model file") from None
    if not isinstance(meta, dict) or "params" not in meta or "fitted" not in meta:
        raise ValueError(f"{file} is not a scintegrate model file")
    return meta


def _load_weights(module, file: Path):
    import torch

    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
        module.load_state_dict(state)
    except Exception as err:
        raise ValueError(f"{file} is damaged or does not match the model ({type(err).__name__})") from None
    return module


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj)}")
