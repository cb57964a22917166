"""LogNormalize: hand-computed values, sparse kept sparse, counts kept, bad input."""

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from scintegrate.pp import log_normalize, log_normalize_matrix

COUNTS = np.array([[1.0, 3.0, 0.0], [2.0, 2.0, 4.0], [0.0, 0.0, 0.0]], dtype=np.float32)


def test_hand_computed_values_dense_and_sparse():
    expected = np.log1p(np.array([[2500.0, 7500.0, 0.0], [2500.0, 2500.0, 5000.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(log_normalize_matrix(COUNTS), expected, rtol=1e-6)
    out = log_normalize_matrix(sp.csr_matrix(COUNTS))
    assert sp.issparse(out) and out.nnz == 5 and out.dtype == np.float32
    np.testing.assert_allclose(out.toarray(), expected, rtol=1e-6)


def test_anndata_keeps_counts_and_sparsity():
    adata = ad.AnnData(sp.csr_matrix(COUNTS))
    res = log_normalize(adata, scale_factor=100, copy=True)
    assert sp.issparse(res.X) and sp.issparse(res.layers["counts"])
    np.testing.assert_array_equal(res.layers["counts"].toarray(), COUNTS)
    np.testing.assert_allclose(res.X.toarray()[0, :2], np.log1p([25.0, 75.0]), rtol=1e-6)
    assert res.uns["log_normalize"]["scale_factor"] == 100
    np.testing.assert_array_equal(adata.X.toarray(), COUNTS)  # copy=True leaves the input alone
    assert log_normalize(adata) is None and "counts" in adata.layers


def test_bad_input():
    with pytest.raises(ValueError, match="negative values"):
        log_normalize(ad.AnnData(-COUNTS))
    with pytest.raises(ValueError, match="NaN or infinite"):
        log_normalize_matrix(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="scale_factor must be positive"):
        log_normalize_matrix(COUNTS, scale_factor=0)
    with pytest.warns(UserWarning, match="does not look like raw counts"):
        log_normalize(ad.AnnData(COUNTS + 0.5))
