"""simulate_counts, simulate_gaussian_2d and demo_data: shapes, seeds, designs, batch effect, separability."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from scintegrate.datasets import demo_data, simulate_counts, simulate_gaussian_2d
from scintegrate.datasets.splat import lognormal_factors


def log_pca(X, n_comps=20, counts=True):
    """Independent log-normalise (1e4) + standardise + PCA."""
    X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
    if counts:
        X = np.log1p(X / X.sum(axis=1, keepdims=True) * 1e4)
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-8)
    return PCA(n_comps, random_state=0).fit_transform(X)


def same_label_fraction(Z, labels, k=15):
    """Mean fraction of each cell's k nearest neighbours (self excluded) sharing its label."""
    labels = np.asarray(labels)
    idx = NearestNeighbors(n_neighbors=k + 1).fit(Z).kneighbors(Z, return_distance=False)[:, 1:]
    return float((labels[idx] == labels[:, None]).mean())


def composition(adata):
    return pd.crosstab(adata.obs["batch"], adata.obs["cell_type"])


@pytest.fixture(scope="module")
def counts_default():
    return simulate_counts(n_cells=1200, n_genes=1000, seed=0)


# ---------------------------------------------------------------- simulate_counts
def test_counts_structure(counts_default):
    a = counts_default
    assert a.shape == (1200, 1000)
    assert sp.isspmatrix_csr(a.X) and a.X.dtype == np.float32
    assert a.X.data.min() > 0 and np.array_equal(a.X.data, np.round(a.X.data))  # positive integers stored
    assert a.obs_names.is_unique and a.var_names.is_unique
    assert isinstance(a.obs["batch"].dtype, pd.CategoricalDtype)
    assert list(a.obs["batch"].cat.categories) == ["batch1", "batch2"]
    assert list(a.obs["cell_type"].cat.categories) == ["type1", "type2", "type3", "type4"]
    assert a.obs["batch"].value_counts().to_dict() == {"batch1": 600, "batch2": 600}
    assert a.uns["simulation"]["seed"] == 0 and a.uns["simulation"]["experiment"] == "all"
    assert (composition(a) > 0).all().all()  # every type in every batch
    assert 0.02 < a.X.nnz / np.prod(a.shape) < 0.5  # sparse, like droplet data


def test_counts_reproducible_and_seed_dependent():
    a = simulate_counts(n_cells=200, n_genes=150, seed=3)
    b = simulate_counts(n_cells=200, n_genes=150, seed=3)
    c = simulate_counts(n_cells=200, n_genes=150, seed=4)
    assert (a.X != b.X).nnz == 0 and a.obs.equals(b.obs)
    assert (a.X != c.X).nnz > 0


def test_counts_batch_sizes_and_many_batches():
    a = simulate_counts(n_cells=[100, 50, 70], n_batches=None, n_genes=80, n_types=3, seed=0)
    assert a.obs["batch"].value_counts().sort_index().tolist() == [100, 50, 70]
    b = simulate_counts(n_cells=301, n_batches=3, n_genes=50, seed=0)
    assert b.obs["batch"].value_counts().sort_index().tolist() == [101, 100, 100]


@pytest.mark.parametrize("experiment, absent", [
    ("removal1", {("batch1", "type1")}),
    ("removal2", {("batch1", "type1"), ("batch2", "type4")}),
    ({"batch2": ["type2", "type3"]}, {("batch2", "type2"), ("batch2", "type3")}),
])
def test_counts_removal_compositions(experiment, absent):
    comp = composition(simulate_counts(n_cells=800, n_genes=100, experiment=experiment, seed=1))
    for b in comp.index:
        for t in comp.columns:
            assert (comp.loc[b, t] == 0) == ((b, t) in absent), (b, t, comp)


def test_counts_batch_effect_and_types(counts_default):
    """Integration must have work to do: batches separate in log-PCA, yet types are recoverable."""
    a = counts_default
    Z = log_pca(a.X)
    type_acc = same_label_fraction(Z, a.obs["cell_type"])
    batch_same = same_label_fraction(Z, a.obs["batch"])
    assert type_acc > 0.9, type_acc
    assert batch_same > 0.8, batch_same  # 0.5 expected without a batch effect
    # per-batch gene means (log scale) differ more than two random halves of one batch
    logx = np.log1p(a.X.toarray() / a.X.sum(axis=1).A * 1e4)
    b1 = (a.obs["batch"] == "batch1").to_numpy()
    t = a.obs["cell_type"].to_numpy()
    m = t == "type2"  # compare within one type so composition does not count as batch effect
    between = np.abs(logx[b1 & m].mean(0) - logx[~b1 & m].mean(0)).mean()
    idx = np.flatnonzero(b1 & m)
    within = np.abs(logx[idx[::2]].mean(0) - logx[idx[1::2]].mean(0)).mean()
    assert between > 1.5 * within, (between, within)


def test_counts_no_batch_effect_mixes():
    a = simulate_counts(n_cells=1000, n_genes=800, batch_effect=0.0, batch_scale=0.0, seed=2)
    assert np.allclose(a.varm["batch_factors"], 1.0)
    assert same_label_fraction(log_pca(a.X), a.obs["batch"]) < 0.6


