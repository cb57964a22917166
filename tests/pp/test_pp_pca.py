"""PCA: against numpy's SVD, sign convention, determinism, both solvers."""

import importlib

import anndata as ad
import numpy as np
import pytest

from scintegrate.pp import pca, run_pca, scale_data

pca_module = importlib.import_module("scintegrate.pp.pca")  # the name pp.pca is the function


def _data(n=80, p=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)) @ rng.normal(size=(3, p)) * 3 + rng.normal(size=(n, p))


def test_matches_numpy_svd_without_recentring():
    X = _data()
    scores, loadings, sdev = pca(X, n_comps=5)
    U, d, Vt = np.linalg.svd(X, full_matrices=False)  # Seurat/irlba do not centre again
    signs = np.sign(Vt[:5][np.arange(5), np.abs(Vt[:5]).argmax(1)])
    np.testing.assert_allclose(loadings, (Vt[:5] * signs[:, None]).T, atol=1e-8)
    np.testing.assert_allclose(scores, U[:, :5] * d[:5] * signs, atol=1e-8)
    np.testing.assert_allclose(sdev, d[:5] / np.sqrt(X.shape[0] - 1))
    # sign convention: the largest-magnitude loading of each PC is positive
    assert np.all(loadings[np.abs(loadings).argmax(0), np.arange(5)] > 0)


def test_arpack_path_matches_gram_path(monkeypatch):
    X = _data(n=60, p=40)
    expected = pca(X, n_comps=4)
    monkeypatch.setattr(pca_module, "GRAM_MAX", 10)
    got = pca(X, n_comps=4, seed=3)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, atol=1e-6)
    wide = pca(X.T, n_comps=4)  # n < p: eigenvectors of X X'
    monkeypatch.setattr(pca_module, "GRAM_MAX", 8000)
    np.testing.assert_allclose(np.abs(wide[0]), np.abs(pca(X.T, n_comps=4)[0]), atol=1e-6)


def test_run_pca_on_scaled_data():
    adata = ad.AnnData(np.abs(_data()).astype(np.float32))
    scale_data(adata)
    run_pca(adata, n_comps=6, seed=0)
    first = adata.obsm["X_pca"].copy()
    assert first.shape == (80, 6) and adata.varm["PCs"].shape == (20, 6)
    ratio = adata.uns["X_pca"]["variance_ratio"]
    assert np.all(np.diff(ratio) <= 1e-12) and 0 < ratio.sum() <= 1 + 1e-9
    run_pca(adata, n_comps=6, seed=0)
    np.testing.assert_array_equal(adata.obsm["X_pca"], first)
    run_pca(adata, n_comps=100, features=["0", "1", "2"], key_added="X_small")
    assert adata.obsm["X_small"].shape == (80, 2)  # capped at min(n, p) - 1


def test_bad_input():
    adata = ad.AnnData(np.ones((5, 4)))
    with pytest.raises(KeyError, match="run scintegrate.pp.scale_data first"):
        run_pca(adata)
    with pytest.raises(ValueError, match="at least 2 cells and 2 features"):
        pca(np.ones((1, 5)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        pca(np.array([[np.nan, 1.0], [1.0, 2.0], [0.0, 1.0]]))
