"""BERMUDA input transform: against sklearn's scale/minmax_scale (what BERMUDA's code runs)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.preprocessing import minmax_scale, scale

from scintegrate.models._bermuda_input import bermuda_scaling_fit, bermuda_transform, log_cpm


def _counts(seed=0, n=60, g=12):
    rng = np.random.default_rng(seed)
    X = rng.poisson(rng.gamma(0.5, 2.0, size=(1, g)), size=(n, g)).astype(np.float32)
    X[:, 3] = 0  # an all-zero gene
    X[: n // 2, 5] = 2  # a gene constant within batch 0
    return X


def _reference(X, codes, scope):
    """BERMUDA pre_processing.py per data set: log2(CPM+1), scale per gene, minmax per gene."""
    logx = np.log2(X / X.sum(1, keepdims=True) * 1e6 + 1)
    out = np.empty_like(logx)
    for b in np.unique(codes):
        z = scale(logx[codes == b], axis=0)
        out[codes == b] = minmax_scale(z, axis=0) if scope == "batch" else z
    if scope == "global":
        out = minmax_scale(out, axis=0)
    return out


def test_log_cpm_hand_computed_and_sparse_kept():
    X = np.array([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0]])
    expected = np.array([[np.log2(250001), np.log2(750001), 0.0], [0, 0, 0]])
    np.testing.assert_allclose(log_cpm(X), expected)
    out = log_cpm(sp.csr_matrix(X))
    assert sp.issparse(out) and out.nnz == 2
    np.testing.assert_allclose(out.toarray(), expected)


def test_log_cpm_tpm_with_gene_lengths():
    X = np.array([[2.0, 2.0]])
    out = log_cpm(X, gene_lengths=np.array([1.0, 3.0]))
    np.testing.assert_allclose(out, np.log2(np.array([[0.75e6, 0.25e6]]) + 1))
    with pytest.raises(ValueError, match="gene_lengths must hold 2 positive"):
        log_cpm(X, gene_lengths=np.array([1.0, 0.0]))


@pytest.mark.parametrize("scope", ["batch", "global"])
@pytest.mark.parametrize("sparse", [False, True])
def test_scaling_matches_sklearn_reference(scope, sparse):
    X = _counts()
    codes = np.repeat([0, 1], 30)
    X_log = log_cpm(sp.csr_matrix(X) if sparse else X)
    scaling = bermuda_scaling_fit(X_log, codes, scope=scope)
    out = scaling.apply(X_log, codes)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, _reference(X.astype(np.float64), codes, scope), atol=1e-5)
    # minibatch application of a row subset gives the same rows
    rows = np.array([59, 2, 31])
    np.testing.assert_allclose(scaling.apply(X_log[rows], codes[rows]), out[rows], atol=1e-6)


def test_transform_on_anndata_and_non_count_warning():
    X = _counts()
    adata = ad.AnnData(sp.csr_matrix(X), obs=pd.DataFrame({"b": np.repeat(["x", "y"], 30)},
                                                        index=[f"c{i}" for i in range(60)]))
    adata.var_names = [f"g{i}" for i in range(12)]
    bermuda_transform(adata, batch_key="b", features=["g0", "g4", "g5"])
    out = adata.obsm["bermuda_input"]
    assert out.shape == (60, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, _reference(X.astype(np.float64), np.repeat([0, 1], 30), "batch")[:, [0, 4, 5]],
                               atol=1e-5)
    assert list(adata.uns["bermuda_input"]["features"]) == ["g0", "g4", "g5"]
    assert adata.uns["bermuda_input"]["log_cpm"] is True
    logged = adata.copy()
    logged.X = log_cpm(logged.X)
    with pytest.warns(UserWarning, match="not raw counts"):
        res = bermuda_transform(logged, batch_key="b", features=["g0", "g4", "g5"], copy=True)
    np.testing.assert_allclose(res.obsm["bermuda_input"], out, atol=1e-5)


def test_bad_input_errors():
    X_log = log_cpm(_counts())
    with pytest.raises(ValueError, match="scope must be one of"):
        bermuda_scaling_fit(X_log, np.repeat([0, 1], 30), scope="cells")
    with pytest.raises(ValueError, match="59 batch codes given for 60 cells"):
        bermuda_scaling_fit(X_log, np.zeros(59, dtype=int))
    with pytest.raises(ValueError, match="needs at least one cell"):
        bermuda_scaling_fit(X_log, np.repeat([0, 2], 30))
    scaling = bermuda_scaling_fit(X_log, np.repeat([0, 1], 30))
    with pytest.raises(ValueError, match="batch codes must lie in"):
        scaling.apply(X_log[:2], np.array([0, 2]))
    with pytest.raises(ValueError, match="fitted on 12"):
        scaling.apply(X_log[:, :3], np.array([0] * 60))
    adata = ad.AnnData(_counts())
    with pytest.raises(KeyError, match="batch column 'batch' not found"):
        bermuda_transform(adata)
