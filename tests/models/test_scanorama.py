"""Scanorama: the numeric core against hand-computed values and brute force, invariance to the order of cells
and batches, quality on simulated data, bad input, and (slow) conformance with the scanorama package."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

import scintegrate as si
from scintegrate.models import Scanorama
from scintegrate.models import _scanorama_core as core
from scintegrate.models import _exact_knn
from scintegrate.models._exact_knn import l2_normalize_rows


# ------------------------------------------------------------------------------------------ the numeric core
def _blocks(sizes, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    E = rng.normal(size=(sum(sizes), dim)).astype(np.float32)
    cells, start = [], 0
    for n in sizes:
        cells.append(np.arange(start, start + n))
        start += n
    return E, cells


def _brute_mnn(E, cells, k, metric, scope):
    """Mutual nearest neighbours by brute force (numpy, every distance)."""
    U = E / np.linalg.norm(E, axis=1, keepdims=True)
    batch = np.concatenate([np.full(len(c), b) for b, c in enumerate(cells)])
    D = (np.abs(U[:, None] - U[None]).sum(-1) if metric == "manhattan"
         else np.sqrt(((U[:, None] - U[None]) ** 2).sum(-1)))
    near = set()
    for x in range(len(U)):
        others = [np.flatnonzero(batch != batch[x])] if scope == "others" else [
            np.flatnonzero(batch == b) for b in range(len(cells)) if b != batch[x]]
        for pool in others:
            near |= {(x, y) for y in pool[np.argsort(D[x, pool], kind="stable")[:min(k, len(pool))]]}
    out = {}
    for x, y in near:
        if (y, x) in near and batch[x] < batch[y]:
            i, j = batch[x], batch[y]
            out.setdefault((i, j), set()).add((x - cells[i][0], y - cells[j][0]))
    return out


@pytest.mark.parametrize("metric", ["manhattan", "euclidean"])
@pytest.mark.parametrize("scope", ["others", "pair"])
def test_mutual_nearest_neighbours_equal_brute_force(metric, scope, monkeypatch):
    E, cells = _blocks([12, 15, 9])
    monkeypatch.setattr(_exact_knn, "BLOCK_ELEMENTS", 20)  # many row blocks: the running column top-k is exercised
    got = core.find_matches(E, cells, knn=3, metric=metric, scope=scope, method="exact")
    want = _brute_mnn(E, cells, 3, metric, scope)
    assert set(got) == set(want)
    for key, (a, b) in got.items():
        assert set(zip(a.tolist(), b.tolist())) == want[key]


def test_mutual_pairs_of_a_hand_made_example():
    nn_ab = np.array([[0, 1], [1, 2]])  # a0 -> b0, b1; a1 -> b1, b2
    nn_ba = np.array([[1, 0], [0, 0], [0, 0]])  # b0 -> a1, a0; b1 -> a0; b2 -> a0
    a, b = core.mutual_pairs(nn_ab, nn_ba, n_b=3)
    assert list(zip(a.tolist(), b.tolist())) == [(0, 0), (0, 1)]


@pytest.mark.slow  # pynndescent's numba compilation takes most of a minute on a cold cache
def test_nndescent_search_finds_the_exact_matches(monkeypatch):
    pytest.importorskip("pynndescent")
    E, cells = _blocks([300, 250, 200], dim=8, seed=1)
    exact = core.find_matches(E, cells, knn=10, method="exact")
    monkeypatch.setattr(core, "NNDESCENT_MIN", 100)  # an index for every batch
    approx = core.find_matches(E, cells, knn=10, method="nndescent", seed=0)
    pairs = lambda m: {(k, x, y) for k, (a, b) in m.items() for x, y in zip(a.tolist(), b.tolist())}
    assert len(pairs(exact) & pairs(approx)) >= 0.95 * len(pairs(exact))


def _clustered(sizes, dim=10, n_types=5, seed=0):
    """Batches of cells around shared type centres (structure the inverted lists can use)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_types, dim)) * 3
    E = np.concatenate([centres[rng.integers(0, n_types, n)] + rng.normal(size=(n, dim)) for n in sizes])
    return E.astype(np.float32), [np.arange(sum(sizes[:b]), sum(sizes[:b + 1])) for b in range(len(sizes))]


