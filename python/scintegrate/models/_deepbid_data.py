"""DeepBID's input preparation (the paper's scanpy preprocessing, per batch) and its choice of K.

Counts (``likelihood="nb"``): normalise each cell to 1e4 and log1p; in every batch drop genes seen in
< ``min_cells`` of its cells and keep the batch's top ``n_top_genes`` HVGs (scanpy ``flavor="seurat"``); the
union of the HVGs over batches is the gene set. (The authors' script filters genes per batch *before*
normalising and zero-fills them in an outer join; here a gene filtered in one batch keeps its small values
there, which also keeps a batch of one or two cells from being zeroed out.)
The network sees these log values standardised per gene (clipped to ±10, as the public script z-scores its
input); the raw counts of the same genes and the library-size factors s_i = total_i / median(total) feed the
NB term.

Non-count input (``likelihood="gaussian"``, e.g. a log-normalised matrix, or any input declared
``input="log"``, integer or not): the values are used as they are (no re-normalisation, never rounded); HVGs
are still chosen per batch and the union kept. Non-integer counts declared ``input="counts"`` are normalised
as counts (training and new cells alike) and get the Gaussian term (NB needs integers).

The Seurat HVG statistics are computed here (:func:`seurat_dispersions`), in float64 and in the log domain:
scanpy's ``flavor="seurat"`` takes expm1 in the matrix's float32, which is inf above 88.7, and its binning
then fails on the inf means. Declared-log input keeps values that large (UMI counts, TPM up to 1e5); the
selection equals scanpy's wherever scanpy's is finite (identical gene sets on every batch of the shared data).

Example
-------
>>> import numpy as np, anndata as ad, pandas as pd
>>> from scintegrate.data import extract
>>> from scintegrate.models._deepbid_data import prepare_inputs
>>> rng = np.random.default_rng(0)
>>> a = ad.AnnData(rng.poisson(1.0, (60, 40)).astype(np.float32),
...                obs=pd.DataFrame({"b": ["x", "y"] * 30}, index=[f"c{i}" for i in range(60)]))
>>> inp = prepare_inputs(extract(a, "b"), n_top_genes=10)
>>> inp.likelihood, inp.n_cells, inp.counts is not None
('nb', 60, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._validation import is_integer_matrix

#: batches with fewer cells than this contribute no HVGs (their cells are still integrated)
MIN_CELLS_FOR_HVG = 10


@dataclass
class DeepBIDInputs:
    """What the model trains on (cells in rows, the selected genes in columns), sparse until a minibatch.

    The network's input is ``logx`` standardised per gene (``gene_mean`` / ``gene_std``, clipped to +-10),
    formed for a block of rows at a time by :meth:`x_rows`.
    """

    logx: sp.csr_matrix            # log values of the selected genes (float32)
    counts: Optional[sp.csr_matrix]  # raw counts of the same genes (NB) or None (Gaussian)
    size_factors: np.ndarray       # s_i (ones for Gaussian)
    batch: np.ndarray              # batch code per cell (int64)
    batch_levels: List[str]
    genes: List[str]
    gene_mean: np.ndarray          # per-gene mean / sd of the log values used to standardise
    gene_std: np.ndarray
    likelihood: str

    @property
    def n_cells(self) -> int:
        return self.logx.shape[0]

    def x_rows(self, rows) -> np.ndarray:
        """Standardised dense float32 network input of ``rows`` (a slice or index array)."""
        return standardize(self.logx[rows], self.gene_mean, self.gene_std)

    def counts_rows(self, rows) -> np.ndarray:
        return self.counts[rows].toarray()


def standardize(logx_rows, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``clip((x - mean) / std, -10, 10)`` of sparse or dense rows, as dense float32."""
    dense = logx_rows.toarray() if sp.issparse(logx_rows) else np.asarray(logx_rows)
    return np.clip((dense - mean) / std, -10, 10).astype(np.float32)


def column_mean_std(X: sp.csr_matrix, chunk: int = 4096):
    """Per-column mean and population sd of ``X``, block by block, equal to ``X.toarray().mean(0)`` and
    ``.std(0)`` bit for bit (numpy sums an axis-0 reduction row after row; so does this, carrying the
    running sum into each block) without ever holding the dense matrix.

    Where the float32 sums overflow (values near the float32 limit, possible when input="log" keeps huge
    values as they are), they are redone in float64 and the result is cast back."""
    n = X.shape[0]

    def running_sum(blocks):
        total = None
        for block in blocks:
            total = np.add.reduce(block if total is None else np.vstack([total[None], block]), axis=0)
        return total

    def stats(dtype):
        mean = running_sum(X[i:i + chunk].toarray().astype(dtype, copy=False) for i in range(0, n, chunk)) / n
        var = running_sum(np.square(X[i:i + chunk].toarray().astype(dtype, copy=False) - mean)
                          for i in range(0, n, chunk)) / n
        return mean, np.sqrt(var)

    with np.errstate(over="ignore", invalid="ignore"):
        mean, std = stats(X.dtype)
    if not (np.isfinite(mean).all() and np.isfinite(std).all()):
        mean, std = stats(np.float64)
        mean, std = mean.astype(X.dtype), std.astype(X.dtype)
    return mean, std


