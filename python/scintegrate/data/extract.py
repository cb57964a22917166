"""AnnData -> :class:`CellData`, and the input checks shared by every method (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._validation import check_adata, check_batches, get_matrix, is_count_matrix


@dataclass
class CellData:
    """The arrays a model trains on, cells in rows. ``X`` is the matrix as stored (CSR/CSC or dense, never
    densified or copied here); ``batch`` holds integer codes into ``batch_levels`` (``None`` without a batch)."""

    X: object
    is_counts: bool
    batch: Optional[np.ndarray]
    batch_levels: List[str]
    genes: pd.Index
    cells: pd.Index

    @property
    def n_cells(self) -> int:
        return self.X.shape[0]

    @property
    def n_batches(self) -> int:
        return len(self.batch_levels)

    def csr(self, dtype=np.float32) -> sp.csr_matrix:
        """``X`` as a CSR matrix of ``dtype`` (shares memory when it already is one)."""
        return sp.csr_matrix(self.X, dtype=dtype)

    def library_size(self) -> np.ndarray:
        """Total of each cell's values (float64)."""
        return np.asarray(self.X.sum(axis=1), dtype=np.float64).ravel()

    def to_anndata(self, batch_key: str = "batch"):
        """A private AnnData for the ``pp`` chains: ``X`` as float32 (sparse stays sparse; a new matrix,
        so the chains may change it in place), the batch column as strings, bare ``var``."""
        import anndata as ad

        X = sp.csr_matrix(self.X, dtype=np.float32, copy=True) if sp.issparse(self.X) else np.array(
            self.X, dtype=np.float32)
        obs = pd.DataFrame(index=self.cells.copy())
        if self.batch is not None:
            obs[batch_key] = np.asarray(self.batch_levels, dtype=object)[self.batch].astype(str)
        return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=self.genes.copy()))

    def columns(self, genes) -> np.ndarray:
        """Column indices of ``genes``; a ``KeyError`` names missing ones."""
        cols = self.genes.get_indexer(pd.Index([str(g) for g in genes]))
        if np.any(cols < 0):
            missing = [str(g) for g, c in zip(genes, cols) if c < 0]
            raise KeyError(f"{len(missing)} genes are missing from the data, e.g. {missing[:3]}")
        return cols


def check_input(adata, batch_key: Optional[str], *, layer: Optional[str] = None, spec=None,
                min_batches: int = 2) -> None:
    """The checks every method runs once on its input (raises before anything is changed).

    With a registry ``spec``: negative values only where the method allows them, integer counts where it
    needs counts.
    """
    allow_negative = bool(spec.allow_negative) if spec is not None else False
    counts = bool(spec.needs_counts) if spec is not None else False
    check_adata(adata, batch_key, layer=layer, min_batches=min_batches if batch_key is not None else 1,
                counts=counts, allow_negative=allow_negative)


def extract(adata, batch_key: Optional[str] = "batch", *, layer: Optional[str] = None) -> CellData:
    """The :class:`CellData` of ``adata`` (``.X`` or ``layers[layer]``; batch codes from ``obs[batch_key]``)."""
    X = get_matrix(adata, layer)
    if batch_key is None:
        batch, levels = None, []
    else:
        levels = check_batches(adata.obs[batch_key], min_batches=1, key=batch_key)
        batch = pd.Categorical(adata.obs[batch_key].astype(str), categories=levels).codes.astype(np.int64)
    return CellData(X=X, is_counts=is_count_matrix(X), batch=batch, batch_levels=levels,
                    genes=pd.Index(adata.var_names.astype(str)), cells=pd.Index(adata.obs_names.astype(str)))
