"""scib-metrics' Benchmarker as a scorer: the same numbers as calling it yourself, and a clear error without it."""

import sys

import numpy as np
import pandas as pd
import pytest

from scintegrate.benchmark import METRIC_COLUMNS, run_benchmark
from scintegrate.benchmark.scib_scorer import SCIB_AGGREGATES, scib_benchmark
from scintegrate.cli import main

NO_UMAP = [m for m in METRIC_COLUMNS if m not in ("divergence_score", "entropy_score")]


def _direct(adata, keys, pre):
    """scib-metrics' Benchmarker called the way its docs show, on the caller's AnnData."""
    from scib_metrics.benchmark import BatchCorrection, Benchmarker, BioConservation

    bench = Benchmarker(adata, batch_key="batch", label_key="cell_type", embedding_obsm_keys=keys,
                        pre_integrated_embedding_obsm_key=pre, bio_conservation_metrics=BioConservation(),
                        batch_correction_metrics=BatchCorrection(), n_jobs=1, progress_bar=False)
    bench.benchmark()
    return bench.get_results(min_max_scale=False).drop(index="Metric Type").astype(float)


@pytest.mark.slow  # scib-metrics' jax / pynndescent compilation: about a minute on 2 cores
def test_scorer_both_matches_benchmarker_called_directly(adata, structured, tmp_path):
    pytest.importorskip("scib_metrics")
    adata.obsm["X_good"] = structured(adata, label_sep=6.0)
    df = run_benchmark(adata, methods=["pca"], out_dir=tmp_path, progress=False, umap=False, metrics=NO_UMAP,
                       scorer="both")
    # our table is unchanged by the second scorer; the scib one is written beside it and in df.attrs
    assert list(df.columns) == ["kind", "embedding", "seconds"] + METRIC_COLUMNS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.csv", "metrics_scib.csv", "overview.png"]
    scib = pd.read_csv(tmp_path / "metrics_scib.csv", index_col="method")
    from_attrs = pd.DataFrame.from_dict(df.attrs["scib_metrics"], orient="tight")
    pd.testing.assert_frame_equal(from_attrs, scib, check_dtype=False)
    assert list(scib.index) == list(df.index) == ["pca"]
    assert list(scib.columns[:4]) == ["kind", "embedding", "seconds", "scorer"]
    assert list(scib.columns[-3:]) == SCIB_AGGREGATES and "PCR comparison" in scib.columns
    assert scib.loc["pca", "scorer"].startswith("scib-metrics ")
    # the same numbers as Benchmarker on the same AnnData (its keys, its reference)
    direct = _direct(adata, ["X_pca_baseline", "X_good"], "X_pca")
    for column in direct.columns:
        assert scib.loc["pca", column] == pytest.approx(direct.loc["X_pca_baseline", column], abs=1e-6), column
    # two embeddings at once, named rows: still the direct numbers, row by row
    both = scib_benchmark(adata, embeddings={"pca": "X_pca_baseline", "good": "X_good"}, unintegrated="X_pca")
    np.testing.assert_allclose(both.loc[["pca", "good"], "Total"].to_numpy(float), direct["Total"].to_numpy(),
                               atol=1e-6)
    assert both.loc["good", "Bio conservation"] > both.loc["pca", "Bio conservation"]


@pytest.mark.slow
def test_metrics_cli_scib_scorer(adata, structured, tmp_path, capsys):
    pytest.importorskip("scib_metrics")
    adata.obsm["X_good"] = structured(adata, label_sep=6.0)
    adata.obsm["X_ref"] = np.random.default_rng(2).normal(size=(adata.n_obs, 20)).astype(np.float32)
    path = tmp_path / "in.h5ad"
    adata[:, :1].copy().write_h5ad(path)  # no usable .X: the reference must come from --unintegrated
    csv = tmp_path / "m.csv"
    assert main(["metrics", str(path), "--embedding", "X_good", "--unintegrated", "X_ref", "--scorer", "both",
                 "--out", str(csv), "--quiet"]) == 0
    ours, scib = pd.read_csv(csv), pd.read_csv(tmp_path / "m_scib.csv")
    assert "overall" in ours.columns and "Total" in scib.columns
    direct = _direct(adata, ["X_good"], "X_ref")
    assert scib["Total"].iloc[0] == pytest.approx(direct.loc["X_good", "Total"], abs=1e-6)


@pytest.fixture
def no_scib(monkeypatch):
    """As if scib-metrics were not installed: ``import scib_metrics`` raises ImportError."""
    monkeypatch.setitem(sys.modules, "scib_metrics", None)
    monkeypatch.setitem(sys.modules, "scib_metrics.benchmark", None)


@pytest.mark.parametrize("scorer", ["scib-metrics", "both"])
def test_missing_scib_metrics_fails_before_any_training(adata, tmp_path, no_scib, scorer):
    out = tmp_path / "bench"
    with pytest.raises(ImportError, match="pip install scib-metrics"):
        run_benchmark(adata, methods=["pca"], out_dir=out, progress=False, scorer=scorer)
    assert "X_pca_baseline" not in adata.obsm and not out.exists()


def test_missing_scib_metrics_cli_is_one_line(adata, tmp_path, no_scib, capsys):
    path = tmp_path / "in.h5ad"
    adata.write_h5ad(path)
    for argv in (["benchmark", str(path), "--methods", "pca", "--out", str(tmp_path / "bench")],
                 ["metrics", str(path), "--embedding", "X_any", "--out", str(tmp_path / "m.csv")]):
        assert main([*argv, "--scorer", "scib-metrics"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "pip install scib-metrics" in err, err
    assert not (tmp_path / "bench").exists() and not (tmp_path / "m.csv").exists()


def test_unknown_scorer(adata, tmp_path):
    with pytest.raises(ValueError, match=r"unknown scorer 'scib'; choose from \['scintegrate', 'scib-metrics', "):
        run_benchmark(adata, methods=["pca"], out_dir=tmp_path / "b", progress=False, scorer="scib")
    assert "X_pca_baseline" not in adata.obsm
