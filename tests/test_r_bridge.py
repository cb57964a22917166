"""scintegrate._r_bridge, the Python side of the R package, tested without R."""

import json
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scintegrate import _r_bridge as rb
from scintegrate import registry
from scintegrate.datasets import simulate_counts


@pytest.fixture(scope="module")
def sim():
    return simulate_counts(n_cells=200, n_genes=100, seed=0)


def genes_by_cells(adata):
    """What R hands over: the genes x cells CSC matrix of a dgCMatrix, over read-only arrays."""
    X = sp.csc_matrix(adata.X.T)
    for a in (X.data, X.indices, X.indptr):
        a.flags.writeable = False
    return X


def test_make_adata_turns_csc_into_csr_cells_by_genes_without_copy(sim):
    X = genes_by_cells(sim)
    batch = sim.obs["batch"]
    adata = rb.make_adata(X, sim.obs_names, sim.var_names,
                          {"batch": (list(batch.astype(str)), list(batch.cat.categories)), "n": np.arange(200)})
    assert adata.shape == (200, 100) and adata.X.format == "csr"
    assert np.shares_memory(adata.X.data, X.data) and np.shares_memory(adata.X.indices, X.indices)
    assert not adata.X.data.flags.writeable
    assert (adata.X != sim.X).nnz == 0
    assert adata.obs_names.tolist() == sim.obs_names.tolist()
    assert adata.var_names.tolist() == sim.var_names.tolist()
    assert isinstance(adata.obs["batch"].dtype, pd.CategoricalDtype)
    assert adata.obs["batch"].cat.categories.tolist() == batch.cat.categories.tolist()
    # a dense genes x cells array in Fortran order (R's layout) becomes a C-ordered view
    dense = np.asfortranarray(sim.X.toarray().T)
    view = rb.make_adata(dense, sim.obs_names, sim.var_names, {}).X
    assert view.flags.c_contiguous and np.shares_memory(view, dense)


def test_to_slots_are_the_dgcmatrix_of_the_transpose():
    M = sp.csr_matrix(np.array([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]], dtype=np.float32))
    slots = rb.to_slots(M)
    assert slots["dim"] == [3, 2]  # genes x cells
    assert slots["x"].dtype == np.float64 and slots["i"].dtype == np.int32 and slots["p"].dtype == np.int32
    back = sp.csc_matrix((slots["x"], slots["i"], slots["p"]), shape=tuple(slots["dim"]))
    np.testing.assert_array_equal(back.toarray(), M.toarray().T)


def test_obs_column_categorical_numbers_and_strings():
    levels, codes = rb.obs_column(pd.Series(pd.Categorical(["b", "a", "b"], categories=["b", "a"])))
    assert levels == ["b", "a"] and codes.tolist() == [1, 2, 1]  # 1-based codes for R
    assert rb.obs_column(pd.Series([1.5, 2.0])).dtype.kind == "f"
    assert rb.obs_column(pd.Series([True, False])).dtype.kind == "b"
    assert rb.obs_column(pd.Series(["x", None])) == ["x", "None"]


def test_to_json_makes_records_readable_by_jsonlite():
    text = rb.to_json({"a": np.array([1.0, np.nan]), "b": (np.int64(2), np.inf), "c": None, "d": object})
    out = json.loads(text)
    assert out["a"] == [1.0, None] and out["b"] == [2, None] and out["c"] is None and out["d"].startswith("<class")


def test_methods_come_from_the_registry():
    infos = rb.methods()
    assert [m["name"] for m in infos] == registry.method_names()
    for info in infos:
        spec = registry.get_spec(info["name"])
        assert spec.kind != "peer"
        assert info["key"] == spec.obsm_key
        assert info["quick_params"] == spec.quick_params
        assert info["obs_keys"] == list(spec.obs_keys)
    assert rb.default_method() == registry.DEFAULT_METHOD
    assert "toy" in [m["name"] for m in infos]  # the plugin conftest registers


