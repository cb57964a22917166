"""User-facing model classes (AnnData in, results out; fit / embed / to_result / save / load).

Every class subclasses :class:`IntegrationModel` and is named by its registry entry
(:mod:`scintegrate.registry`); classes load lazily (torch is imported only when a network is used).
"""

import importlib

_CLASSES = {"IntegrationModel": "scintegrate.models._base", "IntegrationResult": "scintegrate.models._base",
            "PCABaseline": "scintegrate.models.pca_baseline", "BERMUDA": "scintegrate.models.bermuda",
            "DeepBID": "scintegrate.models.deepbid", "Harmony": "scintegrate.models.harmony",
            "Scanorama": "scintegrate.models.scanorama", "SCVI": "scintegrate.models.scvi",
            "TRVAE": "scintegrate.models.trvae", "CVAE": "scintegrate.models.cvae",
            "SCANVI": "scintegrate.models.scanvi", "FastMNN": "scintegrate.models.fastmnn",
            "SeuratCCA": "scintegrate.models.seurat_cca"}


def __getattr__(name):
    if name in _CLASSES:
        return getattr(importlib.import_module(_CLASSES[name]), name)
    raise AttributeError(name)


__all__ = list(_CLASSES)
