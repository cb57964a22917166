"""Seurat v3 CCA anchors: the core's steps against hand computations and R, the model's behaviour and bad input."""

import shutil
import subprocess
import warnings

import numpy as np
import pytest

import scintegrate as si
from scintegrate.models import SeuratCCA
from scintegrate.models import _seurat_core as core

needs_r = pytest.mark.skipif(shutil.which("Rscript") is None, reason="R is not installed")


def _r(code: str) -> str:
    out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _fit(adata, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SeuratCCA(**kw).fit(adata, batch_key="batch")


# ------------------------------------------------------------------------------------------ the core's steps
def test_cca_is_the_svd_of_the_standardised_cross_product():
    rng = np.random.default_rng(0)
    Z1, Z2 = rng.normal(size=(40, 15)), rng.normal(size=(30, 15)) + 0.3
    u, v, d = core.cca(Z1, Z2, 5)
    S1 = (Z1 - Z1.mean(1, keepdims=True)) / Z1.std(1, ddof=1, keepdims=True)
    S2 = (Z2 - Z2.mean(1, keepdims=True)) / Z2.std(1, ddof=1, keepdims=True)
    U, D, Vt = np.linalg.svd(S1 @ S2.T)
    sign = np.sign(U[0, :5])
    np.testing.assert_allclose(d, D[:5], rtol=1e-10)
    np.testing.assert_allclose(u, U[:, :5] * sign, atol=1e-10)
    np.testing.assert_allclose(v, Vt[:5].T * sign, atol=1e-10)
    assert (u[0] > 0).all()


def test_anchor_pairs_are_the_mutual_neighbours_in_seurat_order():
    rng = np.random.default_rng(1)
    A, B = rng.normal(size=(25, 3)), rng.normal(size=(20, 3))
    D = np.linalg.norm(A[:, None] - B[None], axis=2)
    nn_ab, nn_ba = np.argsort(D, 1)[:, :8], np.argsort(D, 0)[:8].T
    a, b = core.anchor_pairs(nn_ab, nn_ba, 5)
    expected = [(i, j) for i in range(25) for j in nn_ab[i, :5] if i in nn_ba[j, :5]]
    assert list(zip(a.tolist(), b.tolist())) == expected


def test_anchor_scores_count_shared_neighbours_and_rescale_between_quantiles():
    # 3 cells per batch; k_score 2: cell a's set = its 2 own neighbours + its 2 in batch 2 (offset 3)
    nn_aa = np.array([[0, 1], [1, 0], [2, 1]])
    nn_bb = np.array([[0, 2], [1, 0], [2, 0]])
    nn_ab = np.array([[0, 1], [1, 2], [2, 0]])
    nn_ba = np.array([[0, 1], [1, 2], [2, 1]])
    a, b = np.array([0, 1, 2]), np.array([0, 1, 2])
    # shared: pair (0,0): {0,1,3,4} & {0,1,3,5} = 3; (1,1): {1,0,4,5} & {1,2,4,3} = 2; (2,2): {2,1,5,3} & {2,1,5,3} = 4
    raw = np.array([3.0, 2.0, 4.0])
    low, high = np.quantile(raw, 0.01), np.quantile(raw, 0.9)
    expected = np.clip((raw - low) / (high - low), 0, 1)
    np.testing.assert_allclose(core.score_anchors(a, b, nn_aa, nn_ab, nn_ba, nn_bb, 2), expected)


def _weights_loop(rel, idx, anchor_cell_of_row, score, k, sd):
    """FindWeightsC, transcribed as Seurat's loops."""
    n = idx.shape[0]
    W = np.zeros((n, score.size))
    rows_of = {c: [r for r in range(score.size) if anchor_cell_of_row[r] == c] for c in set(anchor_cell_of_row)}
    for cell in range(n):
        used = 0
        for i in range(idx.shape[1]):
            for r in rows_of.get(idx[cell, i], []):
                if used >= k:
                    break
                W[cell, r] = 1 - np.exp(-rel[cell, i] * score[r] / (2 / sd) ** 2)
                used += 1
    return W


def test_weights_follow_seurats_loop_including_cells_with_several_anchors():
    rng = np.random.default_rng(2)
    slot = np.array([0, 0, 1, 2, 2, 2, 3, 4])  # anchor rows -> anchor cells (several anchors per cell)
    score = rng.uniform(size=slot.size)
    idx = np.array([[0, 2, 1, 3], [4, 3, 2, 0], [2, 1, 0, 4]])
    rel = np.sort(rng.uniform(size=idx.shape), 1)[:, ::-1]
    for k in (2, 4):
        got = core._weights(rel, idx, slot, score, k, 1.0).toarray()
        np.testing.assert_allclose(got, _weights_loop(rel, idx, slot, score, k, 1.0))


def test_guide_tree_is_complete_linkage_on_the_inverse_similarity():
    sim = np.array([[0, 0.9, 0.2, 0.1], [0.9, 0, 0.3, 0.15], [0.2, 0.3, 0, 0.5], [0.1, 0.15, 0.5, 0]])
    merges = core.guide_tree(sim)
    assert merges == [([0], [1]), ([2], [3]), ([0, 1], [2, 3])]


def test_rpca_spaces_project_each_batch_on_the_others_pcs_and_scale_each_dimension():
    rng = np.random.default_rng(4)
    Z1, Z2 = rng.normal(size=(30, 12)), rng.normal(size=(20, 12))
    L1, L2 = np.linalg.qr(rng.normal(size=(12, 4)))[0], np.linalg.qr(rng.normal(size=(12, 4)))[0]
    pc1, pc2 = (Z1 @ L1, L1), (Z2 @ L2, L2)
    ref, query = core.rpca_spaces(pc1, pc2, Z1, Z2)
    for E, raw in ((ref, np.r_[Z1 @ L1, Z2 @ L1]), (query, np.r_[Z1 @ L2, Z2 @ L2])):
        scaled = raw / raw.std(0, ddof=1)
        np.testing.assert_allclose(E, scaled / np.linalg.norm(scaled, axis=1, keepdims=True), atol=1e-12)


@needs_r
def test_top_dim_features_and_guide_tree_match_seurat(tmp_path):
    rng = np.random.default_rng(3)
    loadings = rng.normal(size=(400, 30))
    np.savetxt(tmp_path / "l.csv", loadings, delimiter=",")
    out = _r(f"""suppressMessages(library(Seurat))
L <- as.matrix(read.csv("{tmp_path / 'l.csv'}", header = FALSE)); rownames(L) <- paste0("g", 0:399)
colnames(L) <- paste0("CC_", 1:30)
E <- matrix(0, 2, 30, dimnames = list(c("a", "b"), colnames(L)))
obj <- CreateSeuratObject(counts = matrix(1, 400, 2, dimnames = list(rownames(L), c("a", "b"))))
obj[["cca"]] <- CreateDimReducObject(embeddings = E, loadings = L, key = "CC_", assay = "RNA")
cat(Seurat:::TopDimFeatures(obj, reduction = "cca", dims = 1:30, features.per.dim = 100, max.features = 200))
sim <- matrix(c(0, .9, .2, .1, .9, 0, .3, .15, .2, .3, 0, .5, .1, .15, .5, 0), 4)
cat("\\nTREE", t(Seurat:::BuildSampleTree(sim)))""")
    features, tree = out.split("\nTREE")
    ours = [f"g{i}" for i in core.top_dim_features(loadings)]
    assert ours == features.split()
    assert [int(x) for x in tree.split()] == [-1, -2, -3, -4, 1, 2]


# ------------------------------------------------------------------------------------------ the model
@pytest.fixture(scope="module")
def sim():
    return si.datasets.simulate_counts(n_cells=1200, n_genes=600, seed=0)


def test_anchors_join_cells_of_one_type_and_the_batches_mix(sim):
    model = _fit(sim, n_features=500)
    lab, bat = sim.obs["cell_type"].astype(str).to_numpy(), sim.obs["batch"].astype(str).to_numpy()
    anchors = model.anchors_[:, :2].astype(int)
    assert len(anchors) > 300 and (bat[anchors[:, 0]] != bat[anchors[:, 1]]).all()
    assert (lab[anchors[:, 0]] == lab[anchors[:, 1]]).mean() > 0.7  # R Seurat 4.3 on these data: 0.747 (ours 0.739)
    assert ((model.anchors_[:, 2] >= 0) & (model.anchors_[:, 2] <= 1)).all()
    from scintegrate.neighbors import knn

    base = si.integrate(sim.copy(), method="pca", progress=False, copy=True).obsm["X_pca_baseline"]
    mix = {}
    for name, E in (("ours", model.embed()), ("pca", base)):
        idx = knn(E, 16)[0][:, 1:]
        mix[name] = ((bat[idx] != bat[:, None]).mean(), (lab[idx] == lab[:, None]).mean())
    assert mix["ours"][0] > mix["pca"][0] + 0.2 and mix["ours"][1] > 0.9, mix
    result = model.to_result()
    layer = result.layers["seurat_cca_corrected"]
    assert layer.shape == sim.shape and result.embedding.shape == (sim.n_obs, 30)
    cols = sim.var_names.get_indexer(model.features_)
    assert np.isfinite(layer.data).all() and set(layer.indices) <= set(cols)


@pytest.mark.parametrize("reduction", ["cca", "rpca"])
def test_three_batches_merge_along_the_guide_tree_and_reload(tmp_path, reduction):
    adata = si.datasets.simulate_counts(n_cells=900, n_genes=400, n_batches=3, seed=1)
    model = _fit(adata, n_features=300, dims=20, reduction=reduction)
    assert len(model.merges_) == 2 and model.merges_[-1].count("batch") == 3
    model.save(tmp_path / "m")
    back = SeuratCCA.load(tmp_path / "m")
    np.testing.assert_array_equal(back.embed(), model.embed())
    np.testing.assert_array_equal(back.anchors_, model.anchors_)
    assert list(back.merges_) == list(model.merges_)
    lab = adata.obs["cell_type"].astype(str).to_numpy()
    anchors = model.anchors_[:, :2].astype(int)
    assert (lab[anchors[:, 0]] == lab[anchors[:, 1]]).mean() > 0.6, reduction  # measured: CCA 0.684, rPCA 0.844


# ------------------------------------------------------------------------------------------ bad input
def test_small_batches_cap_dims_and_k_with_warnings_and_integrate(sim):
    adata = sim[::4].copy()  # 300 cells: batches below k_filter = 200
    tiny = adata.obs["batch"].cat.add_categories("tiny")
    tiny[:12] = "tiny"
    adata.obs["batch"] = tiny
    with pytest.warns(UserWarning) as caught:
        model = SeuratCCA(n_features=300).fit(adata, batch_key="batch")
    messages = " | ".join(str(w.message) for w in caught)
    assert "dims=30 capped at 11" in messages and "fewer than k_filter=200 cells" in messages
    assert "few anchors when merging" in messages
    assert np.isfinite(model.embed()).all()


def test_batches_that_share_no_type_are_finite(sim):
    disjoint = si.datasets.simulate_counts(n_cells=600, n_genes=300, seed=3,
                                           experiment={"batch1": ["type1", "type2"], "batch2": ["type3", "type4"]})
    before = disjoint.X.copy()
    model = _fit(disjoint, n_features=250)
    assert np.isfinite(model.embed()).all() and np.isfinite(model.to_result().layers[
        "seurat_cca_corrected"].data).all()
    assert (disjoint.X != before).nnz == 0


def test_bad_parameters_are_refused_in_one_line():
    with pytest.raises(ValueError, match="the others >= 1"):
        SeuratCCA(k_weight=0)
    with pytest.raises(ValueError, match="sd_weight > 0"):
        SeuratCCA(sd_weight=0)
    with pytest.raises(ValueError, match="reduction must be 'cca' or 'rpca'"):
        SeuratCCA(reduction="pca")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            SeuratCCA(device="cuda")
