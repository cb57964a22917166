"""scintegrate: batch integration for single-cell RNA-seq.

>>> import scintegrate as si
>>> adata = si.datasets.simulate_counts(n_cells=300, n_genes=200, seed=0)
>>> si.integrate(adata, method="pca", progress=False).obsm["X_pca_baseline"].shape[0]
300

Submodules: ``registry`` (every method: what it needs and writes), ``pp`` (Seurat-style preprocessing),
``datasets`` (simulators and loaders),
``metrics`` (arrays in, scores out), ``benchmark`` (AnnData tables and plots), ``models``
(BERMUDA, DeepBID, ...). Importing the package sets no seed, logger or device.
"""

__version__ = "0.1.0"

from . import datasets, metrics, pp, registry  # noqa: E402
from .api import available_methods, integrate  # noqa: E402


def __getattr__(name):  # lazy: models and benchmark import torch / matplotlib
    import importlib

    if name in ("models", "benchmark", "io"):
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(name)


__all__ = ["registry", "pp", "datasets", "metrics", "benchmark", "models", "io", "integrate", "available_methods",
           "__version__"]
