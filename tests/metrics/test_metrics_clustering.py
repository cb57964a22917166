"""ARI/NMI equal scikit-learn; the resolution sweep and k-means recover separated labels."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from scintegrate.metrics import (RESOLUTIONS, NeighborGraph, ari, cluster_graph, kmeans_nmi_ari, nmi,
                                 resolution_sweep)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c", "d"], 75)
    X = rng.normal(size=(300, 8)) + np.repeat(np.eye(8)[:4] * 10, 75, axis=0)
    return X, labels


def test_ari_nmi_equal_sklearn_exactly():
    rng = np.random.default_rng(0)
    for _ in range(5):
        t, p = rng.integers(0, 4, 200), rng.integers(0, 6, 200)
        assert ari(t, p) == adjusted_rand_score(t, p)
        assert nmi(t, p) == normalized_mutual_info_score(t, p)
    # string labels are encoded, not compared as objects
    assert ari(["x", "x", "y"], [2, 2, 5]) == 1.0


def test_ari_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="labels_pred has length 2 but the embedding has 3"):
        ari([0, 1, 1], [0, 1])


def test_resolution_sweep_recovers_blobs_and_is_seeded(blobs):
    X, labels = blobs
    conn = NeighborGraph.compute(X, 14).connectivities(15)
    sweep = resolution_sweep(conn, labels)
    assert sweep.resolutions == list(RESOLUTIONS) and len(sweep.clusterings) == 20
    assert sweep.best_nmi == pytest.approx(1.0) and sweep.best_ari == pytest.approx(1.0)
    assert sweep.best_nmi == sweep.nmi.max()
    assert np.array_equal(cluster_graph(conn, 1.0, seed=3), cluster_graph(conn, 1.0, seed=3))
    louvain = resolution_sweep(conn, labels, method="louvain", resolutions=[0.5, 1.0])
    assert louvain.best_nmi == pytest.approx(1.0)


def test_cluster_graph_rejects_unknown_method(blobs):
    conn = NeighborGraph.compute(blobs[0], 14).connectivities(15)
    with pytest.raises(ValueError, match="unknown clustering method 'kmedoids'"):
        cluster_graph(conn, method="kmedoids")


def test_kmeans_uses_number_of_labels(blobs):
    X, labels = blobs
    res = kmeans_nmi_ari(X, labels, seed=0)
    assert res == {"nmi": pytest.approx(1.0), "ari": pytest.approx(1.0)}