def resolve_likelihood(X, likelihood: str = "auto", is_counts: bool = True) -> str:
    """``"auto"`` -> ``"nb"`` for integer counts, ``"gaussian"`` otherwise; ``"nb"`` on non-counts is an error.

    ``is_counts=False`` (the input was declared or read as log values, e.g. ``input="log"``): ``"auto"`` gives
    ``"gaussian"`` even for integer values, since the network then sees the values as they are and an NB term
    on them would treat declared log values as counts."""
    likelihood = str(likelihood).lower()
    if likelihood not in ("auto", "nb", "gaussian"):
        raise ValueError(f"likelihood must be 'auto', 'nb' or 'gaussian', got {likelihood!r}")
    counts = is_integer_matrix(X)
    if likelihood == "nb" and not counts:
        raise ValueError(
            "likelihood='nb' needs raw integer counts, but the matrix holds non-integer values (e.g. "
            "log-normalised data). Pass the raw counts (layer=...) or use likelihood='gaussian' / 'auto'; "
            "values are never rounded to fake counts")
    if likelihood == "auto":
        return "nb" if counts and is_counts else "gaussian"
    return likelihood


def seurat_dispersions(logx):
    """Per gene, scanpy ``flavor="seurat"``'s ``means`` (log1p of the mean of expm1(x)) and ``dispersions``
    (log of the variance / mean of expm1(x), variance with n - 1; NaN where it is 0 or undefined), computed
    in float64 in the log domain so that no value overflows.

    Why: scanpy takes expm1 of the matrix in its own dtype (float32 here), which is inf for any value above
    88.7 (float64: 709.8), and then ``pd.cut`` of the inf means fails ("cannot specify integer bins when
    input data contains infinity"). Values that large reach this step when the user declares input="log"
    for counts or TPM (kept as they are, by design). Here, with s = max(0, max of the gene) and
    w = exp(x - s) in (0, 1]: mean(e^x) = e^s mean(w), var(e^x) = e^{2s} var(w), and since
    expm1(x) = e^x - 1, means = log mean(e^x) = s + log mean(w) and
    dispersions = 2 s + log var(w) - log(mean(e^x) - 1). Equal to scanpy's wherever scanpy is finite
    (up to its float32 rounding of expm1), and finite for every finite input.
    """
    X = sp.csc_matrix(logx, dtype=np.float64, copy=True)
    X.sum_duplicates()
    n, g = X.shape
    nnz = np.diff(X.indptr)
    n_zero = n - nnz
    shift = np.zeros(g)
    filled = nnz > 0
    if filled.any():
        shift[filled] = np.maximum(np.maximum.reduceat(X.data, X.indptr[:-1][filled]), 0.0)
    col = np.repeat(np.arange(g), nnz)
    w = np.exp(X.data - shift[col])
    w_zero = np.exp(-shift)  # an implicit zero entry
    mean_w = (np.bincount(col, w, minlength=g) + n_zero * w_zero) / n
    ss = np.bincount(col, np.square(w - mean_w[col]), minlength=g) + n_zero * np.square(w_zero - mean_w)
    var_w = ss / (n - 1 if n > 1 else 1)
    log_mean_exp = shift + np.log(mean_w)  # = log1p(mean(expm1 x))
    with np.errstate(divide="ignore", invalid="ignore"):
        # log(mean(expm1 x)); scanpy sets a zero mean to 1e-12, and a negative one gives NaN
        log_mean = np.where(log_mean_exp > 0, log_mean_exp + np.log(-np.expm1(-log_mean_exp)), np.nan)
        log_mean[log_mean_exp == 0] = np.log(1e-12)
        dispersions = 2.0 * shift + np.log(var_w) - log_mean
    dispersions[~np.isfinite(dispersions)] = np.nan  # zero variance: scanpy's NaN
    means = np.where(log_mean_exp == 0, np.log1p(1e-12), log_mean_exp)
    return means, dispersions


def seurat_top_genes(means: np.ndarray, dispersions: np.ndarray, n_top: int, n_bins: int = 20) -> np.ndarray:
    """scanpy ``flavor="seurat"`` selection: dispersions z-scored within ``n_bins`` equal-width bins of the
    means (a bin of one gene gets 1), then the ``n_top`` largest (ties kept). Boolean mask."""
    df = pd.DataFrame({"means": means, "dispersions": dispersions})
    df["mean_bin"] = pd.cut(df["means"], bins=n_bins)
    stats = df.groupby("mean_bin", observed=True)["dispersions"].agg(avg="mean", dev="std")
    one = stats["dev"].isnull()
    stats.loc[one, "dev"] = stats.loc[one, "avg"]
    stats.loc[one, "avg"] = 0.0
    stats = stats.loc[df["mean_bin"]]
    with np.errstate(divide="ignore", invalid="ignore"):  # a bin of equal dispersions: NaN, as scanpy
        norm = (df["dispersions"].to_numpy() - stats["avg"].to_numpy()) / stats["dev"].to_numpy()
    valid = norm[~np.isnan(norm)]
    if valid.size == 0:
        return np.zeros(len(norm), dtype=bool)
    cutoff = np.sort(valid)[::-1][min(n_top, valid.size) - 1]
    return np.nan_to_num(norm, nan=-np.inf) >= cutoff


