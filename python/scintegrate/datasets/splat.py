"""A count simulator in the spirit of Splatter's ``splatSimulate`` (Zappia et al. 2017, Genome Biology).

Model (Splat defaults in brackets, ours where they differ):

1. gene base means ~ Gamma(shape=0.6, rate=0.3); with probability 0.05 a gene is an outlier whose
   mean is median(base) * LogNormal(4, 0.5);
2. batch factors: per batch and gene exp(+-|N(batch_effect, batch_scale)|), direction a fair coin
   (Splat: batch.facLoc 0.1, scale 0.1; ours 0.2, 0.1 so that the batch effect is clearly visible);
3. group (cell-type) DE: a fraction ``de_prob`` of genes per type gets exp(+-|N(de_loc, de_scale)|),
   down with probability 0.5 (Splat: 0.1, 0.1, 0.4; ours de_loc 0.7: with
   ~3,000 rather than ~60,000 UMIs per cell the types need larger folds to separate);
4. library sizes ~ LogNormal(lib_loc, lib_scale) (Splat: 11, 0.2 for 10k genes; ours 8, 0.3);
   cell means = library size * (base * batch * DE factors, normalised to proportions);
5. BCV: bcv = (0.1 + 1/sqrt(mean)) * sqrt(60 / chi2_60) per gene; trueCounts ~ Poisson(Gamma(1/bcv^2,
   mean * bcv^2)), i.e. a gamma-Poisson (NB) draw;
6. dropout: a count is zeroed with probability 1 / (1 + exp(-shape * (log(mean) - mid))),
   shape -1, mid ``dropout`` (None: no dropout).

Cells are drawn in chunks and stored as CSR, so 100k cells x 2000 genes fit in memory.

Example
-------
>>> from scintegrate.datasets import simulate_counts
>>> adata = simulate_counts(n_cells=300, n_genes=200, experiment="removal1", seed=0)
>>> adata.X.format, adata.X.dtype.name, adata.shape
('csr', 'float32', (300, 200))
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.sparse as sp

from ._design import Experiment, absent_types, assign_cells, batch_sizes, make_obs

CHUNK_CELLS = 4096


def lognormal_factors(rng, shape, prob: float, loc: float, scale: float, down_prob: float = 0.5) -> np.ndarray:
    """Splatter's ``getLNormFactors``: exp(+-|N(loc, scale)|) for a ``prob`` fraction of entries, 1 elsewhere."""
    magnitude = np.abs(rng.normal(loc, scale, size=shape))
    sign = np.where(rng.random(shape) < down_prob, -1.0, 1.0)
    selected = rng.random(shape) < prob
    return np.where(selected, np.exp(sign * magnitude), 1.0)


def gene_means(rng, n_genes: int, mean_shape=0.6, mean_rate=0.3, out_prob=0.05, out_loc=4.0, out_scale=0.5):
    """Base gene means: Gamma(shape, rate) with outliers at median * LogNormal(out_loc, out_scale)."""
    base = rng.gamma(mean_shape, 1.0 / mean_rate, size=n_genes)
    outlier = rng.random(n_genes) < out_prob
    factors = rng.lognormal(out_loc, out_scale, size=n_genes)
    return np.where(outlier, np.median(base) * factors, base)


def _sample_chunk(rng, props, lib, bcv_gene_factor, bcv_common, dropout, dropout_shape):
    """Counts for one chunk of cells: NB (gamma-Poisson) draws of lib * props, then logistic dropout."""
    mean = lib[:, None] * props  # cells x genes
    bcv = (bcv_common + 1.0 / np.sqrt(mean)) * bcv_gene_factor[None, :]
    shape = 1.0 / bcv ** 2
    counts = rng.poisson(rng.gamma(shape, mean / shape)).astype(np.float32)
    if dropout is not None:
        rows, cols = np.nonzero(counts)
        p_drop = 1.0 / (1.0 + np.exp(-dropout_shape * (np.log(mean[rows, cols]) - dropout)))
        keep = rng.random(rows.size) >= p_drop
        counts[rows[~keep], cols[~keep]] = 0.0
    return sp.csr_matrix(counts)


