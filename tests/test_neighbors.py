import numpy as np
import pytest
from scipy.spatial.distance import cdist

from scintegrate.neighbors import knn, knn_graph


def _brute(X, k):
    d = cdist(X, X)
    np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, 1)


@pytest.mark.parametrize("method", ["exact", "torch", "nndescent"])
def test_knn_matches_brute_force(method):
    X = np.random.default_rng(1).normal(size=(300, 8))
    idx, dist = knn(X, 10, method=method)
    ref_idx, ref_dist = _brute(X, 10)
    if method != "nndescent":
        np.testing.assert_allclose(dist, ref_dist, rtol=1e-4, atol=1e-4)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, ref_idx)])
    assert overlap > (0.999 if method != "nndescent" else 0.95)
    assert not (idx == np.arange(300)[:, None]).any()


def test_knn_include_self_and_duplicates():
    X = np.vstack([np.zeros((3, 2)), np.ones((3, 2))])
    idx, dist = knn(X, 2)
    assert idx.shape == (6, 2) and not (idx == np.arange(6)[:, None]).any()
    idx_self, _ = knn(np.random.default_rng(0).normal(size=(20, 3)), 3, include_self=True)
    assert (idx_self[:, 0] == np.arange(20)).all()


def test_knn_errors():
    with pytest.raises(ValueError, match="NaN"):
        knn(np.array([[0.0, np.nan], [1.0, 1.0]]), 1)
    with pytest.raises(ValueError, match="only 3 cells"):
        knn(np.zeros((3, 2)), 5)


def test_knn_graph():
    G = knn_graph(np.array([[1], [0], [1]]))
    assert G.shape == (3, 3) and G.nnz == 3 and G[2, 1] == 1
