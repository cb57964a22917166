"""Simulators and loaders: the data scintegrate runs on by default.

- :func:`simulate_gaussian_2d` — the MNN / BERMUDA 2-D Gaussian simulation (continuous values);
- :func:`simulate_counts` — Splatter-like counts with cell types, batch effects, dropout;
- :func:`demo_data` — the default data of ``scintegrate demo``;
- :func:`load_shared`, :func:`list_shared`, :func:`shared_data_dir`, :func:`read_h5ad` — real data.

>>> import scintegrate as si
>>> si.datasets.simulate_counts(n_cells=200, n_genes=100, seed=1).obs["batch"].cat.categories.tolist()
['batch1', 'batch2']
"""

from ._design import EXPERIMENTS, absent_types
from .gaussian import simulate_gaussian_2d
from .shared import list_shared, load_shared, read_h5ad, shared_data_dir
from .splat import demo_data, simulate_counts

__all__ = ["simulate_gaussian_2d", "simulate_counts", "demo_data", "load_shared", "list_shared",
           "shared_data_dir", "read_h5ad", "absent_types", "EXPERIMENTS"]
