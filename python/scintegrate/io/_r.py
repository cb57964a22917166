"""Small rpy2 helpers: import R lazily with a clear error, move sparse matrices and vectors across.

Needs the optional extra ``pip install 'scintegrate[r]'`` (rpy2, anndata2ri) and an R installation.
rpy2 3.6 needs R >= 4.4; with an older R install ``rpy2<3.6``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

EXTRA_HINT = "install the R extra: pip install 'scintegrate[r]' (rpy2, anndata2ri) and R itself"


def require_r():
    """``rpy2.robjects``, or an ImportError that names the ``scintegrate[r]`` extra."""
    try:
        import rpy2.robjects as ro
    except Exception as err:  # ImportError, or rpy2 failing to load libR
        raise ImportError(f"this function needs rpy2 and a working R ({err}); {EXTRA_HINT}") from err
    return ro


def require_r_package(name: str):
    """Load an R package through rpy2, with an error naming it when it is not installed."""
    ro = require_r()
    from rpy2.robjects.packages import importr, isinstalled

    if not isinstalled(name):
        raise ImportError(f"the R package {name!r} is not installed; in R: install.packages({name!r}) "
                          "(or BiocManager::install)")
    return importr(name), ro


def numpy_converter():
    """rpy2 converter for numpy arrays <-> R vectors/matrices."""
    import rpy2.robjects as ro
    from rpy2.robjects import numpy2ri

    return ro.default_converter + numpy2ri.converter


def to_dgcmatrix(X, row_names, col_names):
    """An R ``dgCMatrix`` of ``X.T``: cells x genes in Python -> genes x cells in R (Seurat's layout)."""
    ro = require_r()
    from rpy2.robjects.conversion import localconverter

    X = sp.csr_matrix(X)  # CSR of cells x genes == CSC of genes x cells
    X.sort_indices()
    make = ro.r("function(i, p, x, nr, nc, rn, cn) Matrix::sparseMatrix(i = as.vector(i), p = as.vector(p), "
                "x = as.vector(x), dims = c(nr, nc), dimnames = list(as.vector(rn), as.vector(cn)), "
                "index1 = FALSE)")
    with localconverter(numpy_converter()):
        return make(X.indices.astype(np.int32), X.indptr.astype(np.int32), X.data.astype(np.float64),
                    int(X.shape[1]), int(X.shape[0]), np.asarray(row_names, dtype=str),
                    np.asarray(col_names, dtype=str))


def from_dgcmatrix(M) -> sp.csr_matrix:
    """An R ``dgCMatrix`` (genes x cells) -> scipy CSR of cells x genes."""
    ro = require_r()
    from rpy2.robjects.conversion import localconverter

    M = ro.r("function(m) methods::as(m, 'CsparseMatrix')")(M)
    with localconverter(numpy_converter()):
        i = np.asarray(ro.r("function(m) m@i")(M), dtype=np.int64)
        p = np.asarray(ro.r("function(m) m@p")(M), dtype=np.int64)
        x = np.asarray(ro.r("function(m) as.numeric(m@x)")(M), dtype=np.float64)
        dims = np.asarray(ro.r("dim")(M), dtype=np.int64)
    return sp.csc_matrix((x, i, p), shape=(int(dims[0]), int(dims[1]))).T.tocsr()


def to_py(obj):
    """Convert an R vector/matrix/list (recursively, names kept for lists) to numpy/python."""
    ro = require_r()
    from rpy2.robjects.conversion import localconverter
    from rpy2.rinterface import ListSexpVector

    if isinstance(obj, ListSexpVector) or isinstance(obj, ro.vectors.ListVector):
        names = list(ro.r("names")(obj) or [])
        values = [to_py(v) for v in obj]
        return dict(zip(names, values)) if names else values
    with localconverter(numpy_converter()):
        return ro.conversion.get_conversion().rpy2py(obj)


def r_unavailable_reason(packages=()) -> str:
    """Empty string when rpy2, R and the R ``packages`` load; otherwise why not (for test skips)."""
    try:
        require_r()
        from rpy2.robjects.packages import isinstalled

        missing = [p for p in packages if not isinstalled(p)]
    except Exception as err:  # ImportError, or libR failing to load
        return f"rpy2/R not usable: {err}"
    return f"R packages not installed: {missing}" if missing else ""


def r_safe_counts(adata):
    """``(genes, cells, counts)``: R-safe gene names whose sort order is that of the real names (ties in
    SelectIntegrationFeatures are broken by name), cell names ``C0, C1, ...`` and ``adata.X`` as a dgCMatrix."""
    import numpy as np

    alpha_rank = np.empty(adata.n_vars, dtype=np.int64)
    alpha_rank[np.argsort(np.asarray(adata.var_names, dtype=str), kind="stable")] = np.arange(adata.n_vars)
    genes = np.array([f"G{r:09d}" for r in alpha_rank])
    cells = np.array([f"C{i}" for i in range(adata.n_obs)])
    return genes, cells, to_dgcmatrix(adata.X, genes, cells)


def call_r_pipeline(source: str, call: str, objects: dict) -> dict:
    """Evaluate ``call`` (R code naming ``pipeline`` and the ``objects``) with the R function ``source`` bound to
    ``pipeline``; returns the named elements of its list. Seurat logs each command by deparsing its call, so large
    objects are passed by name, not by value."""
    ro = require_r()
    env = ro.r("new.env()")
    for name, value in objects.items():
        env[name] = value
    env["pipeline"] = ro.r(source)
    res = ro.r("function(code, env) eval(parse(text = code), envir = env)")(call, env)
    return {name: res.rx2(name) for name in res.names}