def test_counts_mean_matches_model():
    """Without DE, batch, dropout and library-size spread, gene means are exp(lib_loc) * base / sum(base)."""
    a = simulate_counts(n_cells=3000, n_genes=300, n_batches=2, de_prob=0.0, batch_effect=0.0, batch_scale=0.0,
                        dropout=None, lib_scale=0.0, seed=5)
    expected = np.exp(8.0) * a.var["base_mean"].to_numpy() / a.var["base_mean"].sum()
    observed = np.asarray(a.X.mean(axis=0)).ravel()
    high = expected > 5
    assert high.sum() > 20
    assert np.allclose(observed[high], expected[high], rtol=0.1)
    # gamma-Poisson: overdispersed relative to Poisson
    var = np.asarray(a.X.power(2).mean(axis=0)).ravel() - observed ** 2
    assert np.median(var[high] / observed[high]) > 1.5


def test_counts_dropout_increases_zeros():
    kw = dict(n_cells=300, n_genes=200, seed=0)
    nnz = [simulate_counts(dropout=d, **kw).X.nnz for d in (None, 0.0, 2.0)]
    assert nnz[0] > nnz[1] > nnz[2]


def test_lognormal_factors_distribution():
    rng = np.random.default_rng(0)
    f = lognormal_factors(rng, (200_000,), prob=0.1, loc=0.7, scale=0.4)
    sel = f != 1.0
    assert abs(sel.mean() - 0.1) < 0.005
    assert abs((f[sel] < 1).mean() - 0.5) < 0.02
    assert abs(np.abs(np.log(f[sel])).mean() - 0.7) < 0.02  # |N(0.7, 0.4)| has mean ~0.7


@pytest.mark.parametrize("kwargs, match", [
    (dict(experiment="removal3"), "unknown experiment 'removal3'"),
    (dict(experiment="removal2", n_types=2), "'removal2' needs at least 2 batches and 3 cell types"),
    (dict(experiment="removal1", n_batches=1), "'removal1' needs at least 2 batches"),
    (dict(experiment={"batch9": ["type1"]}), r"unknown batches \['batch9'\]"),
    (dict(experiment={"batch1": ["type1", "type2"]}, n_types=2), "leaves batch1 without any cell type"),
    (dict(n_cells=[10, 10], n_batches=3), "got 2 batch sizes but n_batches=3"),
    (dict(n_cells=1, n_batches=2), "n_cells >= n_batches"),
    (dict(de_prob=1.5), r"de_prob must be in \[0, 1\]"),
])
def test_counts_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_counts(**{"n_genes": 20, **kwargs})


def test_demo_data():
    a = demo_data()
    assert a.shape == (2400, 1500)
    comp = composition(a)
    assert comp.loc["batch1", "type1"] == 0 and comp.loc["batch2", "type4"] == 0
    assert (demo_data(seed=0).X != a.X).nnz == 0


@pytest.mark.slow
def test_counts_large_is_chunked_and_fast():
    import time

    t0 = time.perf_counter()
    a = simulate_counts(n_cells=10_000, n_genes=2000, seed=0)  # three chunks
    assert a.shape == (10_000, 2000) and sp.isspmatrix_csr(a.X)
    assert time.perf_counter() - t0 < 60


# ---------------------------------------------------------------- simulate_gaussian_2d
def test_gaussian_structure():
    a = simulate_gaussian_2d(seed=0)
    assert a.shape == (2100, 100) and a.X.dtype == np.float32 and not sp.issparse(a.X)
    assert a.obsm["X_true_2d"].shape == (2100, 2)
    assert a.obs["batch"].value_counts().sort_index().tolist() == [1000, 1100]
    assert a.obs_names.is_unique and "not counts" in a.uns["note"]
    # the true coordinates sit around the published centres
    centres = pd.DataFrame(a.obsm["X_true_2d"]).groupby(a.obs["cell_type"].to_numpy()).mean()
    assert np.allclose(centres.to_numpy(), [[0, 5], [5, 5], [5, 0], [0, 0]], atol=0.15)


def test_gaussian_model_is_projection_plus_batch_shift():
    """X - true_2d @ P^T is noise plus a per-batch gene vector: zero for batch1, non-zero for batch2."""
    a = simulate_gaussian_2d(n_cells_per_batch=(2000, 2000), seed=1)
    resid = a.X - a.obsm["X_true_2d"] @ a.varm["projection"].T
    b1 = (a.obs["batch"] == "batch1").to_numpy()
    assert np.abs(resid[b1].mean(0)).max() < 0.12  # 4 SE of a mean of 2000 N(0,1)
    assert np.abs(resid[~b1].mean(0)).mean() > 0.5  # E|N(0,1)| = 0.8
    assert abs(resid[b1].std() - 1.0) < 0.02


def test_gaussian_seeds_experiments_and_separability():
    a, b = simulate_gaussian_2d(seed=2), simulate_gaussian_2d(seed=2)
    assert np.array_equal(a.X, b.X)
    assert not np.array_equal(a.X, simulate_gaussian_2d(seed=3).X)
    Z = log_pca(a.X, n_comps=10, counts=False)
    assert same_label_fraction(Z, a.obs["cell_type"]) > 0.95
    assert same_label_fraction(Z, a.obs["batch"]) > 0.8
    comp = composition(simulate_gaussian_2d(n_cells_per_batch=(300, 300, 300), experiment="removal2", seed=0))
    assert comp.shape == (3, 4)
    assert comp.loc["batch1", "type1"] == 0 and comp.loc["batch2", "type4"] == 0
    assert (comp.drop(index="batch1", columns="type4") > 0).all().all() and comp.loc["batch3"].gt(0).all()


def test_gaussian_bad_input():
    with pytest.raises(ValueError, match="every batch needs at least one cell"):
        simulate_gaussian_2d(n_cells_per_batch=(100, 0))
    with pytest.raises(ValueError, match="n_genes must be >= 2"):
        simulate_gaussian_2d(n_genes=1)
