"""The one data layer: AnnData -> what the models train on (matrix, batch codes, genes, library sizes).

- :func:`check_input` — the checks every method's input passes, once, before anything is built;
- :func:`extract` — a :class:`CellData`: the chosen matrix as stored (sparse stays sparse), batch codes in
  order of first appearance, gene and cell names, whether the values are counts, library sizes.

Minibatch samplers live in :mod:`scintegrate.train.samplers`.

>>> import scintegrate as si
>>> from scintegrate.data import extract
>>> adata = si.datasets.simulate_counts(n_cells=100, n_genes=50, seed=0)
>>> data = extract(adata, "batch")
>>> data.batch_levels, data.is_counts, data.n_cells
(['batch1', 'batch2'], True, 100)
"""

from .extract import CellData, check_input, extract

__all__ = ["CellData", "check_input", "extract"]