def test_inverted_lists_partition_the_rows_and_do_not_depend_on_their_order():
    R = torch.as_tensor(_clustered([600])[0])
    C, order, offsets = core._kmeans_lists(R, 12, seed=0)
    assert C.shape == (12, 10) and offsets[-1] == 600
    assert sorted(order.tolist()) == list(range(600))  # every row in exactly one list
    nearest = torch.cdist(R, C).argmin(1)  # after the last round every row is in its nearest centre's list
    for l in range(12):
        assert set(nearest[order[offsets[l]:offsets[l + 1]]].tolist()) <= {l}
    perm = torch.randperm(600, generator=torch.Generator().manual_seed(1))
    C2 = core._kmeans_lists(R[perm], 12, seed=0)[0]
    torch.testing.assert_close(C2, C, atol=1e-4, rtol=1e-4)  # the same centres from the shuffled rows


def test_inverted_list_search_is_exact_when_every_list_is_probed_and_close_when_a_tenth_is():
    E, cells = _clustered([3000, 2500])
    Q, R = (torch.as_tensor(E[c]) for c in cells)
    R = R / R.norm(dim=1, keepdim=True)
    Q = Q / Q.norm(dim=1, keepdim=True)
    exact_i, exact_d = core._knn_into_exact(Q, R, 20, "manhattan")
    lists = core._kmeans_lists(R, 50, seed=0)
    all_i, all_d = core._knn_into_ivf(Q, R, 20, lists, n_probe=50, metric="manhattan")
    np.testing.assert_allclose(all_d, exact_d, rtol=1e-5)
    tenth_i, tenth_d = core._knn_into_ivf(Q, R, 20, lists, n_probe=5, metric="manhattan")
    recall = np.mean([len(set(a) & set(b)) / 20 for a, b in zip(tenth_i, exact_i)])
    assert recall > 0.8, recall
    assert np.all(np.diff(tenth_d, axis=1) >= 0) and np.all(tenth_d[:, -1] >= exact_d[:, -1] - 1e-5)


def test_inverted_list_matching_keeps_most_exact_matches(monkeypatch):
    E, cells = _clustered([2500, 2000, 1500], seed=2)
    exact = core.find_matches(E, cells, knn=20, method="exact")
    monkeypatch.setattr(core, "IVF_MIN", 1000)  # lists for every batch
    approx = core.find_matches(E, cells, knn=20, method="ivf", seed=0)
    pairs = lambda m: {(k, x, y) for k, (a, b) in m.items() for x, y in zip(a.tolist(), b.tolist())}
    assert len(pairs(exact) & pairs(approx)) >= 0.85 * len(pairs(exact))
    assert len(pairs(approx) - pairs(exact)) <= 0.15 * len(pairs(exact))
    with pytest.raises(ValueError, match="knn_method must be"):
        core.find_matches(E, cells, method="annoy")


def test_auto_search_is_exact_for_small_data_and_inverted_lists_above(monkeypatch):
    E, cells = _clustered([300, 200])
    used = []
    real = core._ivf_search
    monkeypatch.setattr(core, "_ivf_search", lambda *a, **k: used.append("ivf") or real(*a, **k))
    core.find_matches(E, cells, method="auto")
    assert used == []
    monkeypatch.setattr(core, "EXACT_MAX", 400)
    core.find_matches(E, cells, method="auto")
    assert used == ["ivf"]


def test_panorama_edge_weights_and_merge_order():
    matches = {(0, 1): (np.array([0, 0, 1]), np.array([2, 3, 3])),  # 2 of 4 cells, 2 of 5 cells
               (0, 2): (np.array([0, 1, 2, 3]), np.array([0, 0, 0, 0])),  # 4 of 4, 1 of 10
               (1, 2): (np.array([4]), np.array([9]))}  # 1 of 5, 1 of 10
    scores = core.alignment_scores(matches, [4, 5, 10])
    assert scores == {(0, 1): 0.5, (0, 2): 1.0, (1, 2): 0.2}
    assert core.merge_order(scores, matches, alpha=0.10) == [(0, 2), (0, 1), (1, 2)]
    assert core.merge_order(scores, matches, alpha=0.2) == [(0, 2), (0, 1)]  # weight > alpha, strictly
    tie = {(0, 1): 0.5, (1, 2): 0.5, (0, 2): 0.5}
    assert core.merge_order(tie, matches, alpha=0.1) == [(0, 2), (0, 1), (1, 2)]  # more pairs first, then names


