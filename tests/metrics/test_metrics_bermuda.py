"""BERMUDA's divergence, entropy and silhouette scores against hand computations and scikit-learn."""

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score as sk_silhouette

from scintegrate.metrics import MetricWarning, divergence_score, entropy_score, knn_kl_divergence, silhouette_score
from scintegrate.metrics.bermuda_scores import to_2d


def _brute_kl(P, Q, k):
    """Wang-Kulkarni-Verdú estimator with brute-force distances (independent of the KD-tree)."""
    dPP = np.sqrt(((P[:, None] - P[None]) ** 2).sum(-1))
    dPQ = np.sqrt(((P[:, None] - Q[None]) ** 2).sum(-1))
    rho = np.sort(dPP, axis=1)[:, k]  # column 0 is the point itself
    nu = np.sort(dPQ, axis=1)[:, k - 1]
    n, d = P.shape
    return d / n * np.log(nu / rho).sum() + np.log(Q.shape[0] / (n - 1))


def test_kl_estimator_hand_computed():
    # rho = (1, 1, 2), nu = (0.5, 0.5, 1): (1/3) * 3 * log(1/2) + log(2 / 2) = -log 2
    P, Q = np.array([[0.0], [1.0], [3.0]]), np.array([[0.5], [2.0]])
    assert knn_kl_divergence(P, Q, k=1) == pytest.approx(-np.log(2))


def test_kl_estimator_matches_brute_force_and_detects_shift():
    rng = np.random.default_rng(0)
    P, Q = rng.normal(size=(80, 2)), rng.normal(size=(70, 2)) + [3, 0]
    assert knn_kl_divergence(P, Q, 5) == pytest.approx(_brute_kl(P, Q, 5), rel=1e-10)
    # KL(N(0,I) || N((3,0),I)) = 4.5 (k-NN estimates are biased low on small samples); equal samples give ~0
    assert 1.5 < knn_kl_divergence(P, Q, 5) < 6.0
    assert abs(knn_kl_divergence(P, rng.normal(size=(70, 2)), 5)) < 0.5


def test_divergence_score_averages_directions_over_pairs_with_shared_types():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 2))
    batch = np.repeat(["b1", "b2", "b3"], 20)
    # b1: x, y; b2: x only; b3: y, z -> pairs (b1,b2) share x, (b1,b3) share y, (b2,b3) share nothing
    labels = np.r_[["x"] * 10, ["y"] * 10, ["x"] * 20, ["y"] * 10, ["z"] * 10]
    X[20:40] += [0.5, 0]
    pairs = [((batch == "b1") & (labels == "x"), batch == "b2"),
             ((batch == "b1") & (labels == "y"), (batch == "b3") & (labels == "y"))]
    pq = [max(_brute_kl(X[a], X[b], 3), 0) for a, b in pairs]
    qp = [max(_brute_kl(X[b], X[a], 3), 0) for a, b in pairs]
    want = (np.mean(pq) + np.mean(qp)) / 2
    assert divergence_score(X, batch, labels, k=3, min_cells=5) == pytest.approx(want, rel=1e-10)


def test_divergence_nan_when_no_pair_shares_enough_cells():
    X = np.random.default_rng(0).normal(size=(40, 2))
    with pytest.warns(MetricWarning, match="no pair of batches shares >= 30"):
        assert np.isnan(divergence_score(X, np.repeat(["a", "b"], 20), np.repeat("t", 40)))


def test_entropy_score_hand_computed():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=(8, 2))  # type s, 4 cells per batch, around the origin
    island = np.array([[100, 100], [100, 101], [101, 100], [101, 101], [100.5, 100.5]])
    X = np.r_[shared, island]
    batch = np.r_[["a"] * 4, ["b"] * 4, ["a"] * 4, ["b"]]
    labels = np.r_[["s"] * 8, ["u"] * 4, ["s"]]  # u exists in batch a only
    # each u cell's 5 nearest cells (itself included) are the island: 4 from a, 1 from b
    want = -(0.8 * np.log(0.8) + 0.2 * np.log(0.2))
    assert entropy_score(X, batch, labels, k=5) == pytest.approx(want)


def test_entropy_nan_with_reason_when_all_types_shared():
    X = np.random.default_rng(0).normal(size=(40, 2))
    labels = np.tile(["x", "y"], 20)
    with pytest.warns(MetricWarning, match="every cell type is shared"):
        assert np.isnan(entropy_score(X, np.repeat(["a", "b"], 20), labels))


def test_silhouette_is_sklearn_cosine_on_20_pcs():
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c"], 40)
    X = rng.normal(size=(120, 10)) + np.repeat(rng.normal(size=(3, 10)) * 2, 40, axis=0)
    assert silhouette_score(X, labels) == pytest.approx(sk_silhouette(X, labels, metric="cosine"), abs=1e-12)
    wide = np.c_[X, rng.normal(size=(120, 20))]
    reduced = PCA(n_components=20, random_state=0).fit_transform(wide)
    assert silhouette_score(wide, labels) == pytest.approx(sk_silhouette(reduced, labels, metric="cosine"),
                                                           abs=1e-12)


def test_two_dimensional_input_is_used_as_is():
    X = np.random.default_rng(0).normal(size=(50, 2))
    assert np.array_equal(to_2d(X), X)


@pytest.mark.slow
def test_divergence_on_umap_separates_mixed_from_shifted_batches():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(300, 10)) + np.repeat(np.eye(10)[:3] * 8, 100, axis=0)
    labels = np.repeat(["x", "y", "z"], 100)
    batch = np.tile(["a", "b"], 150)
    shifted = base + (batch == "b")[:, None] * 5.0
    mixed_score = divergence_score(base, batch, labels, seed=0)
    assert mixed_score == divergence_score(base, batch, labels, seed=0)  # seeded UMAP: reproducible
    assert mixed_score < 0.5 < divergence_score(shifted, batch, labels, seed=0)
