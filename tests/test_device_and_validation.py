import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import scintegrate
from scintegrate._device import resolve_device, seeded, torch_generator
from scintegrate._validation import check_adata, check_batches, check_matrix, is_count_matrix


def test_resolve_device_logic_without_gpu():
    assert resolve_device("auto", cuda_available=False).type == "cpu"
    assert resolve_device("auto", cuda_available=True).type == "cuda"
    assert resolve_device("cuda:1", cuda_available=True) == torch.device("cuda:1")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        resolve_device("cuda", cuda_available=False)
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")


def test_seeded_is_reproducible_and_restores_global_state():
    before = torch.random.get_rng_state()
    with seeded(3):
        a = torch.randn(3)
    with seeded(3):
        b = torch.randn(3)
    assert torch.equal(a, b)
    assert torch.equal(before, torch.random.get_rng_state())
    assert torch.equal(torch.rand(2, generator=torch_generator(5)), torch.rand(2, generator=torch_generator(5)))


def _adata(X=None, batch=("a", "a", "b", "b")):
    X = np.array([[1, 0], [2, 3], [0, 1], [4, 4]], dtype=np.float32) if X is None else X
    return ad.AnnData(X=X, obs=pd.DataFrame({"batch": list(batch)}, index=[f"c{i}" for i in range(4)]))


def test_check_adata_accepts_good_input():
    check_adata(_adata(), "batch", counts=True)
    check_adata(_adata(sp.csr_matrix(_adata().X)), "batch", counts=True)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: _adata(), KeyError, "batch column 'donor' not found"),
        (lambda: _adata(batch=("a",) * 4), ValueError, "at least 2 batches"),
        (lambda: _adata(np.array([[np.nan, 1]] * 4, dtype=np.float32)), ValueError, "NaN"),
        (lambda: _adata(np.array([[-1, 1]] * 4, dtype=np.float32)), ValueError, "negative"),
        (lambda: _adata(np.full((4, 2), 0.5, dtype=np.float32)), ValueError, "not integer counts"),
    ],
)
def test_check_adata_errors(make, error, match):
    key = "donor" if "donor" in match else "batch"
    with pytest.raises(error, match=match):
        check_adata(make(), key, counts=True)


def test_duplicate_names_and_empty():
    a = _adata()
    a.obs_names = ["x", "x", "y", "z"]
    with pytest.raises(ValueError, match="not unique"):
        check_adata(a, "batch")
    with pytest.raises(ValueError, match="empty"):
        check_adata(ad.AnnData(np.zeros((0, 3))), None)
    with pytest.raises(ValueError, match="empty"):
        check_matrix(np.zeros((3, 0)))


def test_batches_and_counts_helpers():
    assert check_batches(pd.Series(["b", "a", "b"])) == ["b", "a"]
    with pytest.raises(ValueError, match="missing values"):
        check_batches(pd.Series(["a", None]))
    assert is_count_matrix(sp.csr_matrix(np.array([[0, 2.0]])))
    assert not is_count_matrix(np.array([[0.5]]))


def test_continuous_data_may_be_negative_but_counts_may_not():
    from scintegrate._validation import check_matrix

    check_matrix(np.array([[-0.5, 1.25], [0.3, -2.0]]), allow_negative=True)  # log-scale / Gaussian data
    with pytest.raises(ValueError, match="integer values with negative entries"):
        check_matrix(np.array([[-1.0, 3.0], [0.0, 2.0]]), allow_negative=True)  # a count matrix with a -1
    with pytest.raises(ValueError, match="negative values"):
        scintegrate.integrate(_adata(np.array([[-1, 1], [2, 0], [1, 1], [0, 3]], dtype=np.float32)), method="bermuda")