def _hvgs(logx, genes: np.ndarray, n_top: int) -> np.ndarray:
    """Names of the top ``n_top`` HVGs (scanpy flavor='seurat', computed overflow-free by
    :func:`seurat_dispersions`) of log data ``logx`` (cells x genes)."""
    if len(genes) <= n_top:
        return genes
    return genes[seurat_top_genes(*seurat_dispersions(logx), n_top)]


def _log_normalize(counts: sp.csr_matrix, scale: float = 1e4) -> sp.csr_matrix:
    totals = np.asarray(counts.sum(1)).ravel()
    scaled = sp.diags(scale / np.maximum(totals, 1e-12)) @ counts
    return scaled.log1p().tocsr()


def _log_matrix_and_batch_hvgs(X: sp.csr_matrix, batch: np.ndarray, n_levels: int, genes: np.ndarray,
                               min_cells: int, n_top: int, is_counts: bool):
    """log1p(1e4-normalised) values (counts) or the values as given, and the union of per-batch HVGs.

    In every batch with >= ``MIN_CELLS_FOR_HVG`` cells, genes seen in < ``min_cells`` of its cells are left
    out of that batch's HVG choice. The values themselves are normalised per cell over all genes (not
    zeroed where a batch filtered a gene), so a tiny batch keeps its expression.
    """
    logx = _log_normalize(X) if is_counts else X.astype(np.float32)
    hvg_union = set()
    for b in range(n_levels):
        rows = np.flatnonzero(batch == b)
        keep = np.asarray((X[rows] > 0).sum(0)).ravel() >= min_cells
        if rows.size >= MIN_CELLS_FOR_HVG and keep.any():
            hvg_union.update(_hvgs(logx[rows][:, keep], genes[keep], n_top))
    return logx, hvg_union


def prepare_inputs(data, *, n_top_genes: int = 1000, min_cells: int = 3,
                   likelihood: str = "auto") -> DeepBIDInputs:
    """Turn a :class:`~scintegrate.data.CellData` into :class:`DeepBIDInputs` (module docstring: the recipe)."""
    X = data.csr(np.float32)
    is_counts = data.is_counts
    likelihood = resolve_likelihood(X, likelihood, is_counts)
    levels, batch = list(data.batch_levels), data.batch
    genes = np.asarray(data.genes)
    logx, hvg = _log_matrix_and_batch_hvgs(X, batch, len(levels), genes, min_cells, n_top_genes, is_counts)
    if not hvg:  # every batch too small for its own HVGs: choose them on the pooled cells
        expressed = np.asarray((X > 0).sum(0)).ravel() >= min_cells
        if expressed.any() and X.shape[0] >= 3:
            hvg = set(_hvgs(logx[:, expressed], genes[expressed], n_top_genes))
    if not hvg:
        raise ValueError(f"no gene is expressed in >= {min_cells} cells; nothing to train on "
                         "(lower min_cells or check the input)")
    cols = np.flatnonzero(np.isin(genes, list(hvg)))
    logx_sel = sp.csr_matrix(logx[:, cols])
    mean, std = column_mean_std(logx_sel)
    std = np.where(std > 1e-8, std, 1.0)
    counts, size_factors = None, np.ones(X.shape[0], dtype=np.float32)
    if likelihood == "nb":
        counts = sp.csr_matrix(X[:, cols], dtype=np.float32)
        totals = np.asarray(X.sum(1)).ravel()
        size_factors = (totals / max(np.median(totals), 1e-12)).astype(np.float32)
    return DeepBIDInputs(logx=logx_sel, counts=counts, size_factors=size_factors, batch=batch, batch_levels=levels,
                         genes=genes[cols].tolist(), gene_mean=mean.astype(np.float32),
                         gene_std=std.astype(np.float32), likelihood=likelihood)


def transform_new(X, var_names, genes: List[str], likelihood: str, normalize: bool) -> sp.csr_matrix:
    """Log values of the training genes for new cells (``X`` cells x ``var_names``; sparse out; standardise
    blocks with :func:`standardize`). ``normalize``: whether training normalised the values as counts
    (1e4 + log1p; the input kind was counts, integer or not)."""
    names = pd.Index([str(g) for g in var_names])
    missing = [g for g in genes if g not in set(names)]
    if missing:
        raise ValueError(f"{len(missing)} of the model's genes are missing from the data (e.g. {missing[:3]})")
    X = sp.csr_matrix(X, dtype=np.float32)
    if likelihood == "nb" and not is_integer_matrix(X):
        raise ValueError("this model was trained on counts; pass raw counts (layer=...) for new cells")
    if normalize:
        X = _log_normalize(X)
    return sp.csr_matrix(X[:, names.get_indexer(genes)], dtype=np.float32)
