"""Harmony: the numeric core against hand values and numpy re-computations, conformance with R harmony,
quality on a simulated embedding, the input paths (embedding / PCA of expression), several covariates,
convergence, bad input and save / load."""

import math
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

import scintegrate as si
from scintegrate.models import Harmony
from scintegrate.models import _harmony_core as core


# ------------------------------------------------------------------------------------------ the numeric core
def _onehot(gcodes, n_total):
    """Dense ``Phi`` (cells x all levels): one 1 per covariate in every row."""
    Phi = np.zeros((gcodes.shape[0], n_total))
    for c in range(gcodes.shape[1]):
        Phi[np.arange(gcodes.shape[0]), gcodes[:, c]] += 1.0
    return Phi


def _softmax(x):
    e = np.exp(x - x.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_cosine_normalize_scales_rows_and_keeps_zero_rows():
    Z = torch.tensor([[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]])
    np.testing.assert_allclose(core.cosine_normalize(Z).numpy(), [[0.6, 0.8], [0, 0], [0, -1]])


def test_diversity_penalty_hand_values():
    O = torch.tensor([[2.0, 0.0], [-1e-9, 1.0]], dtype=torch.float64)  # a tiny negative O (round-off) counts as 0
    E = torch.tensor([[1.0, 1.0], [2.0, 0.5]], dtype=torch.float64)
    got = core.diversity_penalty(O, E, torch.tensor([2.0, 0.5], dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, [[2 * math.log(3), 0.0], [0.0, 0.5 * math.log(3)]], atol=1e-12)


def test_per_level_expands_one_value_per_covariate():
    np.testing.assert_array_equal(core.per_level(2.0, [2, 3], "theta").numpy(), [2, 2, 2, 2, 2])
    np.testing.assert_array_equal(core.per_level([1.0, 3.0], [2, 1], "theta").numpy(), [1, 1, 3])
    with pytest.raises(ValueError, match=r"theta needs one value per covariate \(2\), got 3"):
        core.per_level([1, 2, 3], [2, 2], "theta")


def test_convergence_is_an_absolute_relative_change():
    assert core.converged([100.0, 99.99999], 1e-5)
    assert not core.converged([100.0, 99.0], 1e-5)
    # a rising objective is not converged (R harmony's signed (old - new) / |old| < eps would stop here)
    assert not core.converged([100.0, 101.0], 1e-5)
    assert not core.converged([5.0], 1e-5)  # nothing to compare with
    # window 3: sums of the last three against the three before them
    values = [10.0, 9.0, 8.0, 7.0, 6.9999]
    assert core.converged(values, 1e-3, window=3) == (abs(sum(values[1:4]) - sum(values[2:5])) / sum(values[1:4])
                                                      < 1e-3)
    assert not core.converged([1.0, 2.0, 3.0], 1e-3, window=3)


def test_global_codes_and_observed_counts():
    codes = torch.tensor([[0, 1], [1, 0], [1, 2]])
    gc = core.global_codes(codes, [2, 3])
    np.testing.assert_array_equal(gc.numpy(), [[0, 3], [1, 2], [1, 4]])
    R = torch.tensor([[0.2, 0.8], [1.0, 0.0], [0.5, 0.5]])
    np.testing.assert_allclose(core.observed(R, gc, 5).numpy(), _onehot(gc.numpy(), 5).T @ R.numpy(), rtol=1e-6)


def _random_state(n=40, K=4, d=5, n_levels=(2, 3), seed=0):
    rng = np.random.default_rng(seed)
    codes = np.stack([rng.integers(0, L, n) for L in n_levels], axis=1)
    codes[:max(n_levels)] = np.arange(max(n_levels))[:, None] % np.array(n_levels)  # every level present
    Zc = rng.normal(size=(n, d))
    Zc /= np.linalg.norm(Zc, axis=1, keepdims=True)
    Y = rng.normal(size=(K, d))
    Y /= np.linalg.norm(Y, axis=1, keepdims=True)
    R = _softmax(rng.normal(size=(n, K)) * 2)
    return codes, Zc, Y, R


def test_objective_equals_a_direct_numpy_computation():
    codes, Zc, Y, R = _random_state()
    n_levels, sigma = [2, 3], 0.1
    theta = np.array([2.0, 2.0, 0.5, 0.5, 0.5])
    gc = core.global_codes(torch.as_tensor(codes), n_levels).numpy()
    Phi = _onehot(gc, 5)
    d = 2 * (1 - Zc @ Y.T)
    O = Phi.T @ R
    E = (Phi[:, :2].sum(0) / len(R))[:, None] * R.sum(0)[None]  # Pr_b of the first covariate ...
    E = np.vstack([E, (Phi[:, 2:].sum(0) / len(R))[:, None] * R.sum(0)[None]])  # ... and of the second
    per_cell = sum(theta[gc[:, c]][:, None] * np.log((O[gc[:, c]] + E[gc[:, c]]) / E[gc[:, c]])
                   for c in range(2))  # the penalty of each cell's own batches
    want = 2000 / len(R) * ((R * d).sum() + sigma * (R * np.log(R)).sum() + sigma * (R * per_cell).sum())
    t = lambda x: torch.as_tensor(x, dtype=torch.float64)
    got = core.objective(float((R * d).sum()), float((R * np.log(R)).sum()), t(O), t(E), t(theta), sigma, len(R))
    assert got == pytest.approx(want, rel=1e-10)


def test_block_assignments_equal_a_numpy_recomputation():
    codes, Zc, Y, R0 = _random_state(n=23, seed=1)
    n_levels, sigma, theta = [2, 3], 0.1, np.array([2.0, 2.0, 1.0, 1.0, 1.0])
    gc = core.global_codes(torch.as_tensor(codes), n_levels)
    Phi = _onehot(gc.numpy(), 5)
    pr_b = Phi.sum(0) / len(R0)
    logits = -2 * (1 - Zc @ Y.T) / sigma
    # numpy: every block's cells leave O and E, get softmax(logits - sum of their batches' penalties), come back
    order = torch.randperm(23, generator=torch.Generator().manual_seed(7)).numpy()
    R = R0.copy()
    for idx in np.split(order, [5, 10, 15]):  # block_size 0.25 of 23 cells: 5, 5, 5 and the last 8
        O = Phi.T @ R - Phi[idx].T @ R[idx]
        E = pr_b[:, None] * (R.sum(0) - R[idx].sum(0))[None]
        R[idx] = _softmax(logits[idx] - Phi[idx] @ (theta[:, None] * np.log((O + E) / E)))
    t = lambda x: torch.as_tensor(x, dtype=torch.float64)
    Rt, O_t, mass = t(R0).clone(), t(Phi.T @ R0), t(R0.sum(0))
    fit_term, ent = core.soft_assign_blocks(Rt, t(logits), O_t, mass, gc, t(pr_b), t(theta), 0.25,
                                            torch.Generator().manual_seed(7), n_levels[0])
    np.testing.assert_allclose(Rt.numpy(), R, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(O_t.numpy(), Phi.T @ R, atol=1e-9)  # O and the mass are kept current
    np.testing.assert_allclose(mass.numpy(), R.sum(0), atol=1e-9)
    assert fit_term == pytest.approx((R * logits).sum(), rel=1e-9)
    assert ent == pytest.approx((R * np.log(R)).sum(), rel=1e-9)


def test_one_block_of_all_cells_is_a_plain_softmax():
    codes, Zc, Y, R0 = _random_state(n=30, seed=2)
    gc = core.global_codes(torch.as_tensor(codes), [2, 3])
    logits = -2 * (1 - Zc @ Y.T) / 0.1
    t = lambda x: torch.as_tensor(x, dtype=torch.float64)
    Phi = _onehot(gc.numpy(), 5)
    R = t(R0).clone()
    core.soft_assign_blocks(R, t(logits), t(Phi.T @ R0), t(R0.sum(0)), gc, t(Phi.sum(0) / 30),
                            t(np.full(5, 2.0)), 1.0, torch.Generator().manual_seed(0), 2)
    np.testing.assert_allclose(R.numpy(), _softmax(logits), rtol=1e-9)  # no other cells: O = E = 0, no penalty


def _ridge_numpy(Z, R, gc, n_total, lamb_diag):
    """Per cluster: W = ([1,Phi]^T R_k [1,Phi] + diag(0, lamb))^-1 [1,Phi]^T R_k Z, intercept row kept out."""
    X = np.hstack([np.ones((len(Z), 1)), _onehot(gc, n_total)])
    out = Z.astype(np.float64).copy()
    for k in range(R.shape[1]):
        A = X.T @ (R[:, k:k + 1] * X) + np.diag(np.concatenate([[0.0], lamb_diag[k]]))
        W = np.linalg.solve(A, X.T @ (R[:, k:k + 1] * Z))
        W[0] = 0.0
        out -= R[:, k:k + 1] * (X @ W)
    return out


@pytest.mark.parametrize("lamb", ["fixed", "estimated"])
def test_ridge_correction_equals_a_numpy_solve(lamb):
    codes, _, _, R = _random_state(n=50, K=3, seed=3)
    Z = np.random.default_rng(3).normal(size=(50, 4)).astype(np.float32)
    design = core.Design(torch.as_tensor(codes), [2, 3])
    gc = design.gcodes.numpy()
    if lamb == "fixed":
        lamb_b = np.array([1.0, 1.0, 0.3, 0.3, 0.3])
        lamb_diag, lamb_t = np.tile(lamb_b, (3, 1)), torch.as_tensor(lamb_b)
    else:  # Harmony 2: alpha * E_kb = alpha * Pr_b * sum_i R_ik
        lamb_diag = 0.2 * (_onehot(gc, 5).sum(0) / 50)[None] * R.sum(0)[:, None]
        lamb_t = None
    got, W = core.ridge_correct(torch.as_tensor(Z), torch.as_tensor(R, dtype=torch.float32), design, lamb_t, 0.2)
    np.testing.assert_allclose(got.numpy(), _ridge_numpy(Z, R, gc, 5, lamb_diag), atol=1e-4)
    assert W.shape == (3, 6, 4) and (W[:, 0] == 0).all()


def test_ridge_with_one_hard_cluster_moves_every_batch_mean_to_the_intercept():
    rng = np.random.default_rng(4)
    sizes = [10, 30, 60]  # unequal: the intercept is the plain mean of the batch means, not the grand mean
    batch = np.repeat([0, 1, 2], sizes)
    Z = (rng.normal(size=(100, 3)) + np.array([[5, 0, 0], [0, -4, 0], [1, 1, 8]])[batch]).astype(np.float32)
    R = torch.ones(100, 1)
    design = core.Design(torch.as_tensor(batch[:, None]), [3])
    means = np.stack([Z[batch == b].mean(0) for b in range(3)])
    # lamb -> 0: the least-squares fit with the smallest batch coefficients; the unpenalised intercept is the
    # mean of the batch means and stays in the data
    want = Z - (means - means.mean(0))[batch]
    got, W = core.ridge_correct(torch.as_tensor(Z), R, design, torch.full((3,), 1e-6, dtype=torch.float64))
    np.testing.assert_allclose(got.numpy(), want, atol=1e-3)
    np.testing.assert_allclose(W[0, 1:].numpy(), means - means.mean(0), atol=1e-3)
    assert not np.allclose(means.mean(0), Z.mean(0), atol=0.1)  # the two centres differ here
    huge, _ = core.ridge_correct(torch.as_tensor(Z), R, design, torch.full((3,), 1e8, dtype=torch.float64))
    np.testing.assert_allclose(huge.numpy(), Z, atol=1e-3)  # batch coefficients shrunk away, intercept kept


def test_kmeans_finds_separated_blobs():
    rng = np.random.default_rng(5)
    centres = np.array([[10.0, 0, 0], [0, 10, 0], [0, 0, 10]])
    X = torch.as_tensor(np.repeat(centres, 50, axis=0) + rng.normal(scale=0.1, size=(150, 3)), dtype=torch.float32)
    C = core.kmeans(X, 3, torch.Generator().manual_seed(0)).numpy()
    np.testing.assert_allclose(C[np.argsort(C.argmax(1))], centres, atol=0.1)


def test_run_harmony_returns_assignments_and_a_history():
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(300, 5, generator=g)
    codes = torch.randint(0, 2, (300, 1), generator=g)
    seen = []
    fit = core.run_harmony(Z, codes, [2], n_clusters=5, max_iter=3, generator=g,
                           callback=lambda i, f: seen.append(i))
    assert seen == list(range(fit.n_iter)) and len(fit.objective_harmony) == fit.n_iter + 1
    assert len(fit.kmeans_rounds) == fit.n_iter and all(1 <= r <= 20 for r in fit.kmeans_rounds)
    np.testing.assert_allclose(fit.R.sum(1).numpy(), 1.0, atol=1e-5)
    assert fit.Z_corr.shape == Z.shape and torch.isfinite(fit.Z_corr).all()


# ------------------------------------------------------------------------------------------ the model
def _embedding_data(n=2000, n_batches=3, n_types=5, dim=20, seed=0, shift=2.0):
    """Cell types (well apart) shifted per batch: an embedding for Harmony to correct."""
    rng = np.random.default_rng(seed)
    types, batch = rng.integers(0, n_types, n), rng.integers(0, n_batches, n)
    Z = rng.normal(0, 5, (n_types, dim))[types] + rng.normal(0, shift, (n_batches, dim))[batch] + rng.normal(
        size=(n, dim))
    obs = pd.DataFrame({"batch": [f"b{b}" for b in batch], "cell_type": [f"t{t}" for t in types]},
                       index=[f"c{i}" for i in range(n)])
    adata = ad.AnnData(obs=obs)
    adata.obsm["X_pca"] = Z.astype(np.float32)
    return adata


@pytest.fixture(scope="module")
def emb():
    return _embedding_data(n=400, dim=8)


@pytest.fixture(scope="module")
def counts():
    return si.datasets.simulate_counts(n_cells=300, n_genes=200, seed=0)


def _fit(adata, batch_key="batch", **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the small data sets here need not converge
        return Harmony(**{"n_clusters": 10, "device": "cpu", **kw}).fit(adata, batch_key=batch_key)


@pytest.mark.filterwarnings("ignore:Harmony stopped after max_iter")  # R's signed test stops earlier
def test_conformance_with_r_harmony_on_pbmc_3500(shared_data):
    ref = shared_data / "reference"
    if not (ref / "pbmc_3500_pcs_harmonized.tsv.gz").exists():
        pytest.skip(f"R harmony reference not found in {ref}")
    pcs = pd.read_csv(ref / "pbmc_3500_pcs.tsv.gz", sep="\t")
    meta = pd.read_csv(ref / "pbmc_3500_meta.tsv.gz", sep="\t")
    want = pd.read_csv(ref / "pbmc_3500_pcs_harmonized.tsv.gz", sep="\t").to_numpy()
    adata = ad.AnnData(obs=pd.DataFrame({"donor": meta["donor"].astype(str).to_numpy()},
                                        index=[f"c{i}" for i in range(len(meta))]))
    adata.obsm["X_pca"] = pcs.to_numpy(np.float32)
    for seed in range(3):  # the K-means start and the block order change with the seed; the result hardly
        model = Harmony(seed=seed, device="cpu").fit(adata, batch_key="donor")
        r = [np.corrcoef(model.embedding_[:, j], want[:, j])[0, 1] for j in range(want.shape[1])]
        assert min(r) >= 0.99, (seed, np.round(r, 4))
        assert model.n_clusters_ == 100


def test_mixes_batches_and_keeps_cell_types_apart():
    from scintegrate.metrics import ebm, knn_accuracy

    adata = _embedding_data()
    batch, types = adata.obs["batch"].to_numpy(), adata.obs["cell_type"].to_numpy()
    before = adata.obsm["X_pca"]
    after = Harmony(device="cpu").fit(adata, batch_key="batch").embed()
    assert ebm(before, batch) < 0.2 and ebm(after, batch) > 0.8
    assert knn_accuracy(after, types) >= 0.99
    assert after.dtype == np.float32 and after.shape == before.shape


def test_auto_uses_x_pca_and_none_uses_the_expression(counts):
    adata = counts.copy()
    adata.obsm["X_pca"] = np.random.default_rng(0).normal(size=(adata.n_obs, 7)).astype(np.float32)
    auto = _fit(adata)
    assert auto.input_kind_ == "embedding" and auto.embed().shape == (adata.n_obs, 7)
    assert auto.feature_selection_ == "none (embedding input)" and not auto.normalized_
    other = adata.copy()
    other.obsm["X_other"] = adata.obsm["X_pca"] * 2
    assert _fit(other, use_rep="X_other").embed().shape == (adata.n_obs, 7)
    expr = _fit(adata, use_rep=None, n_comps=12)
    assert expr.input_kind_ == "counts" and expr.embed().shape == (adata.n_obs, 12) and expr.normalized_
    assert _fit(adata, n_comps=9).embed().shape == (adata.n_obs, 7)  # X_pca wins: n_comps is for the PCA only


@pytest.mark.filterwarnings("ignore:Harmony stopped after max_iter")
def test_counts_without_x_pca_go_through_the_pca(counts):
    adata = counts.copy()
    si.integrate(adata, method="harmony", n_comps=10, n_clusters=5, device="cpu", progress=False)
    record = adata.uns["scintegrate"]["X_harmony"]
    assert adata.obsm["X_harmony"].shape == (adata.n_obs, 10) and record["input"] == "counts"
    assert record["normalized"] and "vst" in record["feature_selection"]
    assert "X_pca" not in adata.obsm  # the PCA is private


def test_missing_use_rep_lists_the_obsm_keys(emb):
    with pytest.raises(KeyError) as err:
        Harmony(use_rep="X_umap", device="cpu").fit(emb, batch_key="batch")
    assert "'X_umap' not found in adata.obsm" in err.value.args[0] and "['X_pca']" in err.value.args[0]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_embedding_is_refused_and_nothing_changes(emb, bad):
    adata = emb.copy()
    adata.obsm["X_pca"][5, 1] = bad
    obs, obsm, uns = adata.obs.copy(), {k: v.copy() for k, v in adata.obsm.items()}, dict(adata.uns)
    with pytest.raises(ValueError, match=r"adata.obsm\['X_pca'\] contains 1 NaN or infinite") as err:
        si.integrate(adata, method="harmony", device="cpu", progress=False)
    assert "\n" not in str(err.value)
    pd.testing.assert_frame_equal(adata.obs, obs)
    assert sorted(adata.obsm) == sorted(obsm) and dict(adata.uns) == uns
    np.testing.assert_array_equal(adata.obsm["X_pca"], obsm["X_pca"])


def test_a_batch_of_one_cell_works_on_an_embedding_and_is_refused_for_the_pca(emb, counts):
    adata = emb.copy()
    adata.obs.iloc[0, adata.obs.columns.get_loc("batch")] = "single"
    model = _fit(adata)
    assert np.isfinite(model.embed()).all() and model.embed().shape == adata.obsm["X_pca"].shape
    expr = counts.copy()
    expr.obs["batch"] = expr.obs["batch"].astype(str)
    expr.obs.iloc[0, expr.obs.columns.get_loc("batch")] = "single"
    with pytest.raises(ValueError, match="batch 'single' has 1 cell: the PCA of expression values") as err:
        si.integrate(expr, method="harmony", n_comps=10, device="cpu", progress=False)
    assert "\n" not in str(err.value) and "X_harmony" not in expr.obsm


def test_sizes_and_per_covariate_lists_are_checked(emb):
    small = emb[:40].copy()
    with pytest.raises(ValueError, match="n_clusters=41 is more than the 40 cells"):
        Harmony(n_clusters=41, device="cpu").fit(small, batch_key="batch")
    tiny = si.datasets.simulate_counts(n_cells=40, n_genes=80, seed=0)
    with pytest.raises(ValueError, match="n_comps=50 PCs need more than 50 cells"):
        Harmony(n_comps=50, n_clusters=3, device="cpu").fit(tiny, batch_key="batch")
    with pytest.raises(ValueError, match=r"theta has 2 values for 1 batch column\(s\) \['batch'\]"):
        Harmony(theta=[2.0, 1.0], device="cpu").fit(emb, batch_key="batch")
    with pytest.raises(ValueError, match=r"lamb has 3 values for 1 batch column\(s\)"):
        Harmony(lamb=[1.0, 1.0, 1.0], device="cpu").fit(emb, batch_key="batch")


@pytest.mark.parametrize("bad, message", [({"lamb": 0}, "lamb must be finite and > 0"),
                                          ({"theta": -1}, "theta must be finite and >= 0"),
                                          ({"theta": "high"}, "theta must be a number"),
                                          ({"sigma": 0}, "sigma must be > 0"),
                                          ({"block_size": 0}, "block_size must be in"),
                                          ({"n_clusters": 0}, "n_clusters must be >= 1"),
                                          ({"use_rep": 3}, "use_rep must be an obsm key")])
def test_bad_parameters_give_one_line_errors(bad, message):
    with pytest.raises(ValueError, match=message) as err:
        Harmony(**bad)
    assert "\n" not in str(err.value)


def _two_covariates(n=1200, seed=1):
    """Two crossed covariates (e.g. donor and chemistry), each shifting the embedding."""
    rng = np.random.default_rng(seed)
    b1, b2, types = rng.integers(0, 2, n), rng.integers(0, 3, n), rng.integers(0, 4, n)
    Z = (rng.normal(0, 5, (4, 10))[types] + rng.normal(0, 2, (2, 10))[b1] + rng.normal(0, 2, (3, 10))[b2]
         + rng.normal(size=(n, 10)))
    adata = ad.AnnData(obs=pd.DataFrame({"donor": [f"d{v}" for v in b1], "chem": [f"v{v}" for v in b2],
                                         "cell_type": types.astype(str)}, index=[f"c{i}" for i in range(n)]))
    adata.obsm["X_pca"] = Z.astype(np.float32)
    return adata


def test_several_covariates_are_corrected_together():
    from scintegrate.metrics import ebm

    adata = _two_covariates()
    both = _fit(adata, n_clusters=None, batch_key=["donor", "chem"])
    only = _fit(adata, n_clusters=None, batch_key="donor")
    assert both.batch_key_ == ["donor", "chem"] and only.batch_key_ == "donor"
    chem = adata.obs["chem"].to_numpy()
    assert ebm(both.embed(), chem) > ebm(only.embed(), chem) + 0.2  # the second covariate is mixed too
    assert ebm(both.embed(), adata.obs["donor"].to_numpy()) > 0.8
    no_chem = _fit(adata, n_clusters=None, batch_key=["donor", "chem"], theta=[2.0, 0.0], lamb=[1.0, 1e6])
    assert ebm(no_chem.embed(), chem) < ebm(both.embed(), chem) - 0.2  # theta and lamb are per covariate
    si.integrate(adata, method="harmony", batch_key=["donor", "chem"], theta=[2.0, 1.0], n_clusters=8,
                 device="cpu", progress=False)
    record = adata.uns["scintegrate"]["X_harmony"]
    assert list(record["batch_key"]) == ["donor", "chem"] and adata.obsm["X_harmony"].shape == (adata.n_obs, 10)


def test_a_method_without_multi_batch_refuses_two_columns():
    adata = si.datasets.simulate_counts(n_cells=200, n_genes=100, seed=0)
    adata.obs["other"] = adata.obs["batch"].astype(str)
    assert si.registry.get_spec("harmony").multi_batch and not si.registry.get_spec("pca").multi_batch
    with pytest.raises(ValueError, match=r"method 'pca' takes one batch column, got 2 \(\['batch', 'other'\]\)"):
        si.integrate(adata, method="pca", batch_key=["batch", "other"], progress=False)
    assert "X_pca_baseline" not in adata.obsm


def test_stopping_at_max_iter_warns_once_in_one_line(emb):
    with pytest.warns(UserWarning, match="stopped after max_iter=1 iterations before converging") as caught:
        model = Harmony(max_iter=1, n_clusters=10, device="cpu").fit(emb, batch_key="batch")
    assert len([w for w in caught if "max_iter" in str(w.message)]) == 1 and "\n" not in str(caught[0].message)
    assert not model.converged_ and model.n_iter_ == 1 and len(model.objective_) == 2


def test_fitted_history_and_soft_assignments(emb):
    model = _fit(emb, max_iter=20)
    assert model.converged_ and len(model.objective_) == model.n_iter_ + 1 == len(model.kmeans_rounds_) + 1
    assert np.isfinite(model.objective_).all() and model.objective_[-1] < model.objective_[0]
    np.testing.assert_allclose(model.assignments_.sum(1), 1.0, atol=1e-5)
    assert model.assignments_.shape == (emb.n_obs, 10) and model.centroids_.shape == (10, 8)
    adata = emb.copy()
    si.integrate(adata, method="harmony", n_clusters=10, device="cpu", progress=False)
    assert "harmony_soft" not in adata.obsm
    si.integrate(adata, method="harmony", n_clusters=10, store_assignments=True, device="cpu", progress=False)
    np.testing.assert_allclose(adata.obsm["harmony_soft"].sum(1), 1.0, atol=1e-5)
    assert adata.obsm["harmony_soft"].shape == (adata.n_obs, 10)
    assert adata.uns["scintegrate"]["X_harmony"]["n_clusters"] == 10


def test_same_seed_same_result_and_the_seed_matters(emb):
    first, again = _fit(emb, seed=3).embed(), _fit(emb, seed=3).embed()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, _fit(emb, seed=4).embed())


def test_cuda_goes_through_the_device_logic(emb):
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            Harmony(device="cuda")
        return
    cpu = _fit(emb, device="cpu").embed()
    gpu = _fit(emb, device="cuda").embed()
    np.testing.assert_allclose(gpu, cpu, atol=1e-2)


def test_save_load_keeps_the_history_and_assignments(emb, tmp_path):
    model = _fit(emb, store_assignments=True)
    model.save(tmp_path / "harmony")
    loaded = Harmony.load(tmp_path / "harmony")
    assert loaded.objective_ == model.objective_ and loaded.kmeans_rounds_ == model.kmeans_rounds_
    np.testing.assert_array_equal(loaded.assignments_, model.assignments_)
    np.testing.assert_array_equal(loaded.centroids_, model.centroids_)
    np.testing.assert_array_equal(loaded.embed(), model.embed())
    assert (loaded.n_iter_, loaded.converged_, loaded.n_clusters_) == (model.n_iter_, model.converged_, 10)
    result = loaded.to_result()
    np.testing.assert_array_equal(result.obsm["harmony_soft"], model.assignments_)
    with pytest.raises(NotImplementedError, match="embeds only the cells it was fitted on"):
        loaded.embed(emb)


def _cli(tmp_path, adata, *args):
    """Exit status of ``scintegrate integrate`` on ``adata`` (written to ``tmp_path``) with ``args``."""
    from scintegrate.cli import main

    path = tmp_path / "in.h5ad"
    if not path.exists():
        adata.write_h5ad(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return main(["integrate", str(path), "--quiet", *args])


def test_cli_takes_use_rep_and_per_covariate_lists(tmp_path):
    adata = _two_covariates(n=300)
    adata.obsm["X_scvi"] = adata.obsm.pop("X_pca")
    adata.X = np.zeros((adata.n_obs, 0), dtype=np.float32)
    out = tmp_path / "out.h5ad"
    assert _cli(tmp_path, adata, "--method", "harmony", "--batch-key", "donor", "--out", str(out), "--device", "cpu",
                "--param", "use_rep=X_scvi", "--param", "theta=[2.5]", "--param", "n_clusters=6") == 0
    res = ad.read_h5ad(out)
    assert res.obsm["X_harmony"].shape == (300, 10) and res.uns["scintegrate"]["X_harmony"]["input"] == "embedding"


def test_cli_batch_key_comma_list_corrects_several_columns(tmp_path):
    adata = _two_covariates(n=300)
    adata.X = np.zeros((adata.n_obs, 0), dtype=np.float32)
    out = tmp_path / "out.h5ad"
    assert _cli(tmp_path, adata, "--method", "harmony", "--batch-key", "donor,chem", "--out", str(out),
                "--device", "cpu", "--param", "n_clusters=6", "--param", "theta=[2, 1]") == 0
    assert _cli(tmp_path, adata, "--method", "pca", "--batch-key", "donor,chem",
                "--out", str(tmp_path / "pca.h5ad")) == 2  # pca takes one column
    assert list(ad.read_h5ad(out).uns["scintegrate"]["X_harmony"]["batch_key"]) == ["donor", "chem"]
