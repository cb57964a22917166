"""SNN graph (Seurat's ComputeSNN) and FindClusters: brute-force Jaccard, blobs, per-batch labels."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from scintegrate.pp import cluster_graph, find_clusters, find_neighbors, snn_from_knn, snn_graph
from scintegrate.pp.cluster import group_singletons, relabel_by_size


def _blobs(n_per=60, k=3, d=6, seed=0, sep=10.0):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(i * sep, 1.0, size=(n_per, d)) for i in range(k)])
    return X, np.repeat(np.arange(k), n_per)


def test_snn_hand_example():
    # rows include the cell itself first; k = 2
    idx = np.array([[0, 1], [1, 0], [2, 1]])
    G = snn_from_knn(idx, prune=0).toarray()
    # sets: {0,1}, {0,1}, {1,2}; Jaccard s / (2k - s)
    expected = np.array([[1, 1, 1 / 3], [1, 1, 1 / 3], [1 / 3, 1 / 3, 1]])
    np.testing.assert_allclose(G, expected)
    G_pruned = snn_from_knn(idx, prune=0.5).toarray()
    np.testing.assert_allclose(G_pruned, np.where(expected < 0.5, 0, expected))


def test_snn_graph_matches_brute_force_jaccard():
    X, _ = _blobs(n_per=30, k=2)
    k = 8
    G = snn_graph(X, n_neighbors=k, prune=1 / 15)
    D = ((X[:, None] - X[None]) ** 2).sum(-1)
    sets = [set(np.argsort(D[i], kind="stable")[:k]) for i in range(len(X))]
    for i in range(0, len(X), 7):
        for j in range(len(X)):
            s = len(sets[i] & sets[j])
            w = s / (2 * k - s)
            assert G[i, j] == pytest.approx(w if w >= 1 / 15 else 0.0)
    assert abs(G - G.T).max() == 0 and np.all(G.diagonal() == 1)


def test_cluster_graph_recovers_blobs_deterministically():
    X, truth = _blobs()
    G = snn_graph(X, n_neighbors=15)
    for algorithm in ("louvain", "leiden"):
        labels = cluster_graph(G, resolution=0.8, algorithm=algorithm, seed=0)
        assert pd.crosstab(labels, truth).gt(0).sum(1).max() == 1  # no cluster mixes blobs
        np.testing.assert_array_equal(labels, cluster_graph(G, resolution=0.8, algorithm=algorithm, seed=0))
    assert len(set(cluster_graph(G, resolution=0.1))) <= len(set(cluster_graph(G, resolution=3.0)))


def test_singletons_and_size_order():
    W = np.eye(5)
    W[0, 1] = W[2, 3] = 0.9
    W[4, 0], W[4, 2], W[4, 3] = 0.1, 0.3, 0.3
    G = sp.csr_matrix(np.maximum(W, W.T))
    # {4} is a singleton: mean weight to cluster 0 = (0.1 + 0) / 2, to cluster 1 = (0.3 + 0.3) / 2
    np.testing.assert_array_equal(group_singletons(np.array([0, 0, 1, 1, 2]), G), [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(relabel_by_size(np.array([5, 7, 7, 5, 7, 9])), [1, 0, 0, 1, 0, 2])


def test_find_neighbors_and_clusters_on_anndata():
    X, truth = _blobs()
    adata = ad.AnnData(np.zeros((len(X), 2), dtype=np.float32), obsm={"X_pca": X})
    find_neighbors(adata, n_dims=4, n_neighbors=15)
    assert adata.obsp["snn"].shape == (len(X), len(X)) and adata.uns["snn"]["n_dims"] == 4
    find_clusters(adata, resolution=0.5)
    labels = adata.obs["seurat_clusters"]
    assert isinstance(labels.dtype, pd.CategoricalDtype) and labels.cat.categories[0] == "0"
    assert pd.crosstab(labels, truth).gt(0).sum(1).max() == 1


def test_find_clusters_per_batch_runs_the_seurat_chain():
    rng = np.random.default_rng(0)
    n, g = 80, 60
    profiles = rng.gamma(0.5, 4, size=(2, g))
    types = np.tile([0, 1], n)
    counts = rng.poisson(profiles[types] * rng.uniform(0.5, 1.5, size=(2 * n, 1))).astype(np.float32)
    batch = np.repeat(["A", "B"], n)
    adata = ad.AnnData(sp.csr_matrix(counts), obs=pd.DataFrame({"batch": batch, "type": types},
                                                               index=[f"c{i}" for i in range(2 * n)]))
    find_clusters(adata, batch_key="batch", resolution=0.5, n_features=40, n_comps=10, n_neighbors=10)
    labels = adata.obs["seurat_clusters"].astype(str)
    assert labels[batch == "A"].str.startswith("A_").all() and labels[batch == "B"].str.startswith("B_").all()
    for b in ("A", "B"):
        tab = pd.crosstab(labels[batch == b], types[batch == b])
        assert tab.gt(0).sum(1).max() == 1 and tab.shape[0] >= 2  # types kept apart within each batch
    np.testing.assert_array_equal(adata.X.toarray(), counts)  # the input is not modified


def test_bad_input():
    G = snn_graph(_blobs(n_per=10)[0], n_neighbors=5)
    with pytest.raises(ValueError, match="algorithm must be one of"):
        cluster_graph(G, algorithm="walktrap")
    with pytest.raises(ValueError, match="resolution must be positive"):
        cluster_graph(G, resolution=0)
    with pytest.raises(ValueError, match="square sparse matrix"):
        cluster_graph(np.ones((3, 3)))
    with pytest.raises(ValueError, match="n_neighbors must be at least 2"):
        snn_graph(np.ones((5, 2)), n_neighbors=1)
    with pytest.raises(KeyError, match="run run_pca first"):
        find_neighbors(ad.AnnData(np.ones((5, 2))))
    with pytest.raises(KeyError, match="batch column 'donor' not found"):
        find_clusters(ad.AnnData(np.ones((5, 2))), batch_key="donor")


def test_small_batches_cap_k_so_their_types_can_separate():
    from scintegrate.pp.cluster import per_batch_neighbors

    assert [per_batch_neighbors(n, 30) for n in (8, 40, 120, 299, 300, 10_000)] == [5, 5, 12, 29, 30, 30]
    # four types in batches of 50 cells: with k = 30 the SNN graph is nearly complete (one cluster)
    rng = np.random.default_rng(1)
    g, n = 80, 100
    profiles = rng.gamma(0.5, 4, size=(4, g))
    types = np.tile(np.arange(4), n // 4)
    counts = rng.poisson(profiles[types] * 3).astype(np.float32)
    batch = np.repeat(["A", "B"], n // 2)
    adata = ad.AnnData(counts, obs=pd.DataFrame({"batch": batch}, index=[f"c{i}" for i in range(n)]))
    find_clusters(adata, batch_key="batch", resolution=0.6, n_features=60, n_comps=10, n_neighbors=30)
    for b in ("A", "B"):
        assert adata.obs["seurat_clusters"][batch == b].nunique() >= 3
