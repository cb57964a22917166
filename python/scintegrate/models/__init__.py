"""User-facing model classes (AnnData in, results out; fit / embed / save / load)."""

import importlib

_CLASSES = {"BERMUDA": "scintegrate.models.bermuda", "DeepBID": "scintegrate.models.deepbid"}


def __getattr__(name):
    if name in _CLASSES:
        return getattr(importlib.import_module(_CLASSES[name]), name)
    raise AttributeError(name)


__all__ = list(_CLASSES)
