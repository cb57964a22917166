"""fastMNN: the core's steps against hand computations, behaviour on simulated counts, order, bad input, saving."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import scintegrate as si
from scintegrate.models import FastMNN
from scintegrate.models import _fastmnn_core as core
from scintegrate.neighbors import knn


@pytest.fixture(scope="module")
def sim():
    """The default count simulation: 2 batches, 4 types shared by both."""
    return si.datasets.simulate_counts(n_cells=2000, n_genes=1000, seed=0)


def _fit(adata, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FastMNN(**kw).fit(adata, batch_key="batch")


# ------------------------------------------------------------------------------------------ the core's steps
def test_multibatch_pca_is_the_svd_in_which_each_batch_weighs_the_same():
    rng = np.random.default_rng(0)
    sizes = [10, 20, 30]
    X = np.concatenate([rng.normal(size=(n, 8)) + b for b, n in enumerate(sizes)]).astype(np.float32)
    codes = np.repeat(np.arange(3), sizes)
    scores, rotation, center = core.multibatch_pca(X, codes, 3, 3, seed=0)
    expected_center = np.mean([X[codes == b].mean(0) for b in range(3)], 0)
    W = (1 / np.sqrt(np.asarray(sizes)))[codes][:, None]
    _, _, Vt = np.linalg.svd(W * (X - expected_center), full_matrices=False)
    Vt = Vt[:3] * np.sign(Vt[:3][np.arange(3), np.abs(Vt[:3]).argmax(1)])[:, None]
    np.testing.assert_allclose(center.numpy(), expected_center, atol=1e-5)
    np.testing.assert_allclose(rotation.numpy(), Vt.T, atol=1e-4)
    np.testing.assert_allclose(scores.numpy(), (X - expected_center) @ Vt.T, atol=1e-4)


def test_center_along_removes_only_the_variation_along_the_vector():
    rng = np.random.default_rng(1)
    M, v = torch.as_tensor(rng.normal(size=(30, 4))), torch.as_tensor([3.0, 0.0, 4.0, 0.0], dtype=torch.float64)
    out = core.center_along(M, v)
    unit = v / v.norm()
    np.testing.assert_allclose((out @ unit).numpy(), np.full(30, float((M @ unit).mean())), atol=1e-12)
    moved = out - M
    np.testing.assert_allclose((moved - (moved @ unit)[:, None] * unit).numpy(), 0, atol=1e-12)  # along v only
    sub = core.center_along(M, v, rows=torch.arange(5))
    np.testing.assert_allclose((sub @ unit).numpy(), np.full(30, float((M[:5] @ unit).mean())), atol=1e-12)


def test_average_correction_and_tricube_average_by_hand():
    left = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
    right = torch.tensor([[1.0, 1.0], [1.0, 1.0], [5.0, 5.0]])
    corr, cells = core.average_correction(left, right, np.array([0, 1, 2]), np.array([0, 0, 2]))
    assert cells.tolist() == [0, 2]
    np.testing.assert_allclose(corr.numpy(), [[0.0, -1.0], [-5.0, -1.0]])  # mean of (-1,-1), (1,-1); (-5,-1)
    values = torch.tensor([[1.0], [2.0], [3.0]])
    dist = torch.tensor([[1.0, 2.0, 4.0]])
    rel = np.array([1, 2, 4]) / (3 * 2.0)  # bandwidth: ndist x the 2nd (middle of 3) distance
    w = (1 - rel ** 3) ** 3
    expected = (w / w.sum()) @ np.array([1.0, 2.0, 3.0])
    got = core.tricube_average(values, torch.tensor([[0, 1, 2]]), dist, ndist=3.0)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    far = core.tricube_average(values, torch.tensor([[0, 1, 2]]), torch.tensor([[1.0, 1.0, 10.0]]), ndist=3.0)
    assert float(far) == pytest.approx(1.5, rel=1e-6)  # beyond the bandwidth: weight 0
    zero = core.tricube_average(values, torch.tensor([[2]]), torch.tensor([[0.0]]))
    assert float(zero) == 3.0  # a zero distance: the 1e-8 floor of the bandwidth, no NaN


def test_mnn_pairs_are_exactly_the_mutual_neighbours():
    rng = np.random.default_rng(2)
    A, B = rng.normal(size=(40, 3)), rng.normal(size=(25, 3)) + 0.5
    D = np.linalg.norm(A[:, None] - B[None], axis=2)
    k = 4
    nn_ab, nn_ba = np.argsort(D, 1)[:, :k], np.argsort(D, 0)[:k].T
    expected = sorted((a, b) for a in range(40) for b in nn_ab[a] if a in nn_ba[b])
    a, b = core.mnn_pairs(torch.as_tensor(A, dtype=torch.float32), torch.as_tensor(B, dtype=torch.float32), k)
    assert sorted(zip(a.tolist(), b.tolist())) == expected


def test_inverted_list_search_finds_most_exact_pairs_and_is_used_above_exact_max(monkeypatch):
    """``knn_method="ivf"`` searches a side of more than EXACT_MAX rows by inverted lists: on four clusters of
    1,200 + 800 cells (lists of ~35 cells, a tenth probed) most exact MNN pairs are found and none is new junk."""
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(4, 6)) * 6
    A = np.concatenate([rng.normal(size=(300, 6)) + c for c in centres])
    B = np.concatenate([rng.normal(size=(200, 6)) + c + 0.5 for c in centres])
    A, B = torch.as_tensor(A, dtype=torch.float32), torch.as_tensor(B, dtype=torch.float32)
    exact = set(zip(*(v.tolist() for v in core.mnn_pairs(A, B, 10))))
    assert set(zip(*(v.tolist() for v in core.mnn_pairs(A, B, 10, "ivf")))) == exact  # below EXACT_MAX: exact
    monkeypatch.setattr(core, "EXACT_MAX", 500)
    calls = []
    real = core.knn_into_approx

    def recorded(Q, R, *args, **kwargs):  # the size of each reference searched through the lists
        calls.append(R.shape[0])
        return real(Q, R, *args, **kwargs)
    monkeypatch.setattr(core, "knn_into_approx", recorded)
    approx = set(zip(*(v.tolist() for v in core.mnn_pairs(A, B, 10, "ivf"))))
    assert sorted(calls) == [800, 1200]  # both directions through the lists
    assert len(approx & exact) >= 0.8 * len(exact)
    label_a, label_b = np.repeat(np.arange(4), 300), np.repeat(np.arange(4), 200)
    assert all(label_a[a] == label_b[b] for a, b in approx)


def test_a_merge_removes_a_shift_and_keeps_the_clusters_apart():
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0, 0, 0], [6, 0, 0, 0]])
    shift = np.array([0.0, 5, 5, 0])
    one = np.concatenate([rng.normal(size=(150, 4)) * 0.5 + c for c in centres])
    two = np.concatenate([rng.normal(size=(100, 4)) * 0.5 + c + shift for c in centres])
    E = torch.as_tensor(np.r_[one, two], dtype=torch.float32)
    out = core.merge_all(E, [np.arange(300), np.arange(300, 500)], [0, 1], k=20)
    C = out.corrected.numpy()
    for c, (r1, r2) in enumerate([(slice(0, 150), slice(300, 400)), (slice(150, 300), slice(400, 500))]):
        assert np.linalg.norm(C[r1].mean(0) - C[r2].mean(0)) < 0.1 * np.linalg.norm(shift)
    assert np.linalg.norm(C[:150].mean(0) - C[150:300].mean(0)) > 5  # the two clusters stay 6 apart
    assert out.lost_variance.shape == (1, 2) and (out.lost_variance < 0.2).all()
    lab = np.r_[np.repeat([0, 1], 150), np.repeat([0, 1], 100)]
    pairs = out.pairs[0]
    assert (lab[pairs[:, 0]] == lab[pairs[:, 1]]).all()


# ------------------------------------------------------------------------------------------ the model
def test_mnn_pairs_join_cells_of_the_same_type_and_the_batches_mix(sim):
    """The default count simulation: 95.9% of the MNN pairs join cells of one type (>= 0.9 expected); the
    batches mix far more than in the uncorrected PCA and the types stay apart."""
    model = _fit(sim)
    lab, bat = sim.obs["cell_type"].astype(str).to_numpy(), sim.obs["batch"].astype(str).to_numpy()
    pairs = model.pairs_
    assert pairs.shape[1] == 3 and (pairs[:, 0] == 0).all() and len(pairs) > 1000
    assert (bat[pairs[:, 1]] != bat[pairs[:, 2]]).all()
    assert (lab[pairs[:, 1]] == lab[pairs[:, 2]]).mean() >= 0.9
    base = si.integrate(sim.copy(), method="pca", progress=False, copy=True).obsm["X_pca_baseline"]
    mix = {}
    for name, E in (("fastmnn", model.embed()), ("pca", base)):
        idx = knn(E, 16)[0][:, 1:]
        mix[name] = ((bat[idx] != bat[:, None]).mean(), (lab[idx] == lab[:, None]).mean())
    assert mix["fastmnn"][0] > mix["pca"][0] + 0.2 and mix["fastmnn"][1] > 0.9, mix
    assert model.embed().shape == (sim.n_obs, 50) and model.merge_order_ == ["batch1", "batch2"]


def test_the_result_does_not_depend_on_the_order_of_the_cells_or_of_the_batch_categories(sim):
    sub = sim[::3].copy()
    first = _fit(sub)
    perm = np.random.default_rng(0).permutation(sub.n_obs)
    shuffled = sub[perm].copy()
    shuffled.obs["batch"] = shuffled.obs["batch"].cat.reorder_categories(
        list(shuffled.obs["batch"].cat.categories[::-1]))
    second = _fit(shuffled)
    np.testing.assert_allclose(second.embed(), first.embed()[perm], atol=2e-4)
    a = {tuple(p) for p in first.pairs_[:, 1:].tolist()}
    b = {(int(perm[i]), int(perm[j])) for i, j in second.pairs_[:, 1:].tolist()}
    assert a == b


def test_merge_order_default_given_and_auto():
    adata = si.datasets.simulate_counts(n_cells=900, n_genes=300, n_batches=3, seed=1)
    sizes = adata.obs["batch"].value_counts()
    default = _fit(adata, d=10)
    assert default.merge_order_[0] == sizes.idxmax()
    given = ["batch3", "batch1", "batch2"]
    model = _fit(adata, d=10, merge_order=given)
    assert model.merge_order_ == given and list(model.merges_) == ["batch3 <- batch1", "batch3+batch1 <- batch2"]
    with pytest.raises(ValueError, match="merge_order must name every batch once; missing \\['batch2'\\]"):
        FastMNN(merge_order=["batch1", "batch3"]).fit(adata, batch_key="batch")
    with pytest.raises(ValueError, match="merge_order must be None, 'auto' or a list"):
        FastMNN(merge_order="size")
    auto = _fit(adata, d=10, merge_order="auto")
    assert sorted(auto.merge_order_) == ["batch1", "batch2", "batch3"]
    assert len(auto.merges_) == 2 and np.isfinite(auto.embed()).all()


def test_auto_merge_takes_the_pair_with_the_most_mnn_pairs_first():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(120, 5)), rng.normal(size=(120, 5)) + 0.2  # a and b alike
    c = rng.normal(size=(120, 5)) * 2.0 + np.array([8.0, 0, 0, 0, 0])  # c far and wider
    E = torch.as_tensor(np.r_[a, b, c], dtype=torch.float32)
    cells = [np.arange(120), np.arange(120, 240), np.arange(240, 360)]
    groups = [core.Group(rows, E[torch.as_tensor(rows)], [i]) for i, rows in enumerate(cells)]
    counts = {(i, j): core._count_pairs(groups[i], groups[j], 10) for i in range(3) for j in range(i)}
    out = core.merge_all(E, cells, None, k=10)
    best = max(counts, key=counts.get)
    assert best == (1, 0) and (out.left[0], out.right[0]) == ([1], [0])  # batchelor: left is the later group
    assert sorted(out.left[1] + out.right[1]) == [0, 1, 2]


def test_save_and_load_keep_the_pairs_the_order_and_the_lost_variance(sim, tmp_path):
    model = _fit(sim[::3].copy(), d=10)
    model.save(tmp_path / "m")
    back = FastMNN.load(tmp_path / "m")
    np.testing.assert_array_equal(back.embed(), model.embed())
    np.testing.assert_array_equal(back.pairs_, model.pairs_)
    np.testing.assert_array_equal(back.lost_variance_, model.lost_variance_)
    assert back.merge_order_ == model.merge_order_ and back.to_result().info["n_pairs"].sum() == len(model.pairs_)


# ------------------------------------------------------------------------------------------ bad input
def test_a_batch_smaller_than_k_caps_k_and_warns(sim):
    adata = sim[::5].copy()
    tiny = adata.obs["batch"].cat.add_categories("tiny")
    tiny[:5] = "tiny"
    adata.obs["batch"] = tiny
    with pytest.warns(UserWarning, match="1 batch\\(es\\) hold fewer than k=20 cells \\('tiny': 5\\)"):
        model = FastMNN(d=10).fit(adata, batch_key="batch")
    assert np.isfinite(model.embed()).all() and model.merge_order_[-1] == "tiny"


def test_more_dimensions_than_cells_are_capped_with_a_warning(sim):
    adata = sim[::67].copy()
    with pytest.warns(UserWarning, match="d=50 capped at 29"):
        model = FastMNN().fit(adata, batch_key="batch")
    assert model.embed().shape == (30, 29) and np.isfinite(model.embed()).all()


def test_genes_missing_from_one_batch_and_batches_that_share_no_type_give_finite_values():
    disjoint = si.datasets.simulate_counts(n_cells=600, n_genes=300, seed=3,
                                           experiment={"batch1": ["type1", "type2"], "batch2": ["type3", "type4"]})
    X = disjoint.X.toarray() if hasattr(disjoint.X, "toarray") else np.asarray(disjoint.X)
    X[(disjoint.obs["batch"] == "batch1").to_numpy()[:, None] & (np.arange(X.shape[1]) < 100)[None, :]] = 0
    disjoint.X = X
    before = disjoint.copy()
    model = _fit(disjoint, d=10)
    assert np.isfinite(model.embed()).all()
    np.testing.assert_array_equal(disjoint.X, before.X)  # the AnnData is not changed by fit


def test_few_pairs_are_warned_about(sim, monkeypatch):
    from scintegrate.models import fastmnn

    monkeypatch.setattr(fastmnn, "FEW_PAIRED", 1.01)  # every merge pairs fewer than 101% of its cells
    with pytest.warns(UserWarning, match="few mutual nearest neighbour pairs when merging batch2 onto batch1: "
                                         "\\d+ pairs, [\\d.]+% of its cells"):
        FastMNN(d=10).fit(sim[::5].copy(), batch_key="batch")


def test_a_small_batch_mixes_only_with_cell_weighting_of_the_pca():
    """A batch of 149 cells beside one of 750: with batchelor's equal batch weights its own noise fills the
    trailing components and the large batch's cells see almost none of it (measured 0.018 of their neighbours);
    with every cell weighted the same it mixes (0.287; perfect mixing 0.166). ``fastmnn_design.md``."""
    sim = si.datasets.simulate_counts(n_cells=1500, n_genes=500, seed=0)
    b = sim.obs["batch"].astype(str).to_numpy()
    adata = sim[(b != "batch1") | (np.random.default_rng(0).random(len(b)) < 0.2)].copy()
    bat = adata.obs["batch"].astype(str).to_numpy()
    share = {}
    for weighting in ("batch", "cell"):
        idx = knn(_fit(adata, pca_weighting=weighting).embed(), 16)[0][:, 1:]
        share[weighting] = (bat[idx][bat != "batch1"] == "batch1").mean()
    assert share["batch"] < 0.06 and share["cell"] > 0.12, share
    X = np.random.default_rng(1).normal(size=(30, 6)).astype(np.float32)
    scores, _, center = core.multibatch_pca(X, np.zeros(30, dtype=np.int64), 1, 3, seed=0)  # the plain PCA
    s_exact = np.linalg.svd(X - X.mean(0), compute_uv=False)[:3]
    np.testing.assert_allclose(center.numpy(), X.mean(0), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(scores.numpy(), axis=0), s_exact, rtol=1e-3)


def test_bad_parameters_are_refused_in_one_line():
    for kw, msg in (({"k": 0}, "k and d must be >= 1"), ({"ndist": 0}, "ndist > 0"), ({"d": 0}, "k and d"),
                    ({"knn_method": "annoy"}, "knn_method must be 'auto', 'exact' or 'ivf'"),
                    ({"pca_weighting": "gene"}, "pca_weighting must be 'batch' or 'cell'")):
        with pytest.raises(ValueError, match=msg):
            FastMNN(**kw)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            FastMNN(device="cuda")


# ------------------------------------------------------------------------------------------ batch-specific types
def _neighbour_shares(adata, E):
    lab, bat = adata.obs["cell_type"].astype(str).to_numpy(), adata.obs["batch"].astype(str).to_numpy()
    table = pd.crosstab(lab, bat)
    shared = np.isin(lab, [t for t in table.index if (table.loc[t] > 0).all()])
    idx = knn(E, 16)[0][:, 1:]
    same, other = (lab[idx] == lab[:, None]).mean(1), (bat[idx] != bat[:, None]).mean(1)
    return other[shared].mean(), same[shared].mean(), same[~shared].mean()


def test_removal2_merges_the_shared_types_and_keeps_the_batch_specific_ones_above_chance():
    """removal2 (type1 only in batch2, type4 only in batch1). The shared types mix (other-batch neighbours 0.53
    against the PCA's 0.08) and stay pure. The two batch-specific types are paired with each other by MNN (each
    is the other batch's nearest), so fastMNN pulls them together: same-type neighbours 0.46-0.56 over seeds 0-2,
    against the PCA's 0.92-0.95 (Harmony 0.50, Scanorama 0.68, BERMUDA 0.96 on seed 0); held above 0.4, the
    measured floor (chance: 0.25)."""
    adata = si.datasets.simulate_counts(n_cells=2000, n_genes=1000, experiment="removal2", seed=0)
    other, shared_same, specific_same = _neighbour_shares(adata, _fit(adata).embed())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = si.integrate(adata.copy(), method="pca", progress=False, copy=True).obsm["X_pca_baseline"]
    base_other, _, _ = _neighbour_shares(adata, base)
    assert other > base_other + 0.3 and shared_same > 0.9, (other, base_other, shared_same)
    assert specific_same > 0.4, specific_same