def test_check_method_names_what_r_can_run():
    assert rb.check_method("PCA")["key"] == registry.get_spec("pca").obsm_key
    with pytest.raises(ValueError, match=r"unknown method 'harmonica'; available: \[.*'pca'.*\]"):
        rb.check_method("harmonica")
    for peer in registry.peer_names():
        with pytest.raises(ValueError, match="only the benchmark runs"):
            rb.check_method(peer)


def test_integrate_returns_what_r_stores(sim):
    spec = registry.get_spec("pca")
    adata = rb.make_adata(genes_by_cells(sim), sim.obs_names, sim.var_names,
                          {"batch": list(sim.obs["batch"].astype(str))})
    params = {**spec.quick_params, "progress": False}
    out = rb.integrate(adata, "pca", "batch", spec.obsm_key, 3, "cpu", params, 1)
    assert out["embedding"].shape == (200, spec.quick_params["n_comps"]) and out["embedding"].dtype == np.float64
    assert set(out["obs"]) == set(spec.obs_keys)
    record = json.loads(out["record"])
    assert record["method"] == "pca" and record["seed"] == 3 and record["threads"] == 1
    assert "timings" in record


def test_integrate_restores_the_torch_threads(sim):
    import torch

    before = torch.get_num_threads()
    spec = registry.get_spec("toy")
    adata = rb.make_adata(genes_by_cells(sim), sim.obs_names, sim.var_names,
                          {"batch": list(sim.obs["batch"].astype(str))})
    out = rb.integrate(adata, "toy", "batch", spec.obsm_key, 0, "cpu", dict(spec.quick_params), 1)
    assert torch.get_num_threads() == before
    assert set(out["obs"]) == {"toy_norm"} and out["embedding"].shape == (200, spec.quick_params["n_dims"])
    with pytest.raises(ValueError, match="threads must be a positive"):
        with rb.torch_threads(0):
            pass


def test_load_torch_in_python_needs_no_deepbind():
    info = rb.load_torch()
    assert "torch" in sys.modules and info["threads"] >= 1
    assert not info["foreign_blas"]


def test_metrics_values_and_warnings():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    out = rb.metrics(X, ["a", "b"] * 30, ["x"] * 30 + ["y"] * 30, None, ["ilisi", "knn_accuracy"], 0)
    assert 1.0 <= out["values"]["ilisi"] <= 2.0
    assert np.isnan(out["values"]["nmi"])  # not requested
    assert isinstance(out["warnings"], list)
    one = rb.metrics(X, ["a"] * 60, ["x"] * 30 + ["y"] * 30, None, ["ilisi"], 0)
    assert np.isnan(one["values"]["ilisi"]) and one["warnings"]


def test_adata_slots_and_simulate():
    out = rb.simulate(n_cells=40, n_genes=20, seed=1)
    assert out["counts"]["dim"] == [20, 40] and len(out["cells"]) == 40 and len(out["genes"]) == 20
    assert set(out["obs"]) >= {"batch", "cell_type"}
    assert isinstance(json.loads(out["uns"]), dict)


def test_read_h5ad_uses_the_cli_reader(sim, tmp_path):
    """R's readH5ad() goes through scintegrate.datasets.read_h5ad: one-line errors, then the slots."""
    with pytest.raises(FileNotFoundError, match="^no such file: "):
        rb.read_h5ad(tmp_path / "missing.h5ad")
    text = tmp_path / "table.h5ad"
    text.write_text("gene,cell\n")
    with pytest.raises(ValueError, match=r"is not an \.h5ad file \(no HDF5 signature\)"):
        rb.read_h5ad(text)
    path = tmp_path / "sim.h5ad"
    sim.write_h5ad(path)
    out = rb.read_h5ad(str(path))
    assert out["counts"]["dim"] == [sim.n_vars, sim.n_obs] and out["cells"] == sim.obs_names.tolist()
