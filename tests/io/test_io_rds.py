"""read_rds: SingleCellExperiment and Seurat objects written by R; errors without the R extra."""

import subprocess
import sys

import numpy as np
import pytest

from scintegrate.io import read_rds
from scintegrate.io._r import r_unavailable_reason

REASON = r_unavailable_reason(["SingleCellExperiment", "Seurat"])
skip_without_r = pytest.mark.skipif(bool(REASON), reason=REASON or "-")

R_WRITE = r"""
suppressPackageStartupMessages({library(SingleCellExperiment); library(Seurat)})
m <- matrix(c(0, 1, 2, 3, 4, 0, 1, 5, 2, 0, 0, 7), nrow = 3,
            dimnames = list(c("g1", "g2", "g3"), c("c1", "c2", "c3", "c4")))
sce <- SingleCellExperiment(assays = list(counts = as(m, "CsparseMatrix"), logcounts = log1p(m)),
                            colData = DataFrame(batch = c("a", "a", "b", "b")))
reducedDim(sce, "PCA") <- matrix(1:8 / 8, nrow = 4)
saveRDS(sce, file.path(OUT, "sce.rds"))
so <- CreateSeuratObject(counts = as(m, "CsparseMatrix"),
                         meta.data = data.frame(batch = c("a", "a", "b", "b"), row.names = colnames(m)))
saveRDS(so, file.path(OUT, "seurat.rds"))
saveRDS(list(a = 1), file.path(OUT, "list.rds"))
"""
COUNTS = np.array([[0, 1, 2], [3, 4, 0], [1, 5, 2], [0, 0, 7]], dtype=float)  # cells x genes


@pytest.fixture(scope="module")
def rds_dir(tmp_path_factory):
    import rpy2.robjects as ro

    out = tmp_path_factory.mktemp("rds")
    ro.r(f'local({{OUT <- "{out}"' + R_WRITE + "})")  # the embedded R read_rds uses, packages loaded once
    return out


@pytest.mark.r
@pytest.mark.slow
@skip_without_r
@pytest.mark.parametrize("name", ["sce", "seurat"])
def test_reads_sce_and_seurat(rds_dir, name):
    adata = read_rds(rds_dir / f"{name}.rds")
    assert adata.shape == (4, 3)
    assert list(adata.obs_names) == ["c1", "c2", "c3", "c4"] and list(adata.var_names) == ["g1", "g2", "g3"]
    X = adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)
    np.testing.assert_array_equal(X, COUNTS)
    assert list(adata.obs["batch"]) == ["a", "a", "b", "b"]
    if name == "sce":
        np.testing.assert_allclose(adata.obsm["X_pca"], np.arange(1, 9).reshape(2, 4).T / 8)
        np.testing.assert_allclose(np.asarray(adata.layers["logcounts"]), np.log1p(COUNTS))
    assert adata.uns["source"]["r_class"] in ("SingleCellExperiment", "Seurat")


@pytest.mark.r
@skip_without_r
def test_rejects_other_objects_and_missing_files(rds_dir, tmp_path):
    with pytest.raises(TypeError, match=r"class \['list'\]; read_rds supports"):
        read_rds(rds_dir / "list.rds")
    with pytest.raises(FileNotFoundError, match="no such .rds file"):
        read_rds(tmp_path / "missing.rds")


def test_clear_import_error_without_rpy2(tmp_path):
    path = tmp_path / "x.rds"
    path.write_bytes(b"")
    code = ("import sys; sys.modules['rpy2'] = None; sys.modules['rpy2.robjects'] = None\n"
            "from scintegrate.io import read_rds\n"
            f"try:\n    read_rds({str(path)!r})\nexcept ImportError as e:\n    print('IMPORTERROR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "IMPORTERROR" in out and "pip install 'scintegrate[r]'" in out
