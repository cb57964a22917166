"""The method contract, generated from the registry: every registered method (ours, the baseline, installed
peers and the toy plugin of ``tests/plugins``) gets these tests by registering.

- ``integrate`` writes exactly the registered outputs, one row per cell, in the cells' order;
- the same seed gives an identical embedding on CPU;
- save -> load gives an identical embedding (and identical embeddings of new cells where supported);
- the CLI runs it;
- bad input gives a one-line error and leaves the AnnData unchanged.
"""

import contextlib
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scintegrate as si
from scintegrate import registry
from scintegrate.api import build_model

NAMES = registry.method_names(peers=True, installed=True)


@pytest.fixture(scope="module")
def data():
    return si.datasets.simulate_counts(n_cells=240, n_genes=120, seed=0)


def _model(name, seed=0):
    return build_model(name, seed=seed, device="cpu", progress=False, **registry.get_spec(name).quick_params)


@pytest.fixture(scope="module")
def fitted(data):
    """One fitted model per method, shared by the tests of this module."""
    cache = {}

    def get(name):
        if name not in cache:
            with _quiet():
                cache[name] = _model(name).fit(data, batch_key="batch")
        return cache[name]
    return get


@contextlib.contextmanager
def _quiet():
    """Method warnings (e.g. BERMUDA's unmatched clusters on tiny data) are not what these tests check."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _snapshot(adata):
    X = adata.X.toarray() if sp.issparse(adata.X) else np.array(adata.X)
    return (X.copy(), adata.obs.copy(), sorted(adata.obsm), sorted(adata.layers), sorted(adata.uns),
            list(adata.var_names))


def _unchanged(adata, snap):
    X, obs, obsm, layers, uns, var = snap
    now = adata.X.toarray() if sp.issparse(adata.X) else np.asarray(adata.X)
    np.testing.assert_array_equal(np.nan_to_num(now, nan=-999), np.nan_to_num(X, nan=-999))
    pd.testing.assert_frame_equal(adata.obs, obs)
    assert (sorted(adata.obsm), sorted(adata.layers), sorted(adata.uns), list(adata.var_names)) == (
        obsm, layers, uns, var)


@pytest.mark.parametrize("name", NAMES)
def test_integrate_writes_the_registered_outputs_in_cell_order(name, data, fitted, tmp_path):
    spec = registry.get_spec(name)
    adata = data.copy()
    with _quiet():
        si.integrate(adata, method=name, seed=0, device="cpu", progress=False, **spec.quick_params)
    out = spec.outputs()
    assert set(adata.obsm) == set(out["obsm"]) and set(adata.layers) == set(out["layers"])
    assert set(adata.obs.columns) - set(data.obs.columns) == set(out["obs"])
    emb = adata.obsm[spec.obsm_key]
    assert emb.dtype == np.float32 and emb.ndim == 2 and emb.shape[0] == adata.n_obs and np.isfinite(emb).all()
    assert list(adata.obs_names) == list(data.obs_names)
    for key in out["layers"]:
        assert adata.layers[key].shape == adata.shape
    # the same rows as the model class gives directly: integrate neither reorders nor drops cells
    np.testing.assert_array_equal(emb, fitted(name).embed())
    record = adata.uns["scintegrate"][spec.obsm_key]
    assert record["method"] == name and record["seed"] == 0 and "timings" in record
    adata.write_h5ad(tmp_path / "out.h5ad")  # everything written is storable


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_gives_an_identical_embedding_on_cpu(name, data, fitted):
    with _quiet():
        again = _model(name).fit(data, batch_key="batch")
    np.testing.assert_array_equal(again.embed(), fitted(name).embed())


@pytest.mark.parametrize("name", NAMES)
def test_save_load_gives_an_identical_embedding(name, data, fitted, tmp_path):
    model = fitted(name)
    model.save(tmp_path / "model")
    loaded = type(model).load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.embed(), model.embed())
    assert loaded.params == model.params
    new = data[:60].copy()
    try:
        expected = model.embed(new)
    except NotImplementedError as err:
        assert "embeds only the cells it was fitted on" in str(err)
        return
    np.testing.assert_array_equal(loaded.embed(new), expected)
    missing = new[:, 10:].copy()  # genes that do not match the saved model
    with pytest.raises((KeyError, ValueError)) as err:
        loaded.embed(missing)
    assert "missing" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", NAMES)
def test_cli_runs_the_method(name, data, tmp_path):
    from scintegrate.cli import main

    spec = registry.get_spec(name)
    path, out = tmp_path / "in.h5ad", tmp_path / "out.h5ad"
    data.write_h5ad(path)
    params = [f"--param={k}={v}" for k, v in spec.quick_params.items()]
    with _quiet():
        assert main(["integrate", str(path), "--method", name, "--out", str(out), "--quiet", "--device", "cpu",
                     *params]) == 0
    assert ad.read_h5ad(out).obsm[spec.obsm_key].shape[0] == data.n_obs


def _drop_batch(a):
    del a.obs["batch"]


def _one_batch(a):
    a.obs["batch"] = "only"


def _nan(a):
    a.X = a.X.toarray()
    a.X[0, 0] = np.nan


def _negative(a):
    a.X = a.X.toarray()
    a.X[0, 0] = -3.0  # integer-valued: corrupt counts for every method


def _duplicate_cells(a):
    a.obs_names = ["same"] * 2 + list(a.obs_names[2:])


BAD = {"missing batch column": (_drop_batch, "batch column 'batch' not found"),
       "one batch": (_one_batch, "at least 2 batches"),
       "NaN": (_nan, "NaN"),
       "negative counts": (_negative, "negative"),
       "duplicate cell names": (_duplicate_cells, "cell names are not unique")}


@pytest.mark.parametrize("bad", list(BAD))
@pytest.mark.parametrize("name", NAMES)
def test_bad_input_gives_a_one_line_error_and_changes_nothing(name, bad, data):
    mutate, message = BAD[bad]
    adata = data.copy()
    mutate(adata)
    snap = _snapshot(adata)
    with pytest.raises((KeyError, ValueError)) as err:
        si.integrate(adata, method=name, seed=0, device="cpu", progress=False,
                     **registry.get_spec(name).quick_params)
    text = err.value.args[0] if isinstance(err.value, KeyError) else str(err.value)
    assert message in text and "\n" not in text
    _unchanged(adata, snap)