def test_smoothed_translation_equals_the_closed_form():
    from sklearn.metrics.pairwise import rbf_kernel

    rng = np.random.default_rng(0)
    points, anchors, bias = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    sigma = 15.0
    W = np.exp(-sigma / 2 * ((points[:, None] - anchors[None]) ** 2).sum(-1))
    np.testing.assert_allclose(W, rbf_kernel(points, anchors, gamma=0.5 * sigma))  # the package's kernel
    want = W @ bias / W.sum(1, keepdims=True)
    t = lambda x: torch.as_tensor(x, dtype=torch.float64)
    for batch_size in (2, 5000):  # blocks of anchors with a running maximum give the same numbers
        got = core.smoothed_translation(t(points), t(anchors), t(bias), sigma=sigma, batch_size=batch_size)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
    far = core.smoothed_translation(t(points + 50.0), t(anchors), t(bias), sigma=sigma)  # exp() underflows
    nearest = np.argmin(((points[:, None] + 50.0 - anchors[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_allclose(far.numpy(), bias[nearest], atol=1e-8)


def test_matches_from_one_cell_share_an_anchor_with_the_same_result():
    rng = np.random.default_rng(1)
    X = torch.as_tensor(rng.normal(size=(20, 3)) * 0.3)
    moving, ds, ref = np.arange(10), np.array([0, 0, 0, 3, 3, 7]), np.array([12, 15, 19, 12, 11, 18])
    want = X[moving] + core.smoothed_translation(X[moving], X[ds], X[ref] - X[ds], sigma=15.0)
    got = X.clone()
    core._translate(got, moving, ds, ref, 15.0, 5000)
    np.testing.assert_allclose(got[moving].numpy(), want.numpy(), rtol=1e-10)
    np.testing.assert_array_equal(got[10:].numpy(), X[10:].numpy())


def test_assemble_moves_the_smaller_batch_onto_the_larger_and_replay_repeats_it():
    E, cells = _blocks([6, 4, 3], dim=2)
    base = E.copy()
    shift = np.array([3.0, -1.0], dtype=np.float32)
    E[cells[1]] = E[cells[0][:4]] + shift  # batch 1 = part of batch 0, translated
    matches = {(0, 1): (np.arange(4), np.arange(4))}
    T = torch.as_tensor(E).clone()
    steps = core.assemble(T, cells, matches, [(0, 1)], sigma=15.0)
    assert [(i, j) for i, j, *_ in steps] == [(0, 1)]
    np.testing.assert_allclose(T[cells[1]].numpy(), E[cells[0][:4]], atol=1e-5)  # constant bias: exact
    np.testing.assert_array_equal(T[cells[0]].numpy(), E[cells[0]])  # the reference does not move
    np.testing.assert_array_equal(T[cells[2]].numpy(), base[cells[2]])  # an unmatched batch does not move
    again = core.replay(torch.as_tensor(E).clone(), steps, sigma=15.0)
    np.testing.assert_allclose(again.numpy(), T.numpy(), atol=1e-6)


def test_randomized_pca_equals_the_svd_of_the_centred_matrix():
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(60, 25)) @ np.diag(np.linspace(5, 0.1, 25))).astype(np.float32)
    Xc = X - X.mean(0)
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    sign = np.sign(Vt[np.arange(5), np.abs(Vt[:5]).argmax(1)])
    want = U[:, :5] * s[:5] * sign
    got = core.randomized_pca(X, 5, seed=0, oversample=20, n_iter=4).numpy()
    np.testing.assert_allclose(got, want, atol=1e-3)
    sparse = core.randomized_pca(sp.csr_matrix(X), 5, seed=0, oversample=20, n_iter=4).numpy()
    np.testing.assert_allclose(sparse, got, atol=1e-4)


def test_l2_normalize_rows_keeps_sparse_and_zero_rows():
    X = sp.csr_matrix(np.array([[3.0, 4.0], [0.0, 0.0], [0.0, 2.0]]))
    out = l2_normalize_rows(X)
    assert sp.issparse(out)
    np.testing.assert_allclose(out.toarray(), [[0.6, 0.8], [0, 0], [0, 1]])
    np.testing.assert_allclose(l2_normalize_rows(X.toarray()), out.toarray())
    assert X[0, 0] == 3.0  # the input is not changed


# ------------------------------------------------------------------------------------------ the model
@pytest.fixture(scope="module")
def three_batches():
    return si.datasets.simulate_counts(n_cells=900, n_genes=300, n_batches=3, seed=1)


def test_result_does_not_depend_on_the_order_of_cells_or_batches(three_batches):
    adata = three_batches
    first = Scanorama(dimred=30, device="cpu").fit(adata, batch_key="batch")
    perm = np.random.default_rng(0).permutation(adata.n_obs)
    shuffled = adata[perm].copy()
    cats = list(shuffled.obs["batch"].cat.categories)
    shuffled.obs["batch"] = shuffled.obs["batch"].cat.reorder_categories(cats[::-1])
    second = Scanorama(dimred=30, device="cpu").fit(shuffled, batch_key="batch")
    assert list(second.merges_) == list(first.merges_) and len(first.merges_) >= 2
    np.testing.assert_allclose(second.embed(), first.embed()[perm], atol=1e-4)


def test_mixes_batches_and_keeps_cell_types_apart():
    from scintegrate.benchmark._prep import unintegrated_pca
    from scintegrate.metrics import compute_metrics

    adata = si.datasets.simulate_counts(n_cells=1500, n_genes=1000, n_batches=3, n_types=4, batch_effect=0.4,
                                        de_prob=0.2, seed=2)
    batch, labels = adata.obs["batch"].to_numpy(), adata.obs["cell_type"].to_numpy()
    pca = unintegrated_pca(adata, batch_key="batch")
    emb = Scanorama(device="cpu").fit(adata, batch_key="batch").embed()
    keys = ["ilisi", "kbet", "asw_label", "knn_accuracy"]
    before = compute_metrics(pca, batch, labels, metrics=keys)
    after = compute_metrics(emb, batch, labels, metrics=keys)
    assert after["ilisi"] > before["ilisi"] + 0.3 and after["kbet"] > before["kbet"] + 0.2
    assert after["knn_accuracy"] >= max(0.95, before["knn_accuracy"] - 0.02)
    assert after["asw_label"] >= before["asw_label"] - 0.05


def test_batches_that_share_no_cell_type_are_left_alone(three_batches):
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 1, size=(3, 40)) * (rng.uniform(size=(3, 40)) < 0.3) * 8.0
    types = np.repeat([0, 1, 0, 1, 2], 80)  # batches a, b: types 0 and 1; batch c: type 2 only
    X = np.clip(centres[types] + rng.normal(scale=0.3, size=(types.size, 40)) + 0.5, 0, None)
    import anndata as ad

    adata = ad.AnnData(X=X.astype(np.float32), obs=pd.DataFrame(
        {"batch": np.repeat(["a", "b", "c"], [160, 160, 80])}, index=[f"c{i}" for i in range(types.size)]))
    before = adata.X.copy()
    with pytest.warns(UserWarning, match="few mutual nearest neighbour pairs.*'c'") as caught:
        model = Scanorama(dimred=10, device="cpu").fit(adata, batch_key="batch", input="log")
    assert all("\n" not in str(w.message) for w in caught)
    assert list(model.merges_) == ["a <-> b"] and np.isfinite(model.embed()).all()
    np.testing.assert_array_equal(adata.X, before)
    with pytest.warns(UserWarning, match=r"no pair of batches .* \(best 0.050\); nothing merged"):
        model._warn_unmatched(["a", "b"], {(0, 1): 0.05}, [])  # every edge at or below alpha


def test_dimred_above_the_data_is_capped_with_a_warning():
    adata = si.datasets.simulate_counts(n_cells=40, n_genes=80, seed=0)
    with pytest.warns(UserWarning, match=r"dimred=100 capped at 39"):
        emb = Scanorama(device="cpu").fit(adata, batch_key="batch").embed()
    assert emb.shape == (40, 39) and np.isfinite(emb).all()


def test_a_batch_of_one_cell_is_refused_and_one_of_two_cells_is_integrated(three_batches):
    spec = Scanorama.spec()
    assert (spec.min_batch_cells, spec.small_batch_cells) == (2, 10)  # vst of the features needs 2 cells
    adata = three_batches.copy()
    adata.obs["batch"] = adata.obs["batch"].astype(str)
    column = adata.obs.columns.get_loc("batch")
    adata.obs.iloc[0, column] = "single"
    obs = adata.obs.copy()
    with pytest.raises(ValueError, match="batch 'single' has 1 cell") as err:
        si.integrate(adata, method=Scanorama.method, dimred=20, device="cpu", progress=False)
    assert "\n" not in str(err.value) and spec.obsm_key not in adata.obsm
    pd.testing.assert_frame_equal(adata.obs, obs)
    adata.obs.iloc[1, column] = "single"
    with pytest.warns(UserWarning, match="fewer than 10 cells"):
        si.integrate(adata, method=Scanorama.method, dimred=20, device="cpu", progress=False)
    emb = adata.obsm[spec.obsm_key]
    assert emb.shape == (adata.n_obs, 20) and np.isfinite(emb).all()


def test_corrected_expression_is_an_optional_layer(three_batches):
    adata = three_batches.copy()
    key = f"{Scanorama.method}_corrected"
    si.integrate(adata, method=Scanorama.method, dimred=20, device="cpu", progress=False)
    assert key not in adata.layers
    si.integrate(adata, method=Scanorama.method, dimred=20, device="cpu", progress=False, return_corrected=True)
    layer = adata.layers[key]
    assert sp.issparse(layer) and layer.shape == adata.shape and np.isfinite(layer.data).all()
    features = adata.uns["scintegrate"][Scanorama.spec().obsm_key]["features"]
    outside = np.setdiff1d(np.arange(adata.n_vars), adata.var_names.get_indexer(features))
    assert layer[:, outside].nnz == 0 and layer.nnz > 0


@pytest.mark.parametrize("bad, message", [({"metric": "cosine"}, "metric must be"),
                                          ({"alpha": 1.5}, "alpha must be in"),
                                          ({"knn": 0}, "must be >= 1"),
                                          ({"knn_method": "annoy"}, "knn_method must be")])
def test_bad_parameters_give_one_line_errors(bad, message):
    with pytest.raises(ValueError, match=message) as err:
        Scanorama(**bad)
    assert "\n" not in str(err.value)


def test_cuda_goes_through_the_device_logic(three_batches):
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            Scanorama(device="cuda")
        return
    cpu = Scanorama(dimred=20, device="cpu").fit(three_batches, batch_key="batch").embed()
    gpu = Scanorama(dimred=20, device="cuda").fit(three_batches, batch_key="batch").embed()
    np.testing.assert_allclose(gpu, cpu, atol=1e-2)


# ------------------------------------------------------------------------------------------ the package
@pytest.mark.slow
def test_scib_overall_within_002_of_the_package_on_mixology(shared_data):
    pytest.importorskip("scanorama")
    from scintegrate import registry
    from scintegrate.benchmark._prep import unintegrated_pca
    from scintegrate.benchmark.peers import run_peer
    from scintegrate.metrics import compute_metrics

    adata = si.datasets.read_h5ad(shared_data / "mixology_3cl.h5ad")
    batch, labels = adata.obs["batch"].to_numpy(), adata.obs["cell_type"].to_numpy()
    pca = unintegrated_pca(adata, batch_key="batch")
    peer = [p for p in registry.peer_names(installed=True) if p.startswith(Scanorama.method)][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = run_peer(adata, peer, batch_key="batch", seed=0, dimred=100)  # the package's default
        ours = Scanorama(device="cpu").fit(adata, batch_key="batch").embed()
    score = lambda E: compute_metrics(E, batch, labels, X_unintegrated=pca, metrics="scib")["overall"]
    assert score(ours) >= score(theirs) - 0.02
