"""LISI: reproduces the reference LISI output and a plain per-cell re-implementation."""

import numpy as np
import pandas as pd
import pytest

from scintegrate.metrics import MetricWarning, NeighborGraph, lisi, simpson_index


def _reference(shared_data):
    ref = shared_data / "reference"
    X = pd.read_csv(ref / "lisi_x.tsv.gz", sep="\t").values
    meta = pd.read_csv(ref / "lisi_metadata.tsv.gz", sep="\t")
    expected = pd.read_csv(ref / "lisi_lisi.tsv.gz", sep="\t", index_col=0)
    return X, meta, expected


@pytest.mark.parametrize("column", ["label1", "label2"])
def test_lisi_reproduces_reference_output(shared_data, column):
    X, meta, expected = _reference(shared_data)
    got = lisi(X, meta[column].values, perplexity=30)
    np.testing.assert_allclose(got, expected[column].values, atol=1e-3)


def _simpson_one_cell(d, labels, perplexity, tol=1e-5):
    """The reference algorithm, one cell at a time, written out literally."""
    beta, bmin, bmax = 1.0, -np.inf, np.inf

    def h(beta):
        P = np.exp(-d * beta)
        s = P.sum()
        return (0.0, P * 0) if s == 0 else (np.log(s) + beta * (d * P).sum() / s, P / s)

    H, P = h(beta)
    for _ in range(50):
        diff = H - np.log(perplexity)
        if abs(diff) < tol:
            break
        if diff > 0:
            bmin = beta
            beta = beta * 2 if np.isinf(bmax) else (beta + bmax) / 2
        else:
            bmax = beta
            beta = beta / 2 if np.isinf(bmin) else (beta + bmin) / 2
        H, P = h(beta)
    return sum(P[labels == lab].sum() ** 2 for lab in np.unique(labels))


def test_vectorised_simpson_matches_per_cell_loop():
    rng = np.random.default_rng(1)
    dist = np.sort(rng.gamma(2.0, 1.0, size=(60, 29)), axis=1)
    codes = rng.integers(0, 3, size=(60, 29))
    got = simpson_index(dist, codes, 3, perplexity=10)
    want = [_simpson_one_cell(dist[i], codes[i], 10) for i in range(60)]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_lisi_bounds_on_mixed_and_separated_batches():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    mixed = np.tile(["a", "b"], 200)
    assert 1.8 < np.median(lisi(X, mixed)) <= 2.0
    apart = np.r_[X[:200], X[200:] + 100]
    assert np.allclose(lisi(apart, np.repeat(["a", "b"], 200)), 1.0)


def test_lisi_precomputed_graph_equals_computed_and_small_graph_warns():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    labels = rng.integers(0, 3, 200)
    g = NeighborGraph.compute(X, 89)
    np.testing.assert_allclose(lisi(None, labels, knn=g), lisi(X, labels))
    with pytest.warns(MetricWarning, match="perplexity 10"):
        lisi(None, labels, knn=NeighborGraph(g.idx[:, :29], g.dist[:, :29]))
