"""Peer methods: registry, graceful absence, and that each installed peer mixes batches."""

import numpy as np
import pytest

import dataclasses

from scintegrate import registry
from scintegrate.benchmark._prep import unintegrated_pca
from scintegrate.benchmark.peers import available_peers, run_peer
from scintegrate.neighbors import knn


def _other_batch_fraction(X, batch, k=15):
    """Share of each cell's k nearest neighbours that come from another batch."""
    idx, _ = knn(X, k)
    return float((batch[idx] != batch[:, None]).mean())


@pytest.fixture
def harmony_not_installed():
    original = registry.get_spec("harmonypy")
    registry.register(dataclasses.replace(original, requires=("no_such_module_xyz",)), replace=True)
    yield
    registry.register(original, replace=True)


def test_not_installed_peer_is_not_available(harmony_not_installed, adata):
    assert "harmonypy" not in available_peers()
    with pytest.raises(ImportError, match="peer 'harmonypy' needs the package 'no_such_module_xyz'"):
        run_peer(adata, "harmonypy")


def test_unknown_peer_and_a_method_that_is_no_peer(adata):
    with pytest.raises(ValueError, match="unknown method 'seurat'"):
        run_peer(adata, "seurat")
    with pytest.raises(ValueError, match="'pca' is not a peer method"):
        run_peer(adata, "pca")


@pytest.mark.parametrize("name", ["harmonypy", "scanoramapy", "combat"])
def test_peer_mixes_batches_more_than_unintegrated(adata, name):
    if name not in available_peers():
        pytest.skip(f"{name} is not installed")
    batch = adata.obs["batch"].astype(str).to_numpy()
    before = _other_batch_fraction(unintegrated_pca(adata, batch_key="batch", n_comps=20), batch)
    emb = run_peer(adata, name, batch_key="batch", seed=0)
    assert emb.dtype == np.float32 and emb.shape[0] == adata.n_obs and np.isfinite(emb).all()
    after = _other_batch_fraction(emb, batch)
    assert after > before + 0.1, (name, before, after)
    np.testing.assert_allclose(run_peer(adata, name, batch_key="batch", seed=0), emb, rtol=1e-4, atol=1e-4)


def test_peer_leaves_global_numpy_state_alone(adata):
    if "scanoramapy" not in available_peers():
        pytest.skip("scanorama is not installed")
    np.random.seed(123)
    expected = np.random.random_sample()
    np.random.seed(123)
    run_peer(adata, "scanoramapy", batch_key="batch", seed=5)
    assert np.random.random_sample() == expected


def test_peer_input_checks(adata):
    with pytest.raises(KeyError, match="batch column 'donor' not found"):
        run_peer(adata, "combat", batch_key="donor")


def test_scvi_needs_counts(adata):
    if "scvitools" not in available_peers():
        pytest.skip("scvi-tools is not installed")
    adata.X = adata.X.astype(np.float32) * 0.37
    with pytest.raises(ValueError, match="scVI needs raw counts"):
        run_peer(adata, "scvitools", batch_key="batch", seed=0)


def test_scvi_runs_briefly(adata):
    if "scvitools" not in available_peers():
        pytest.skip("scvi-tools is not installed")
    emb = run_peer(adata, "scvitools", batch_key="batch", seed=0, max_epochs=2, n_latent=8, device="cpu")
    assert emb.shape == (adata.n_obs, 8) and np.isfinite(emb).all()
