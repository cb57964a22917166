"""Graph connectivity, kBET, EBM and kNN accuracy against hand computations and scipy loops."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import chisquare
from sklearn.neighbors import NearestNeighbors

from scintegrate.metrics import (MetricWarning, NeighborGraph, ebm, graph_connectivity, kbet, kbet_acceptance,
                                 knn_accuracy)
from scintegrate.metrics.mixing import connectivity_of, kbet_k0

LINE = np.array([[0.0], [1.0], [2.0], [100.0], [101.0], [102.0]])


def test_graph_connectivity_hand_computed():
    # path 0-1-2 and edge 3-4; label "a" = {0, 1, 3, 4}, "b" = {2}
    A = sp.csr_matrix((np.ones(3), ([0, 1, 3], [1, 2, 4])), shape=(5, 5))
    codes = np.array([0, 0, 1, 0, 0])
    assert connectivity_of(A, codes) == pytest.approx((2 / 4 + 1) / 2)


def test_graph_connectivity_on_split_label():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(20, 2)), rng.normal(size=(20, 2)) + 100, rng.normal(size=(30, 2)) + [0, 50]]
    labels = np.repeat(["a", "b"], [40, 30])  # "a" lives in two far-apart islands of 20
    assert graph_connectivity(X, labels) == pytest.approx((0.5 + 1.0) / 2)


def test_kbet_acceptance_matches_scipy_chisquare():
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 3, 300)
    hood = rng.integers(0, 300, size=(300, 25))
    freq = np.bincount(batch) / 300
    p = [chisquare(np.bincount(batch[h], minlength=3), freq * 25).pvalue for h in hood]
    assert kbet_acceptance(hood, batch) == pytest.approx(np.mean(np.array(p) >= 0.05))


def test_kbet_per_label_matches_loop():
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], [120, 90, 5])  # "c" has < 10 cells: skipped
    batch = np.r_[np.tile(["x", "y"], 60), rng.choice(["x", "y", "z"], 90), ["x"] * 5]
    X = rng.normal(size=(215, 4)) + np.repeat(np.eye(4)[:3] * 5, [120, 90, 5], axis=0)
    X[:120] += (batch[:120] == "y")[:, None] * 1.5  # type "a" keeps part of its batch effect
    rates = []
    for lab in ["a", "b"]:
        m = labels == lab
        b = batch[m]
        k0 = int(min(70, max(10, np.floor(np.mean(np.unique(b, return_counts=True)[1]) / 4))))
        idx = NearestNeighbors(n_neighbors=k0).fit(X[m]).kneighbors(X[m])[1]  # itself + k0 - 1 others
        lev, codes = np.unique(b, return_inverse=True)
        freq = np.bincount(codes) / codes.size
        p = [chisquare(np.bincount(codes[h], minlength=lev.size), freq * k0).pvalue for h in idx]
        rates.append(np.mean(np.array(p) >= 0.05))
    assert kbet(X, batch, labels) == pytest.approx(np.mean(rates))
    assert kbet_k0(np.repeat([0, 1], [400, 800])) == 70 and kbet_k0(np.array([0, 1, 1])) == 10


def test_kbet_single_batch_is_nan_with_reason():
    with pytest.warns(MetricWarning, match="only one batch"):
        assert np.isnan(kbet(np.random.default_rng(0).normal(size=(30, 2)), ["x"] * 30, ["t"] * 30))


def test_ebm_hand_computed():
    batch = np.array(["a", "b", "a", "a", "a", "a"])
    # 2 nearest others: cell 0 -> {b, a}: entropy 1; cell 1 -> {a, a}: 0; cell 2 -> {b, a}: 1; rest 0
    assert ebm(LINE, batch, n_neighbors=2, n_pools=1) == pytest.approx(2 / 6)
    three = np.array(["a", "b", "c", "a", "a", "a"])
    # cell 0 -> {b, c}: log_3 2; cell 1 -> {a, c}: log_3 2; cell 2 -> {b, a}: log_3 2
    assert ebm(LINE, three, n_neighbors=2, n_pools=1) == pytest.approx(3 * np.log(2) / np.log(3) / 6)


def test_ebm_pools_are_seeded_and_close_to_the_full_mean():
    rng = np.random.default_rng(0)
    X, batch = rng.normal(size=(500, 3)), rng.choice(["a", "b"], 500)
    full = ebm(X, batch, n_pools=1)
    pooled = ebm(X, batch, seed=1)
    assert pooled == ebm(X, batch, seed=1) and abs(pooled - full) < 0.02
    assert 0.8 < full <= 1.0  # random batches: well mixed


def test_knn_accuracy_hand_computed():
    labels = np.array(["x", "x", "y", "y", "y", "y"])
    # x: cells 0, 1 see {x, y} -> 0.5 each; y: cell 2 sees {x, x} -> 0, cells 3-5 -> 1
    assert knn_accuracy(LINE, labels, n_neighbors=2) == pytest.approx((0.5 + 0.75) / 2)


def test_neighbour_metrics_accept_precomputed_graph_forms():
    rng = np.random.default_rng(0)
    X, labels = rng.normal(size=(80, 3)), rng.choice(["p", "q"], 80)
    g = NeighborGraph.compute(X, 20)
    D = sp.csr_matrix((g.dist.ravel(), (np.repeat(np.arange(80), 20), g.idx.ravel())), shape=(80, 80))
    want = knn_accuracy(X, labels)
    with_self = (np.c_[np.arange(80), g.idx], np.c_[np.zeros(80), g.dist])
    for form in (g, (g.idx, g.dist), with_self, D):
        assert knn_accuracy(None, labels, knn=form) == want
    with pytest.raises(ValueError, match="knn_graph must be a NeighborGraph"):
        knn_accuracy(None, labels, knn="graph")