def simulate_counts(
    n_cells=2000,
    n_genes: int = 2000,
    n_batches: Optional[int] = 2,
    n_types: int = 4,
    experiment: Experiment = "all",
    dropout: Optional[float] = 0.0,
    de_prob: float = 0.1,
    batch_effect: float = 0.2,
    seed: int = 0,
    *,
    batch_scale: float = 0.1,
    de_loc: float = 0.7,
    de_scale: float = 0.4,
    lib_loc: float = 8.0,
    lib_scale: float = 0.3,
    bcv_common: float = 0.1,
    bcv_df: float = 60.0,
    dropout_shape: float = -1.0,
    min_weight: float = 0.2,
):
    """Simulate raw UMI-like counts with cell types, batch effects and random compositions.

    Parameters
    ----------
    n_cells
        Total cells (split evenly over ``n_batches``) or one count per batch.
    n_genes, n_batches, n_types
        Matrix width, number of batches (``batch1``..) and cell types (``type1``..).
    experiment
        ``"all"``, ``"removal1"`` (type1 absent from batch1), ``"removal2"`` (also the last type,
        type4 by default, absent from batch2) or a dict ``{batch: [absent types]}``.
    dropout
        Logistic dropout midpoint on log(mean); higher drops more; None switches dropout off.
    de_prob
        Fraction of genes differentially expressed per cell type.
    batch_effect
        Location of the log-normal batch factors (0 with ``batch_scale=0``: no batch effect).
    seed
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    AnnData: ``.X`` CSR float32 counts, categorical ``obs["batch"]``/``obs["cell_type"]``,
    ``var["base_mean"]``, ``varm["de_factors"]`` (genes x types), ``varm["batch_factors"]``
    (genes x batches), ``uns["simulation"]`` (all parameters).
    """
    import anndata as ad

    sizes = batch_sizes(n_cells, n_batches)
    n_batches = len(sizes)
    _check_params(n_genes, n_types, de_prob, batch_effect, batch_scale, lib_scale)
    absent = absent_types(experiment, n_batches, int(n_types))
    rng = np.random.default_rng(seed)
    types, batches = assign_cells(rng, sizes, int(n_types), absent, min_weight)
    base = gene_means(rng, int(n_genes))
    batch_fac = lognormal_factors(rng, (n_batches, int(n_genes)), 1.0, batch_effect, batch_scale)
    de_fac = lognormal_factors(rng, (int(n_types), int(n_genes)), de_prob, de_loc, de_scale)
    combo = base[None, None, :] * batch_fac[:, None, :] * de_fac[None, :, :]  # batch x type x gene
    props = combo / combo.sum(axis=2, keepdims=True)
    lib = rng.lognormal(lib_loc, lib_scale, size=len(types))
    bcv_gene = np.sqrt(bcv_df / rng.chisquare(bcv_df, size=int(n_genes)))
    b_idx = np.repeat(np.arange(n_batches), sizes)
    t_idx = np.array([int(t[4:]) - 1 for t in types])
    chunks = [
        _sample_chunk(rng, props[b_idx[s:s + CHUNK_CELLS], t_idx[s:s + CHUNK_CELLS]], lib[s:s + CHUNK_CELLS],
                      bcv_gene, bcv_common, dropout, dropout_shape)
        for s in range(0, len(types), CHUNK_CELLS)
    ]
    adata = ad.AnnData(sp.vstack(chunks, format="csr"), obs=make_obs(types, batches, int(n_types), n_batches))
    adata.var_names = [f"gene{j + 1}" for j in range(int(n_genes))]
    adata.var["base_mean"] = base
    adata.varm["de_factors"] = de_fac.T
    adata.varm["batch_factors"] = batch_fac.T
    adata.obs["library_size_expected"] = lib
    adata.uns["simulation"] = {
        "kind": "splat_like", "n_cells_per_batch": sizes, "n_genes": int(n_genes), "n_types": int(n_types),
        "experiment": experiment if isinstance(experiment, str) else "custom", "absent": absent,
        "dropout": "none" if dropout is None else float(dropout), "de_prob": de_prob,
        "batch_effect": batch_effect, "seed": "none" if seed is None else seed, "batch_scale": batch_scale,
        "de_loc": de_loc, "de_scale": de_scale, "lib_loc": lib_loc, "lib_scale": lib_scale,
        "bcv_common": bcv_common, "bcv_df": bcv_df, "dropout_shape": dropout_shape, "min_weight": min_weight,
    }
    return adata


def _check_params(n_genes, n_types, de_prob, batch_effect, batch_scale, lib_scale) -> None:
    if int(n_genes) < 1 or int(n_types) < 1:
        raise ValueError(f"n_genes and n_types must be >= 1, got {n_genes} and {n_types}")
    if not 0.0 <= de_prob <= 1.0:
        raise ValueError(f"de_prob must be in [0, 1], got {de_prob}")
    if batch_scale < 0 or lib_scale < 0:
        raise ValueError(f"batch_scale and lib_scale must be >= 0, got {batch_scale} and {lib_scale}")


def demo_data(seed: int = 0):
    """Default data of ``scintegrate demo``: 2,400 cells x 1,500 genes, 2 batches, 4 types, removal2.

    >>> adata = demo_data()
    >>> adata.shape
    (2400, 1500)
    """
    adata = simulate_counts(n_cells=2400, n_genes=1500, n_batches=2, n_types=4, experiment="removal2", seed=seed)
    adata.uns["simulation"]["kind"] = "demo"
    return adata
