"""vst and SelectIntegrationFeatures: independent dense recomputation, exact loess cases, R's rules."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scintegrate.pp import (find_variable_features, integration_features_from_lists,
                            select_integration_features, vst)
from scintegrate.pp.hvg import _loess_fit


def _counts(n=300, g=200, seed=0, batches=2):
    rng = np.random.default_rng(seed)
    mu = rng.lognormal(-1, 1.5, size=g)
    disp = rng.uniform(0.05, 2, size=g)
    X = rng.negative_binomial(1 / disp, 1 / (1 + mu * disp), size=(n, g)).astype(np.float32)
    X[:, :3] = 0  # zero-mean genes are never variable
    obs = pd.DataFrame({"batch": np.repeat([f"b{i}" for i in range(batches)], n // batches)},
                       index=[f"c{i}" for i in range(n)])
    return ad.AnnData(sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(g)]))


def test_vst_matches_dense_recomputation():
    adata = _counts()
    X = adata.X.toarray().astype(np.float64)
    table = vst(adata.X)
    n = X.shape[0]
    np.testing.assert_allclose(table["vst_mean"], X.mean(0), rtol=1e-12)
    np.testing.assert_allclose(table["vst_variance"], X.var(0, ddof=1), rtol=1e-10)
    expected = table["vst_variance_expected"].to_numpy()
    sd = np.sqrt(expected)
    ok = sd > 0
    Z = np.minimum((X[:, ok] - X.mean(0)[ok]) / sd[ok], np.sqrt(n))  # Seurat clips the upper side only
    np.testing.assert_allclose(table["vst_variance_standardized"].to_numpy()[ok], (Z**2).sum(0) / (n - 1),
                               rtol=1e-10)
    assert np.all(table["vst_variance_standardized"].to_numpy()[~ok] == 0)
    dense = vst(X)
    np.testing.assert_allclose(dense.to_numpy(), table.to_numpy(), rtol=1e-10)


def test_loess_reproduces_a_quadratic_and_survives_singular_neighbourhoods():
    x = np.linspace(-2, 1, 200)
    y = 0.3 + 1.2 * x - 0.4 * x**2
    np.testing.assert_allclose(_loess_fit(x, y, 0.3), y, atol=1e-8)
    # few distinct x values: R warns ("pseudoinverse used") and still returns a fit
    xs = np.repeat([-1.0, -0.5, 0.0, 0.3], 50)
    fitted = _loess_fit(xs, 2 * xs + np.random.default_rng(0).normal(0, 0.1, xs.size), 0.3)
    assert np.all(np.isfinite(fitted))


def test_find_variable_features_columns_and_ranks():
    adata = _counts()
    find_variable_features(adata, n_features=50)
    assert adata.var["highly_variable"].sum() == 50
    assert not adata.var["highly_variable"].iloc[:3].any()
    assert adata.var["highly_variable_rank"].iloc[:3].isna().all()
    top = adata.var.sort_values("vst_variance_standardized", ascending=False).index[:50]
    assert set(top) == set(adata.var_names[adata.var["highly_variable"]])
    rank0 = adata.var["highly_variable_rank"].idxmin()
    assert rank0 == top[0]


def test_integration_features_follow_seurat_rules():
    # counts: a, b in both lists; c, d in one. tie value = count of the 3rd gene = 1.
    # above the tie: a (ranks 1, 3 -> 2.0), b (2, 1 -> 1.5) -> b, a; tied: c (3), d (2) -> d
    lists = [["a", "b", "c"], ["b", "d", "a"]]
    assert integration_features_from_lists(lists, 3) == ["b", "a", "d"]
    assert integration_features_from_lists(lists, 2) == ["b", "a"]
    # equal counts and equal median rank: name order (R's table order) decides
    assert integration_features_from_lists([["y", "x"], ["x", "y"]], 2) == ["x", "y"]
    assert integration_features_from_lists([["a"]], 5) == ["a"]


def test_select_integration_features_on_batches():
    adata = _counts(n=400, g=300, batches=2)
    features = select_integration_features(adata, batch_key="batch", n_features=60)
    assert len(features) == 60 and len(set(features)) == 60
    assert adata.var["integration_feature"].sum() == 60
    per_batch = adata.varm["vst_rank_per_batch"]
    lists = [list(per_batch[b].dropna().sort_values().index[:2000]) for b in per_batch.columns]
    assert features == integration_features_from_lists(lists, 60)
    # vst with batch_key: each batch's top n_features, then SelectIntegrationFeatures over them
    other = _counts(n=400, g=300, batches=2)
    find_variable_features(other, n_features=60, batch_key="batch")
    expected = integration_features_from_lists([lst[:60] for lst in lists], 60)
    assert other.var["highly_variable_rank"].dropna().sort_values().index.tolist() == expected
    assert set(other.var_names[other.var["highly_variable"]]) == set(expected)


def test_bad_input():
    adata = _counts()
    with pytest.raises(ValueError, match="n_features must be at least 1"):
        find_variable_features(adata, n_features=0)
    with pytest.raises(KeyError, match="batch column 'donor' not found"):
        select_integration_features(adata, batch_key="donor")
    with pytest.raises(ValueError, match="at least 2 cells"):
        vst(np.ones((1, 5)))
    lonely = adata.copy()
    lonely.obs["batch"] = ["b0"] * (lonely.n_obs - 1) + ["b9"]
    with pytest.raises(ValueError, match="batch 'b9': vst needs at least 2 cells"):
        select_integration_features(lonely, batch_key="batch")
    with pytest.raises(ValueError, match="negative values"), pytest.warns(UserWarning, match="not found"):
        find_variable_features(ad.AnnData(-np.ones((5, 5))))
