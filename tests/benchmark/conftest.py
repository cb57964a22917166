"""Fixtures for the benchmark layer: small simulated data and structured embeddings."""

import numpy as np
import pytest

import scintegrate as si


@pytest.fixture
def adata():
    """300 cells x 200 genes of raw counts, 2 batches, 4 cell types."""
    return si.datasets.simulate_counts(n_cells=300, n_genes=200, seed=0)


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
