"""Save/load and device plumbing shared by the user-facing model classes.

A saved model is a folder: ``model.pt`` (torch state dict), ``params.json`` (constructor
parameters, package version, gene names, batch levels) and ``extras.npz`` (fitted arrays such as
cluster assignments or similarity matrices).

Example
-------
>>> # model.save("bermuda_model"); same = BERMUDA.load("bermuda_model")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Optional

import numpy as np


class SavableModel:
    """Mixin: subclasses set ``self.module`` (an ``nn.Module``), ``self.params`` (JSON-able dict) and
    ``self.extras`` (dict of numpy arrays) and implement ``_build_module()`` from ``self.params``."""

    module = None
    params: Dict = {}
    extras: Dict[str, np.ndarray] = {}

    def _build_module(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def save(self, path, overwrite: bool = False) -> Path:
        """Write the fitted model to the folder ``path``."""
        from .. import __version__
        import torch

        if self.module is None:
            raise RuntimeError("the model is not fitted; call fit() before save()")
        path = Path(path)
        if path.exists() and any(path.iterdir()) and not overwrite:
            raise FileExistsError(f"{path} exists and is not empty; pass overwrite=True")
        path.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().cpu() for k, v in self.module.state_dict().items()}, path / "model.pt")
        meta = {"class": type(self).__name__, "version": __version__, "params": self.params}
        (path / "params.json").write_text(json.dumps(meta, indent=2, default=_json_default))
        np.savez_compressed(path / "extras.npz", **{k: np.asarray(v) for k, v in self.extras.items()})
        return path

    @classmethod
    def load(cls, path, device: Optional[str] = "cpu"):
        """Load a model saved with :meth:`save`."""
        import torch
        from .._device import resolve_device

        path = Path(path)
        if not (path / "params.json").exists():
            raise FileNotFoundError(f"{path} does not hold a saved scintegrate model (no params.json)")
        meta = json.loads((path / "params.json").read_text())
        if meta.get("class") != cls.__name__:
            raise ValueError(f"{path} holds a {meta.get('class')} model, not {cls.__name__}")
        obj = cls.__new__(cls)
        obj.params = meta["params"]
        with np.load(path / "extras.npz", allow_pickle=False) as npz:
            obj.extras = {k: npz[k] for k in npz.files}
        obj.device = resolve_device(device)
        obj.module = obj._build_module()
        obj.module.load_state_dict(torch.load(path / "model.pt", map_location="cpu"))
        obj.module.to(obj.device).eval()
        obj._after_load()
        return obj

    def _after_load(self) -> None:
        """Hook for subclasses to restore derived attributes from ``params``/``extras``."""


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj)}")
