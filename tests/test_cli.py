"""The console script: integrate / metrics / benchmark / demo, and one-line errors that write nothing."""

import subprocess
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from scintegrate import datasets, registry
from scintegrate.cli import _parse_params, main


@pytest.fixture
def small_h5ad(tmp_path):
    adata = datasets.simulate_counts(n_cells=300, n_genes=300, seed=1)
    path = tmp_path / "small.h5ad"
    adata.write_h5ad(path)
    return path


def test_parse_params():
    assert _parse_params(["n_epochs=5", "s_thr=0.85", "name=abc", "flag=True"]) == {
        "n_epochs": 5, "s_thr": 0.85, "name": "abc", "flag": True}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        _parse_params(["oops"])


def test_integrate_writes_output(small_h5ad, tmp_path):
    spec = registry.specs("baseline")[0]
    out = tmp_path / "out.h5ad"
    assert main(["integrate", str(small_h5ad), "--method", spec.name, "--out", str(out), "--quiet"]) == 0
    res = ad.read_h5ad(out)
    assert res.obsm[spec.obsm_key].shape[0] == 300
    assert res.uns["scintegrate"][spec.obsm_key]["method"] == spec.name


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method", "nope"], "unknown method 'nope'"),
        (["--batch-key", "donor"], "batch column 'donor' not found"),
    ],
)
def test_integrate_errors_write_nothing(small_h5ad, tmp_path, capsys, args, message):
    out = tmp_path / "never.h5ad"
    assert main(["integrate", str(small_h5ad), "--out", str(out), "--quiet", *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_not_h5ad_and_single_batch(tmp_path, capsys):
    bad = tmp_path / "table.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["integrate", str(bad), "--method", "pca", "--out", str(tmp_path / "x.h5ad")]) == 2
    assert "error" in capsys.readouterr().err
    one = ad.AnnData(np.ones((10, 5), dtype=np.float32),
                     obs=pd.DataFrame({"batch": ["only"] * 10}, index=[f"c{i}" for i in range(10)]))
    one.write_h5ad(tmp_path / "one.h5ad")
    assert main(["integrate", str(tmp_path / "one.h5ad"), "--method", "pca", "--out", str(tmp_path / "o.h5ad")]) == 2
    assert "at least 2 batches" in capsys.readouterr().err
    assert not (tmp_path / "o.h5ad").exists()


def test_metrics_command(small_h5ad, tmp_path):
    out = tmp_path / "int.h5ad"
    main(["integrate", str(small_h5ad), "--method", "pca", "--out", str(out), "--quiet"])
    csv = tmp_path / "m.csv"
    assert main(["metrics", str(out), "--embedding", "X_pca_baseline", "--out", str(csv), "--quiet"]) == 0
    table = pd.read_csv(csv)
    for column in ["divergence_score", "ilisi", "clisi", "asw_label", "overall"]:
        assert column in table.columns
    assert 0 <= table["overall"].iloc[0] <= 1


def test_benchmark_command(small_h5ad, tmp_path):
    out = tmp_path / "bench"
    assert main(["benchmark", str(small_h5ad), "--methods", "pca", "--out", str(out), "--quiet"]) == 0
    for name in ["metrics.csv", "overview.png", "umap.png"]:
        assert (out / name).stat().st_size > 0


def test_console_script_help():
    res = subprocess.run([sys.executable, "-m", "scintegrate.cli", "--help"], capture_output=True, text=True)
    assert res.returncode == 0
    for command in ["integrate", "demo", "benchmark", "metrics"]:
        assert command in res.stdout


@pytest.mark.slow
def test_demo_runs_every_method(demo_run):
    out, rows = demo_run
    res = ad.read_h5ad(out / "integrated.h5ad")
    methods = registry.method_names(installed=True)
    for method in methods:
        assert registry.get_spec(method).obsm_key in res.obsm
    assert set(methods) <= set(rows.index)
    assert (out / "umap.png").stat().st_size > 10_000
    # what the demo shows a new user: each method mixes the batches better than the uncorrected baseline
    baseline = [m for m in rows.index if rows.loc[m, "kind"] == "baseline"]
    assert len(baseline) == 1
    for method in rows.index.drop(baseline):
        assert rows.loc[method, "batch_score"] > rows.loc[baseline[0], "batch_score"], rows.loc[method]


# ---------------------------------------------------------------- safe output, checks before any data is read
@pytest.mark.parametrize("extra, message", [
    (["--key-added", "emb/pca"], "contains '/'"),
    (["--param", "n_epochs=3"], "unknown parameter(s) ['n_epochs'] for method"),
    (["--param", "n_comps=abc"], "parameter n_comps of method 'pca' must be an integer, got 'abc'"),
    (["--seed", "-1"], "seed must be a whole number"),
    (["--device", "gpu"], "unknown device 'gpu'"),
])
def test_bad_options_fail_in_one_line_before_the_data_is_read(tmp_path, capsys, monkeypatch, extra, message):
    import scintegrate.datasets as ds

    def no_read(path):  # the checks must come first: reading the input is not reached
        raise AssertionError("the input was read before the options were checked")
    monkeypatch.setattr(ds, "read_h5ad", no_read)
    out = tmp_path / "o.h5ad"
    assert main(["integrate", str(tmp_path / "in.h5ad"), "--method", "pca", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_output_paths_are_checked_and_the_input_is_never_lost(small_h5ad, tmp_path, capsys):
    before = small_h5ad.read_bytes()
    assert main(["integrate", str(small_h5ad), "--method", "pca", "--out", str(small_h5ad)]) == 2
    assert "is the input file; pass --overwrite" in capsys.readouterr().err
    (tmp_path / "folder").mkdir()
    assert main(["integrate", str(small_h5ad), "--method", "pca", "--out", str(tmp_path / "folder")]) == 2
    assert "is a folder" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["integrate", str(small_h5ad), "--method", "pca", "--out", str(tmp_path / "file" / "o.h5ad")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert small_h5ad.read_bytes() == before
    assert main(["integrate", str(small_h5ad), "--method", "pca", "--out", str(small_h5ad), "--overwrite",
                 "--quiet"]) == 0
    assert "X_pca_baseline" in ad.read_h5ad(small_h5ad).obsm


def test_a_failed_write_leaves_no_file_and_the_input_intact(small_h5ad, tmp_path, monkeypatch, capsys):
    before = small_h5ad.read_bytes()
    real_write = ad.AnnData.write_h5ad

    def broken(self, path, *args, **kwargs):  # writes half a file, then the disk "fills up"
        real_write(self, path, *args, **kwargs)
        with open(path, "r+b") as fh:
            fh.truncate(100)
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(ad.AnnData, "write_h5ad", broken)
    out = tmp_path / "o.h5ad"
    assert main(["integrate", str(small_h5ad), "--method", "pca", "--out", str(out), "--quiet"]) == 2
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert main(["integrate", str(small_h5ad), "--method", "pca", "--out", str(small_h5ad), "--overwrite",
                 "--quiet"]) == 2
    assert small_h5ad.read_bytes() == before
    assert "No space left on device" in capsys.readouterr().err


def test_debug_shows_the_traceback(small_h5ad, tmp_path):
    with pytest.raises(ValueError, match="seed must be"):
        main(["integrate", str(small_h5ad), "--method", "pca", "--out", str(tmp_path / "o.h5ad"), "--seed", "-2",
              "--debug"])
