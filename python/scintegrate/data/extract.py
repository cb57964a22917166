"""AnnData -> :class:`CellData`, and the input checks shared by every method (see the package docstring)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._validation import batch_keys, check_adata, check_batches, get_embedding, get_matrix
from .kinds import input_kind


@dataclass
class CellData:
    """The arrays a model trains on, cells in rows. ``X`` is the matrix as stored (CSR/CSC or dense, never
    densified or copied here), or the dense embedding ``obsm[rep]`` (``kind == "embedding"``, ``genes`` then
    names its dimensions); ``batch`` holds integer codes into ``batch_levels`` (``None`` without a batch), of
    the first column when several are given; ``covariates`` maps every batch column to ``(codes, levels)``."""

    X: object
    kind: str
    batch: Optional[np.ndarray]
    batch_levels: List[str]
    genes: pd.Index
    cells: pd.Index
    covariates: Dict[str, Tuple[np.ndarray, List[str]]] = field(default_factory=dict)

    @property
    def is_counts(self) -> bool:
        """Whether the values are counts (integer or estimated) to be normalised."""
        return self.kind in ("counts", "noninteger_counts")

    @property
    def n_cells(self) -> int:
        return self.X.shape[0]

    @property
    def n_batches(self) -> int:
        return len(self.batch_levels)

    def csr(self, dtype=np.float32) -> sp.csr_matrix:
        """``X`` as a CSR matrix of ``dtype`` (shares memory when it already is one)."""
        return sp.csr_matrix(self.X, dtype=dtype)

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


def check_input(adata, batch_key, *, layer: Optional[str] = None, spec=None, min_batches: int = 2,
                rep: Optional[str] = None) -> None:
    """The checks every method runs once on its input (raises before anything is changed).

    With a registry ``spec``: negative values only where the method allows them, integer counts where it
    needs counts, several batch columns (``batch_key`` a list) only where it takes them (``multi_batch``),
    an embedding (``rep``, a key of ``adata.obsm``, checked instead of the matrix) only where its input
    includes ``"embedding"``.
    """
    allow_negative = bool(spec.allow_negative) if spec is not None else False
    counts = bool(spec.needs_counts) if spec is not None else False
    keys = batch_keys(batch_key)
    if keys is None and min_batches >= 2:
        raise ValueError("batch_key is None: name the adata.obs column that holds each cell's batch")
    if keys is not None and len(keys) > 1 and spec is not None and not spec.multi_batch:
        raise ValueError(f"method {spec.name!r} takes one batch column, got {len(keys)} ({keys}); pass one name, "
                         f"e.g. batch_key={keys[0]!r}")
    if rep is not None and spec is not None and "embedding" not in spec.input:
        raise ValueError(f"method {spec.name!r} does not take an embedding (use_rep={rep!r}); pass expression "
                         "values in adata.X or a layer")
    if rep is not None and layer is not None:
        raise ValueError(f"both an embedding (use_rep={rep!r}) and layer={layer!r} were given; pass one of them")
    hint = "this step needs raw counts"
    if counts:
        from .. import registry

        others = [s.name for s in registry.specs("method") if "log" in s.input]
        hint = (f"this step needs raw counts: method {spec.name!r} models counts (values are never rounded); for "
                f"log-normalised values use one of {others}")
    check_adata(adata, keys, layer=layer, min_batches=min_batches if keys is not None else 1,
                counts=counts, allow_negative=allow_negative, rep=rep, counts_hint=hint)
    for key in keys or []:
        _check_batch_sizes(adata, key, None if rep is not None else get_matrix(adata, layer), spec,
                           strict=min_batches >= 2)


def _check_batch_sizes(adata, batch_key: str, X, spec, strict: bool) -> None:
    """Batches without any counts are refused (``X=None``, an embedding, skips this); batches below the method's
    minimum are refused, those below its comfortable size are warned about (the spec declares both)."""
    batch = adata.obs[batch_key].astype(str).to_numpy()
    levels, codes = np.unique(batch, return_inverse=True)
    if X is not None:
        _check_counts(levels, codes, X)
    if spec is None:
        return
    sizes = np.bincount(codes, minlength=levels.size)
    small = [(str(b), int(n)) for b, n in zip(levels, sizes) if n < spec.min_batch_cells]
    if small and strict:
        raise ValueError(f"batch {small[0][0]!r} has {small[0][1]} cell(s); method {spec.name!r} needs at least "
                         f"{spec.min_batch_cells} per batch (merge or drop it)")
    few = [(str(b), int(n)) for b, n in zip(levels, sizes) if n < spec.small_batch_cells]
    if few and strict:
        warnings.warn(f"{len(few)} batch(es) hold fewer than {spec.small_batch_cells} cells (e.g. {few[0][0]!r}: "
                      f"{few[0][1]}), too few for {spec.name!r} to learn their structure well; "
                      "their cells are integrated all the same", UserWarning, stacklevel=4)


def _check_counts(levels, codes, X) -> None:
    if sp.issparse(X):  # never abs(X) / X.max(): scipy sorts the user's (maybe read-only) indices in place
        X = sp.csr_matrix(X)
        row_abs = np.asarray(sp.csr_matrix((np.abs(X.data), X.indices, X.indptr), shape=X.shape).sum(1)).ravel()
    else:
        row_abs = np.abs(np.asarray(X)).sum(1)
    totals = np.bincount(codes, weights=row_abs.astype(np.float64), minlength=levels.size)
    empty = [str(b) for b, t in zip(levels, totals) if t == 0]
    if empty:
        raise ValueError(f"batch {empty[0]!r} has no counts: every value of its cells is 0"
                         + (f" (and {len(empty) - 1} more batches)" if len(empty) > 1 else ""))


def extract(adata, batch_key="batch", *, layer: Optional[str] = None, input: str = "auto",
            rep: Optional[str] = None) -> CellData:
    """The :class:`CellData` of ``adata`` (``.X``, ``layers[layer]`` or the embedding ``obsm[rep]``; batch codes
    from ``obs[batch_key]``, one column or a list of them).

    ``input`` declares the kind of values (``"auto"``, ``"counts"``, ``"log"``; see
    :func:`scintegrate.data.kinds.input_kind`, which decides it from every stored value, batch by batch); an
    embedding is taken as it is (``input`` must be ``"auto"``).
    """
    covariates = {}
    for key in batch_keys(batch_key) or []:
        levels = check_batches(adata.obs[key], min_batches=1, key=key)
        covariates[key] = (pd.Categorical(adata.obs[key].astype(str), categories=levels).codes.astype(np.int64),
                           levels)
    batch, levels = next(iter(covariates.values())) if covariates else (None, [])
    cells = pd.Index(adata.obs_names.astype(str))
    if rep is not None:
        if input != "auto":
            raise ValueError(f"input={input!r} describes adata.X or a layer, not the embedding use_rep={rep!r}; "
                             "leave input='auto'")
        X = get_embedding(adata, rep)
        names = adata.obsm[rep].columns if isinstance(adata.obsm[rep], pd.DataFrame) else range(X.shape[1])
        return CellData(X=X, kind="embedding", batch=batch, batch_levels=levels,
                        genes=pd.Index([str(n) for n in names]), cells=cells, covariates=covariates)
    X = get_matrix(adata, layer)
    return CellData(X=X, kind=input_kind(X, batch, levels, input), batch=batch, batch_levels=levels,
                    genes=pd.Index(adata.var_names.astype(str)), cells=cells, covariates=covariates)
