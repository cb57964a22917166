"""integrate(): registry, input checks before any change, outputs and the uns record."""

import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import scintegrate as si
from scintegrate.models import IntegrationModel
from scintegrate.registry import MethodSpec, register, unregister


class FakeModel(IntegrationModel):
    method = "fake"

    def __init__(self, *, scale=1.0, seed=0, device="auto", progress=True):
        self._setup({"scale": scale}, seed=seed, device=device, progress=progress)

    def _fit(self, adata, data):
        self.embedding_ = np.asarray(data.X, dtype=np.float32)[:, :2] * self.params["scale"]

    def _outputs(self):
        return {"obs": {"fake_cluster": np.zeros(len(self.embedding_), dtype=int)}, "info": {"n_epochs": 3,
                                                                                              "note": None}}


@pytest.fixture
def fake_method():
    register(MethodSpec(name="fake", model=f"{__name__}:FakeModel", description="test", input=("counts",),
                        obs_keys=("fake_cluster",)))
    yield FakeModel
    unregister("fake")


def _adata(n=20):
    rng = np.random.default_rng(0)
    X = rng.poisson(2.0, size=(n, 5)).astype(np.float32)
    obs = pd.DataFrame({"batch": ["a", "b"] * (n // 2)}, index=[f"cell{i}" for i in range(n)])
    return ad.AnnData(X=X, obs=obs)


def test_integrate_writes_embedding_obs_and_record(fake_method):
    adata = _adata()
    out = si.integrate(adata, method="FAKE", seed=7, scale=2.0, progress=False)
    assert out is adata
    np.testing.assert_allclose(adata.obsm["X_fake"], adata.X[:, :2] * 2)
    assert "fake_cluster" in adata.obs
    rec = adata.uns["scintegrate"]["X_fake"]
    assert rec["method"] == "fake" and rec["seed"] == 7 and rec["params"]["scale"] == 2.0
    assert rec["n_epochs"] == 3 and rec["version"] == si.__version__


def test_copy_and_key_added(fake_method):
    adata = _adata()
    new = si.integrate(adata, method="fake", key_added="X_mine", copy=True, progress=False)
    assert "X_mine" in new.obsm and "X_mine" not in adata.obsm


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda a: a.obs.drop(columns="batch", inplace=True), "batch column 'batch' not found"),
        (lambda a: a.obs.__setitem__("batch", "a"), "at least 2 batches"),
        (lambda a: a.X.__setitem__((0, 0), np.nan), "NaN"),
        (lambda a: a.X.__setitem__((0, 0), -3), "negative"),
    ],
)
def test_bad_input_changes_nothing(fake_method, mutate, match):
    adata = _adata()
    mutate(adata)
    before = set(adata.obsm.keys()), set(adata.uns.keys())
    with pytest.raises((KeyError, ValueError), match=match):
        si.integrate(adata, method="fake", progress=False)
    assert (set(adata.obsm.keys()), set(adata.uns.keys())) == before


def test_unknown_method_lists_available():
    with pytest.raises(ValueError, match="unknown method 'nope'.*available"):
        si.integrate(_adata(), method="nope")


def test_unknown_parameter_lists_the_valid_ones(fake_method):
    adata = _adata()
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['n_epochs'\] for method 'fake'; valid: \['scale'\]"):
        si.integrate(adata, method="fake", n_epochs=3)
    assert "scintegrate" not in adata.uns


def test_layer_is_used(fake_method):
    adata = _adata()
    adata.layers["counts"] = adata.X * 10
    si.integrate(adata, method="fake", layer="counts", progress=False)
    np.testing.assert_allclose(adata.obsm["X_fake"], adata.layers["counts"][:, :2])


def test_import_sets_no_global_state():
    import subprocess

    code = ("import torch, numpy as np; s = torch.random.get_rng_state().clone(); n = np.random.get_state()[1].copy();"
            "import logging; h = list(logging.getLogger().handlers); import scintegrate, scintegrate.models;"
            "assert torch.equal(s, torch.random.get_rng_state()); assert (n == np.random.get_state()[1]).all();"
            "assert h == logging.getLogger().handlers; print('clean')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0 and "clean" in res.stdout, res.stderr
