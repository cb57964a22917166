"""The 2-D Gaussian simulation of the MNN paper (Haghverdi et al. 2018), as BERMUDA used it.

Four cell types are bivariate normals in a 2-D biological plane (centres (0,5), (5,5), (5,0), (0,0),
standard deviations 0.8, 0.1, 0.4, 0.2). Cells are projected to ``n_genes`` dimensions by one random
Gaussian matrix shared by all batches; every batch after the first gets a gene-wise Gaussian batch
vector added to all its cells (the first batch is the reference, as in the MNN script); independent
N(0, 1) noise is added to every entry. Cell-type compositions are random per batch.

Example
-------
>>> from scintegrate.datasets import simulate_gaussian_2d
>>> adata = simulate_gaussian_2d(seed=0)
>>> adata.shape, adata.obsm["X_true_2d"].shape
((2100, 100), (2100, 2))
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ._design import Experiment, absent_types, assign_cells, batch_sizes, make_obs

CENTERS = np.array([[0.0, 5.0], [5.0, 5.0], [5.0, 0.0], [0.0, 0.0]])
SDS = np.array([0.8, 0.1, 0.4, 0.2])


def simulate_gaussian_2d(
    n_cells_per_batch: Sequence[int] = (1000, 1100),
    n_genes: int = 100,
    experiment: Experiment = "all",
    seed: int = 0,
    *,
    batch_sd: float = 1.0,
    noise_sd: float = 1.0,
):
    """Simulate continuous expression with a 2-D cluster structure and a gene-wise batch shift.

    Parameters
    ----------
    n_cells_per_batch
        Cells in each batch (its length is the number of batches, >= 1).
    n_genes
        Dimension of the random projection (100 in the MNN / BERMUDA papers).
    experiment
        ``"all"``, ``"removal1"``, ``"removal2"`` or a dict of absent types (see ``_design``).
    seed
        Seed of ``numpy.random.default_rng``.
    batch_sd, noise_sd
        SD of the per-gene batch vector and of the per-entry noise.

    Returns
    -------
    AnnData with dense float32 ``.X`` (not counts), ``obs["batch"]``, ``obs["cell_type"]``,
    ``obsm["X_true_2d"]`` (biological coordinates), ``varm["projection"]`` (n_genes x 2) and
    ``uns["simulation"]`` (parameters).
    """
    import anndata as ad

    sizes = batch_sizes(list(n_cells_per_batch), None)
    if int(n_genes) < 2:
        raise ValueError(f"n_genes must be >= 2, got {n_genes}")
    n_types, n_batches = len(CENTERS), len(sizes)
    absent = absent_types(experiment, n_batches, n_types)
    rng = np.random.default_rng(seed)
    types, batches = assign_cells(rng, sizes, n_types, absent)
    codes = np.array([int(t[4:]) - 1 for t in types])
    true_2d = CENTERS[codes] + rng.standard_normal((len(codes), 2)) * SDS[codes, None]
    projection = rng.standard_normal((int(n_genes), 2))
    shifts = rng.standard_normal((n_batches, int(n_genes))) * batch_sd
    shifts[0] = 0.0  # batch1 is the reference
    batch_codes = np.repeat(np.arange(n_batches), sizes)
    X = true_2d @ projection.T + shifts[batch_codes] + rng.standard_normal((len(codes), int(n_genes))) * noise_sd
    adata = ad.AnnData(X.astype(np.float32), obs=make_obs(types, batches, n_types, n_batches))
    adata.var_names = [f"gene{j + 1}" for j in range(int(n_genes))]
    adata.obsm["X_true_2d"] = true_2d
    adata.varm["projection"] = projection
    adata.uns["simulation"] = {
        "kind": "gaussian_2d", "n_cells_per_batch": sizes, "n_genes": int(n_genes),
        "experiment": experiment if isinstance(experiment, str) else "custom",
        "absent": absent, "seed": "none" if seed is None else seed, "batch_sd": batch_sd, "noise_sd": noise_sd,
    }
    adata.uns["note"] = "continuous Gaussian simulation, not counts"
    return adata
