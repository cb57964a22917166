"""One honest reading of the input and one policy for awkward data, the same for every method (data layer)."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import scintegrate as si
from scintegrate import registry
from scintegrate.data import extract
from scintegrate.data.kinds import batch_kinds, input_kind

METHODS = registry.method_names(installed=True)


def _adata(n=200, g=100, seed=0):
    return si.datasets.simulate_counts(n_cells=n, n_genes=g, seed=seed)


def test_kinds_are_decided_from_every_value_and_per_batch():
    a = _adata()
    X = a.X.toarray()
    codes = a.obs["batch"].cat.codes.to_numpy()
    assert batch_kinds(X, codes, ["batch1", "batch2"]) == {"batch1": "counts", "batch2": "counts"}
    late = X.copy()
    late[-1, -1] += 0.5  # one non-integer value in the very last cell: the old 100k-value sample never saw it
    big = np.tile(late, (600, 1))  # 120,000 cells: far more stored values than a sample
    kinds = batch_kinds(big, np.tile(codes, 600), ["batch1", "batch2"])
    assert kinds["batch1"] == "counts" and kinds["batch2"] != "counts"
    logx = np.log1p(X)
    mixed = np.vstack([X[codes == 0], logx[codes == 1]])
    with pytest.raises(ValueError, match=r"counts in \['batch1'\], log-normalised values in \['batch2'\]"):
        input_kind(mixed, np.sort(codes), ["batch1", "batch2"])
    flipped = np.vstack([logx[codes == 1], X[codes == 0]])  # the decision does not depend on the cell order
    with pytest.raises(ValueError, match="different kinds of values"):
        input_kind(flipped, np.sort(codes)[::-1].copy(), ["batch1", "batch2"])
    assert input_kind(X - 1.0, codes, ["batch1", "batch2"]) == "scaled"
    assert input_kind(sp.csr_matrix(logx), codes, ["batch1", "batch2"]) == "log"


def test_noninteger_counts_are_refused_unless_declared():
    a = _adata()
    a.X = sp.csr_matrix(a.X.multiply(1.37) + sp.csr_matrix(a.X > 0) * 40.0)  # Salmon-like estimated counts
    with pytest.raises(ValueError, match="non-integer counts .* pass input='counts'"):
        si.integrate(a, method="pca", progress=False)
    out = si.integrate(a.copy(), method="pca", input="counts", progress=False)
    record = out.uns["scintegrate"]["X_pca_baseline"]
    assert record["input"] == "noninteger_counts" and record["normalized"] is True  # normalised, never rounded
    logged = si.integrate(a.copy(), method="pca", input="log", progress=False).uns["scintegrate"]["X_pca_baseline"]
    assert logged["input"] == "log" and logged["normalized"] is False
    with pytest.raises(ValueError, match="input must be one of"):
        extract(a, "batch", input="tpm")


def test_input_counts_on_log_values_is_an_error():
    a = _adata()
    a.X = sp.csr_matrix(np.log1p(a.X.toarray()))
    with pytest.raises(ValueError, match="input='counts' was given but the values are log-normalised"):
        si.integrate(a, method="pca", input="counts", progress=False)


@pytest.mark.parametrize("name", METHODS)
def test_awkward_data_gives_the_same_one_line_error_in_every_method(name):
    spec = registry.get_spec(name)
    cases = []
    a = _adata()
    a.var_names = ["g0"] * 2 + list(a.var_names[2:])
    cases.append((a, "gene names are not unique"))
    a = _adata()
    a.obs["batch"] = np.arange(a.n_obs).astype(float)  # a continuous column passed as the batch
    cases.append((a, "looks like a cell-level value"))
    a = _adata()
    X = a.X.toarray()
    X[(a.obs["batch"] == "batch2").to_numpy()] = 0
    a.X = sp.csr_matrix(X)
    cases.append((a, "batch 'batch2' has no counts"))
    for adata, message in cases:
        with pytest.raises(ValueError) as err:
            si.integrate(adata, method=name, progress=False, **spec.quick_params)
        assert message in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="batch_key is None"):
        si.integrate(_adata(), method=name, batch_key=None, progress=False)


def test_each_method_declares_its_smallest_batch():
    pca = registry.get_spec("pca")
    a = _adata()
    b = a.obs["batch"].astype(str).to_numpy()
    b[0] = "tiny"
    a.obs["batch"] = b
    with pytest.raises(ValueError, match=f"batch 'tiny' has 1 cell\\(s\\); method 'pca' needs at least "
                                         f"{pca.min_batch_cells}"):
        si.integrate(a, method="pca", progress=False)
    with pytest.warns(UserWarning, match="fewer than 10 cells .* 'tiny'"):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*match no cluster.*")
            warnings.filterwarnings("ignore", message=".*S_thr.*")
            si.integrate(a, method="bermuda", progress=False, max_steps=5)


def test_embedding_new_cells_of_another_kind_is_refused():
    a = _adata()
    from scintegrate.models import BERMUDA

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = BERMUDA(max_steps=5, progress=False).fit(a)
    new = a[:50].copy()
    new.X = sp.csr_matrix(np.log1p(new.X.toarray()))
    with pytest.raises(ValueError, match="fitted on counts values but these cells hold log values"):
        model.embed(new)


def test_read_only_matrix_with_unsorted_indices_is_read_without_changing_it():
    """As a view of another program's memory (R's slots through reticulate) may arrive."""
    a = _adata(n=60, g=30)
    X = a.X.tocsr().copy()
    for i in range(X.shape[0]):  # reverse every row's column order: valid CSR, indices not sorted
        s, e = X.indptr[i], X.indptr[i + 1]
        X.indices[s:e], X.data[s:e] = X.indices[s:e][::-1].copy(), X.data[s:e][::-1].copy()
    X.has_sorted_indices = False
    before = X.indices.copy()
    for arr in (X.data, X.indices, X.indptr):
        arr.flags.writeable = False
    a.X = X
    out = si.integrate(a, method="pca", progress=False, n_comps=5)
    assert out.obsm["X_pca_baseline"].shape == (60, 5) and out.uns["scintegrate"]["X_pca_baseline"]["input"] == "counts"
    np.testing.assert_array_equal(a.X.indices, before)
