"""scIB silhouettes, isolated labels and PCR against scikit-learn loops written as scib writes them."""

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression
from sklearn.metrics import silhouette_samples, silhouette_score

from scintegrate.metrics import (MetricWarning, asw_batch, asw_label, isolated_label_asw, isolated_label_f1,
                                 isolated_labels, pcr, pcr_comparison)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    labels = np.repeat(["a", "b", "c", "d"], [60, 50, 40, 1])  # "d": a label with a single cell
    batch = np.r_[np.tile(["x", "y"], 30), np.tile(["x", "y", "z"], 17)[:50], ["z"] * 40, ["x"]]
    X = rng.normal(size=(151, 6)) + np.repeat(np.eye(6)[:4] * 4, [60, 50, 40, 1], axis=0)
    X += (batch == "y")[:, None] * 0.8
    return X, batch, labels


def test_asw_label_is_scaled_sklearn_silhouette(data):
    X, _, labels = data
    assert asw_label(X, labels) == pytest.approx((silhouette_score(X, labels) + 1) / 2, abs=1e-12)


def test_asw_batch_matches_scib_loop(data):
    X, batch, labels = data
    per_type = []
    for lab in np.unique(labels):
        m = labels == lab
        if len(set(batch[m])) in (1, m.sum()):  # scib skips these ("c" in one batch, "d" a single cell)
            continue
        per_type.append(np.mean(1 - np.abs(silhouette_samples(X[m], batch[m]))))
    assert asw_batch(X, batch, labels) == pytest.approx(np.mean(per_type), abs=1e-12)


def test_isolated_labels_follow_scib_rule(data):
    _, batch, labels = data
    assert sorted(isolated_labels(batch, labels)) == ["c", "d"]  # present in 1 batch, the minimum
    assert sorted(isolated_labels(batch, labels, iso_threshold=2)) == ["a", "c", "d"]
    every = isolated_labels(np.tile(["x", "y"], 4), np.repeat(["p", "q"], 4))
    assert sorted(every) == ["p", "q"]  # all labels in all batches: all count as isolated (scib)


def test_isolated_label_asw_is_label_vs_rest_silhouette(data):
    X, batch, labels = data
    want = np.mean([(silhouette_score(X, labels == g) + 1) / 2 for g in ["c", "d"]])
    assert isolated_label_asw(X, batch, labels) == pytest.approx(want, abs=1e-12)


def test_isolated_label_f1_hand_computed():
    labels = np.array(["a", "a", "a", "b", "b", "c"])
    batch = np.array(["x", "y", "x", "y", "y", "y"])  # a: 2 batches; b, c: 1 batch -> isolated
    # clustering 1: b's best cluster {a, b, b} -> F1 = 2*2/(2+3) = 0.8; c alone -> 1.0
    assert isolated_label_f1(batch, labels, [np.array([0, 0, 1, 1, 1, 2])]) == pytest.approx(0.9)
    # the best over a sweep counts: clustering 2 isolates b exactly
    both = [np.array([0, 0, 1, 1, 1, 2]), np.array([0, 0, 0, 1, 1, 2])]
    assert isolated_label_f1(batch, labels, both) == pytest.approx(1.0)


def _scib_pcr(X, batch, n_comps):
    """scib's pc_regression: PCA, then one linear model on one-hot batch per PC, R^2 weighted by variance."""
    pca = PCA(n_components=n_comps, svd_solver="full").fit(X)
    scores, var = pca.transform(X), pca.explained_variance_
    dummies = pd.get_dummies(batch).values.astype(float)
    r2 = [max(0, LinearRegression().fit(dummies, scores[:, [i]]).score(dummies, scores[:, [i]]))
          for i in range(n_comps)]
    return float(np.sum(np.array(r2) * var) / var.sum())


def test_pcr_matches_scib_regression_loop(data):
    X, batch, _ = data
    assert pcr(X, batch) == pytest.approx(_scib_pcr(X, batch, 6), rel=1e-8)  # d < 50: all PCs
    wide = np.c_[X, np.random.default_rng(1).normal(size=(151, 24))]
    assert pcr(wide, batch, n_comps=10) == pytest.approx(_scib_pcr(wide, batch, 10), rel=1e-6)


def test_pcr_comparison_scaling_clipping_and_single_batch(data):
    X, batch, _ = data
    corrected = X - (batch == "y")[:, None] * 0.8
    before, after = pcr(X, batch), pcr(corrected, batch)
    assert pcr_comparison(X, corrected, batch) == pytest.approx((before - after) / before)
    assert pcr_comparison(corrected, X, batch) == 0.0  # more batch variance after: clipped
    with pytest.warns(MetricWarning, match="only one batch"):
        assert np.isnan(pcr_comparison(X, X, np.repeat("x", 151)))
    with pytest.raises(ValueError, match="X_unintegrated has 10 rows but the embedding has 151"):
        pcr_comparison(X[:10], X, batch)
