"""Loaders: shared_data_dir, list_shared, load_shared, read_h5ad."""

from pathlib import Path

import anndata as ad
import numpy as np
import pytest

from scintegrate.datasets import list_shared, load_shared, read_h5ad, shared_data_dir


def test_every_shared_set_loads(shared_data, monkeypatch):
    monkeypatch.setenv("SCINTEGRATE_SHARED_DATA", str(shared_data))
    names = list_shared()
    assert names == sorted(p.stem for p in Path(shared_data).glob("*.h5ad")) and len(names) > 0
    for name in names:
        adata = load_shared(name)
        assert adata.n_obs > 0 and adata.n_vars > 0
        assert adata.obs["batch"].nunique() >= 2 and adata.obs["cell_type"].nunique() >= 2


def test_load_with_suffix_keeps_note(shared_data, monkeypatch):
    monkeypatch.setenv("SCINTEGRATE_SHARED_DATA", str(shared_data))
    if "dendritic_preprocessed" not in list_shared():
        pytest.skip("dendritic_preprocessed.h5ad not in the shared folder")
    a = load_shared("dendritic_preprocessed.h5ad")
    assert "not counts" in a.uns["note"]
    assert a.shape == load_shared("dendritic_preprocessed").shape


def test_unknown_name_lists_available(shared_data, monkeypatch):
    monkeypatch.setenv("SCINTEGRATE_SHARED_DATA", str(shared_data))
    with pytest.raises(FileNotFoundError, match=r"no shared data set 'nope' in .*; available: \["):
        load_shared("nope.h5ad")


def test_default_dir_found_from_source_checkout(shared_data, monkeypatch, tmp_path):
    monkeypatch.delenv("SCINTEGRATE_SHARED_DATA", raising=False)
    monkeypatch.chdir(tmp_path)  # ../shared/data does not exist from here
    if Path(shared_data).resolve() != (Path(__file__).resolve().parents[2].parent / "shared" / "data").resolve():
        pytest.skip("shared data is not beside this checkout")
    assert shared_data_dir() == Path(shared_data).resolve()


def test_dir_errors(monkeypatch, tmp_path):
    monkeypatch.setenv("SCINTEGRATE_SHARED_DATA", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="SCINTEGRATE_SHARED_DATA=.* is not a folder"):
        shared_data_dir()


def test_missing_columns_and_custom_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SCINTEGRATE_SHARED_DATA", str(tmp_path))
    ad.AnnData(np.ones((3, 2), dtype=np.float32)).write_h5ad(tmp_path / "nolabels.h5ad")
    assert list_shared() == ["nolabels"]
    with pytest.raises(KeyError, match=r"lacks obs columns \['batch', 'cell_type'\]"):
        load_shared("nolabels")


def test_read_h5ad_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_h5ad(tmp_path / "none.h5ad")
    csv = tmp_path / "data.h5ad"
    csv.write_text("cell,gene1\nc1,3\n")
    with pytest.raises(ValueError, match="is not an .h5ad file"):
        read_h5ad(csv)
    import h5py

    with h5py.File(tmp_path / "plain.h5", "w") as fh:
        fh["x"] = np.arange(3)
    with pytest.raises(ValueError, match="HDF5 file but not a readable AnnData"):
        read_h5ad(tmp_path / "plain.h5")


def test_read_h5ad_roundtrip(tmp_path):
    a = ad.AnnData(np.eye(3, dtype=np.float32))
    a.write_h5ad(tmp_path / "a.h5ad")
    assert np.array_equal(read_h5ad(tmp_path / "a.h5ad").X, a.X)
