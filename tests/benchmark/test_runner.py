"""run_benchmark: the three report files, rows per method, peers skipped gracefully, early errors."""

import warnings

import pandas as pd
import pytest
from matplotlib.image import imread

import dataclasses

from scintegrate import registry
from scintegrate.benchmark import METRIC_COLUMNS, run_benchmark
from scintegrate.benchmark.peers import available_peers

#: everything but BERMUDA's divergence / entropy, which need a 2-D UMAP (slow to compile in tests)
NO_UMAP = [m for m in METRIC_COLUMNS if m not in ("divergence_score", "entropy_score")]


@pytest.mark.slow  # includes two seeded UMAPs (numba compilation on first use)
def test_run_benchmark_pca_writes_three_files(adata, tmp_path):
    df = run_benchmark(adata, methods=["pca"], peers=None, out_dir=tmp_path / "out", progress=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metrics.csv", "overview.png", "umap.png"]
    # "pca" is the unintegrated baseline itself: no separate "unintegrated" row, and it is the PCR reference
    assert list(df.index) == ["pca"] and df.index.name == "method"
    assert list(df.columns) == ["kind", "embedding", "seconds"] + METRIC_COLUMNS
    assert df.loc["pca", "kind"] == "baseline" and df.loc["pca", "embedding"] == "X_pca_baseline"
    assert df.loc["pca", "pcr_comparison"] == pytest.approx(0.0, abs=1e-6)  # nothing removed vs itself
    on_disk = pd.read_csv(tmp_path / "out" / "metrics.csv", index_col="method")
    pd.testing.assert_frame_equal(on_disk[METRIC_COLUMNS], df[METRIC_COLUMNS], check_dtype=False, atol=1e-9)
    for name in ("overview.png", "umap.png"):
        img = imread(str(tmp_path / "out" / name))
        assert img.shape[0] > 200 and img[..., :3].std() > 0.05
    assert "X_pca_baseline" in adata.obsm and "X_pca" in adata.obsm


def test_missing_peer_is_skipped_with_warning(adata, tmp_path):
    original = registry.get_spec("harmonypy")
    registry.register(dataclasses.replace(original, requires=("no_such_module_xyz",)), replace=True)
    try:
        _run_without_harmony(adata, tmp_path)
    finally:
        registry.register(original, replace=True)


def _run_without_harmony(adata, tmp_path):
    with pytest.warns(UserWarning, match="peer 'harmonypy' skipped: its package is not installed"):
        df = run_benchmark(adata, methods=["pca"], peers=["harmonypy"], out_dir=tmp_path, progress=False,
                           umap=False, metrics=NO_UMAP)
    assert "harmonypy" not in df.index and "pca" in df.index
    assert (tmp_path / "metrics.csv").exists() and not (tmp_path / "umap.png").exists()


def test_installed_peer_gets_a_row(adata, tmp_path):
    if "combat" not in available_peers():
        pytest.skip("scanpy ComBat not available")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = run_benchmark(adata, methods=[], peers=["combat"], out_dir=tmp_path, progress=False, umap=False,
                           metrics=NO_UMAP)
    assert list(df.index) == ["unintegrated", "combat"]
    assert df.loc["combat", "kind"] == "peer" and df.loc["combat", "embedding"] == "X_combat"
    assert df.loc["combat", "batch_score"] > df.loc["unintegrated", "batch_score"]


def test_errors_before_any_training(adata, tmp_path):
    with pytest.raises(KeyError, match="label column 'celltype' not found"):
        run_benchmark(adata, label_key="celltype", methods=["pca"], out_dir=tmp_path, progress=False)
    assert "X_pca_baseline" not in adata.obsm and not any(tmp_path.iterdir())
    with pytest.raises(ValueError, match="unknown method\\(s\\) \\['seurat'\\]"):
        run_benchmark(adata, methods=["seurat"], out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="unknown peer method\\(s\\) \\['liger'\\]"):
        run_benchmark(adata, methods=["pca"], peers=["liger"], out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="nothing to benchmark"):
        run_benchmark(adata, methods=[], peers=None, out_dir=tmp_path, progress=False)
