"""``scintegrate metrics`` on an embedding that comes without usable expression (made in R or by another tool).

The reference of ``pcr_comparison`` is then ``--unintegrated OBSM_KEY``; without it only the metrics
that need a reference are skipped, with one warning line.
"""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scintegrate import datasets
from scintegrate.benchmark import METRIC_COLUMNS, score_embedding
from scintegrate.benchmark._prep import unintegrated_pca
from scintegrate.cli import main
from scintegrate.metrics import pcr_comparison

NO_UMAP = [m for m in METRIC_COLUMNS if m not in ("divergence_score", "entropy_score")]


def _embedded(n_genes=1, zeros=False):
    """300 cells with a structured 10-d embedding in obsm["X_r"], its PCA reference in obsm["X_ref"], and
    only ``n_genes`` genes (or all-zero values) left in .X."""
    full = datasets.simulate_counts(n_cells=300, n_genes=200, seed=0)
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(full.n_obs, 10)).astype(np.float32)
    emb[np.arange(full.n_obs), full.obs["cell_type"].cat.codes.to_numpy()] += 4.0
    adata = full[:, :n_genes].copy()
    if zeros:
        adata.X = sp.csr_matrix(adata.shape, dtype=np.float32)
    adata.obsm["X_r"] = emb
    adata.obsm["X_ref"] = unintegrated_pca(full, batch_key="batch")
    return adata


@pytest.fixture
def one_gene_h5ad(tmp_path):
    path = tmp_path / "from_r.h5ad"
    _embedded(n_genes=1).write_h5ad(path)
    return path


def test_metrics_cli_scores_pcr_comparison_with_the_given_reference(one_gene_h5ad, tmp_path, capsys):
    csv = tmp_path / "m.csv"
    assert main(["metrics", str(one_gene_h5ad), "--embedding", "X_r", "--unintegrated", "X_ref",
                 "--out", str(csv), "--quiet"]) == 0
    assert "no unintegrated reference" not in capsys.readouterr().err
    row = pd.read_csv(csv).iloc[0]
    adata = ad.read_h5ad(one_gene_h5ad)
    expected = pcr_comparison(adata.obsm["X_ref"], adata.obsm["X_r"], adata.obs["batch"].to_numpy(), seed=0)
    assert np.isfinite(row["pcr_comparison"]) and row["pcr_comparison"] == pytest.approx(expected, abs=1e-6)
    assert 0 <= row["overall"] <= 1


def test_metrics_cli_without_reference_warns_once_and_scores_the_rest(one_gene_h5ad, tmp_path, capsys):
    csv = tmp_path / "m.csv"
    assert main(["metrics", str(one_gene_h5ad), "--embedding", "X_r", "--out", str(csv), "--quiet"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "no unintegrated reference" in line]
    assert len(lines) == 1
    assert "skipped ['pcr_comparison']" in lines[0] and "--unintegrated" in lines[0]
    row = pd.read_csv(csv).iloc[0]
    assert np.isnan(row["pcr_comparison"])
    others = [m for m in NO_UMAP if m != "pcr_comparison"]
    assert row[others].notna().all(), row[others]
    assert row["knn_accuracy"] > 0.9  # the embedding itself was scored, not a stand-in


def test_metrics_cli_unknown_reference_key_is_one_line(one_gene_h5ad, tmp_path, capsys):
    csv = tmp_path / "m.csv"
    assert main(["metrics", str(one_gene_h5ad), "--embedding", "X_r", "--unintegrated", "X_pca_seurat",
                 "--out", str(csv)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--unintegrated 'X_pca_seurat' not found in adata.obsm" in err and "['X_r', 'X_ref']" in err
    assert not csv.exists()


@pytest.mark.parametrize("n_genes, zeros", [(0, False), (2, False), (200, True)], ids=["0 genes", "2 genes", "zeros"])
def test_score_embedding_without_usable_X(n_genes, zeros):
    adata = _embedded(n_genes=n_genes, zeros=zeros)
    with pytest.warns(UserWarning, match=r"no unintegrated reference.*skipped \['pcr_comparison'\]"):
        df = score_embedding(adata, "X_r", metrics=NO_UMAP)
    assert np.isnan(df.loc["X_r", "pcr_comparison"]) and "X_pca" not in adata.obsm
    assert df[[m for m in NO_UMAP if m != "pcr_comparison"]].notna().all().all()
    with_ref = score_embedding(adata, "X_r", unintegrated="X_ref", metrics=NO_UMAP)
    assert np.isfinite(with_ref.loc["X_r", "pcr_comparison"])
    # the reference enters batch_score only; every other metric is the same number
    same = [m for m in NO_UMAP if m not in ("pcr_comparison", "batch_score", "overall")]
    pd.testing.assert_frame_equal(df[same], with_ref[same])


def test_no_warning_when_the_reference_is_not_needed():
    import warnings

    adata = _embedded(n_genes=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        df = score_embedding(adata, "X_r", metrics=["knn_accuracy", "asw_label"])
    assert df.loc["X_r", "knn_accuracy"] > 0.9
