"""Fixtures for the benchmark layer: small simulated data, and a stand-in for the ``pca`` method.

The stand-in is used only while ``scintegrate.models.pca_baseline`` is missing from the
installation; the real method wins as soon as it exists.
"""

import numpy as np
import pytest

import scintegrate as si


@pytest.fixture
def adata():
    """300 cells x 200 genes of raw counts, 2 batches, 4 cell types."""
    return si.datasets.simulate_counts(n_cells=300, n_genes=200, seed=0)


def _stub_integrate_pca(adata, *, batch_key, seed, device, progress, n_comps=20):
    from scintegrate.benchmark._prep import unintegrated_pca

    return unintegrated_pca(adata, batch_key=batch_key, n_comps=n_comps, seed=seed), {}


@pytest.fixture(autouse=True)
def _standins(monkeypatch):
    from scintegrate import api

    try:
        api.get_method("pca")
    except ImportError:
        real_get = api.get_method
        monkeypatch.setattr(api, "get_method",
                            lambda name: _stub_integrate_pca if str(name).lower() == "pca" else real_get(name))


def embedding_with_structure(adata, seed=0, label_sep=4.0, batch_shift=0.0):
    """A 10-d embedding: one-hot cell type scaled by ``label_sep`` + batch offset + unit noise."""
    rng = np.random.default_rng(seed)
    codes = adata.obs["cell_type"].cat.codes.to_numpy()
    bcodes = adata.obs["batch"].cat.codes.to_numpy()
    X = rng.normal(size=(adata.n_obs, 10))
    X[np.arange(adata.n_obs), codes] += label_sep
    X[:, 9] += batch_shift * bcodes
    return X.astype(np.float32)


@pytest.fixture
def structured():
    """The :func:`embedding_with_structure` helper, as a fixture."""
    return embedding_with_structure
