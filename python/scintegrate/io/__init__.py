"""R interoperability: read ``.rds`` files, run Seurat for reference results.

Everything here needs the optional extra ``pip install 'scintegrate[r]'`` (rpy2, anndata2ri) and
R; rpy2 is imported only when a function is called, with an ImportError naming the extra.

>>> from scintegrate.io import read_rds  # doctest: +SKIP
"""

from .rds import read_rds
from .seurat_reference import compare_with_seurat, seurat_reference

__all__ = ["read_rds", "seurat_reference", "compare_with_seurat"]
