"""Read a ``.rds`` file holding a SingleCellExperiment or a Seurat object into AnnData.

Uses rpy2 + anndata2ri (``pip install 'scintegrate[r]'``) and R with SingleCellExperiment (and
Seurat for Seurat objects, converted with ``Seurat::as.SingleCellExperiment``). The first assay
(``counts`` in both classes) becomes ``X``, the other assays layers (``logcounts``, ...),
``colData``/meta data ``obs``, reduced dimensions ``obsm`` (``X_pca``, ...).

Example
-------
>>> from scintegrate.io import read_rds  # doctest: +SKIP
>>> adata = read_rds("pancreas_sce.rds")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

from ._r import EXTRA_HINT, require_r, require_r_package

SUPPORTED = ("SingleCellExperiment", "Seurat")


def _anndata2ri():
    try:
        import anndata2ri
    except Exception as err:
        raise ImportError(f"read_rds needs anndata2ri ({err}); {EXTRA_HINT}") from err
    return anndata2ri


def read_rds(path: Union[str, Path]):
    """AnnData from a ``.rds`` SingleCellExperiment or Seurat object (cells in rows)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such .rds file: {path}")
    ro = require_r()
    anndata2ri = _anndata2ri()
    require_r_package("SingleCellExperiment")
    obj = ro.r["readRDS"](str(path))
    classes = list(ro.r["class"](obj))
    is_a = ro.r("function(x, cl) methods::is(x, cl)")
    if bool(is_a(obj, "Seurat")[0]):
        require_r_package("Seurat")
        obj = ro.r("function(x) Seurat::as.SingleCellExperiment(x)")(obj)
    elif not bool(is_a(obj, "SingleCellExperiment")[0]):
        raise TypeError(f"{path.name} holds an R object of class {classes}; read_rds supports {list(SUPPORTED)}")
    from rpy2.robjects.conversion import localconverter

    with localconverter(anndata2ri.converter):
        adata = ro.conversion.get_conversion().rpy2py(obj)
    adata.uns["source"] = {"file": str(path), "r_class": classes[0]}
    return adata
