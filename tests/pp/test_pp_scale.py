"""ScaleData: z-scores with n - 1, upper clipping only, constant genes, split by batch."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scintegrate.pp import scale_data, scale_matrix


def _zscore(X):
    with np.errstate(invalid="ignore"):  # constant columns give NaN, mapped to 0 by the callers
        return (X - X.mean(0)) / X.std(0, ddof=1)


def test_hand_computed_and_clipping():
    X = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])
    np.testing.assert_allclose(scale_matrix(X), [[-1, 0], [0, 0], [1, 0]])
    spike = np.zeros((200, 1))
    spike[0] = 1.0  # z = 199 / sqrt(200) ~ 14.1 for that cell, -0.07 for the others
    out = scale_matrix(sp.csr_matrix(spike), max_value=10)
    assert out[0, 0] == 10 and np.isclose(out[1, 0], _zscore(spike)[1, 0])
    assert scale_matrix(spike, max_value=None)[0, 0] == pytest.approx(_zscore(spike)[0, 0])
    neg = -spike  # the lower side is not clipped (Seurat clips scale.max only)
    assert scale_matrix(neg)[0, 0] == pytest.approx(-_zscore(spike)[0, 0])


def test_sparse_equals_dense_and_split_by_batch():
    rng = np.random.default_rng(0)
    X = rng.poisson(0.7, size=(120, 30)).astype(float)
    X[:60, 4] = 3.0  # constant within batch 0 -> 0 there
    codes = np.repeat([0, 1], 60)
    dense = scale_matrix(X, batch_codes=codes)
    np.testing.assert_allclose(scale_matrix(sp.csr_matrix(X), batch_codes=codes), dense, atol=1e-6)
    for b in (0, 1):
        sub = X[codes == b]
        expected = np.nan_to_num(np.minimum(_zscore(sub), 10), nan=0.0)
        np.testing.assert_allclose(dense[codes == b], expected, atol=1e-6)
    assert np.all(dense[:60, 4] == 0)
    assert dense.dtype == np.float32


def test_scale_data_storage_and_feature_default():
    rng = np.random.default_rng(1)
    adata = ad.AnnData(sp.csr_matrix(rng.poisson(1.0, size=(50, 8)).astype(np.float32)),
                       obs=pd.DataFrame({"b": ["x", "y"] * 25}, index=[f"c{i}" for i in range(50)]),
                       var=pd.DataFrame({"highly_variable": [True, False] * 4}, index=[f"g{i}" for i in range(8)]))
    scale_data(adata)
    assert adata.obsm["scaled"].shape == (50, 4)
    assert list(adata.uns["scaled"]["features"]) == ["g0", "g2", "g4", "g6"]
    assert sp.issparse(adata.X)  # the normalised data stay as they were
    res = scale_data(adata, features=["g7", "g1"], batch_key="b", key_added="s2", copy=True)
    assert list(res.uns["s2"]["features"]) == ["g7", "g1"] and "s2" not in adata.obsm
    x = adata.X[:, [7]].toarray()[::2]
    np.testing.assert_allclose(res.obsm["s2"][::2, 0], np.nan_to_num(_zscore(x)[:, 0]), atol=1e-6)


def test_bad_input():
    adata = ad.AnnData(np.ones((4, 3)))
    with pytest.raises(KeyError, match="not in adata.var_names"):
        scale_data(adata, features=["nope"])
    with pytest.raises(TypeError, match="list of gene names"):
        scale_data(adata, features="0")
    with pytest.raises(KeyError, match="batch column 'b' not found"):
        scale_data(adata, batch_key="b")
    with pytest.raises(ValueError, match="NaN or infinite"):
        scale_data(ad.AnnData(np.array([[np.nan, 1.0], [1.0, 2.0]])))
