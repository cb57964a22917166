"""MetaNeighborUS (exact and fast) and BERMUDA's cluster matching (Eqs. 3-5)."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import rankdata, spearmanr

from scintegrate.tools import cluster_pairs, match_clusters, metaneighbor_us, rank_standardize, unmatched_clusters


def _reference_metaneighbor_us(X, study, cluster):
    """Literal transcription of BERMUDA's ``run_MetaNeighbor_US`` (R, loops), for comparison."""
    names = sorted(set(cluster))
    n = X.shape[0]
    labels = np.zeros((n, len(names)))
    for i, name in enumerate(names):
        labels[cluster == name, i] = 1
    cor = np.round(spearmanr(X.T).statistic, 10)  # cells x cells; rounding keeps ties tied
    rank = rankdata(cor.ravel()).reshape(cor.shape)
    rank = rank / rank.max()
    sumin = rank @ labels
    sumall = rank.sum(axis=0)
    predicts = sumin / sumall[:, None]
    nv = np.zeros((len(names), len(names)))
    for i, name in enumerate(names):
        s = study[cluster == name][0]
        keep = study == s
        pt = np.apply_along_axis(rankdata, 0, np.abs(predicts[keep]))
        pos = cluster[keep] == name
        n_pos, n_neg = pos.sum(), (~pos).sum()
        p = pt[pos].sum(axis=0)
        nv[i] = (p / n_pos - (n_pos + 1) / 2) / n_neg
    return (nv + nv.T) / 2, names


def _toy(seed=0, n_per=40, n_genes=80, shared=(0, 1, 2), extra=(3,)):
    """Two studies with shared types 0..2 and a type 3 only in study b, on different depths."""
    rng = np.random.default_rng(seed)
    profiles = rng.gamma(0.8, 4.0, size=(4, n_genes))
    rows, study, cluster, truth = [], [], [], []
    for s, types, depth in (("a", shared, 1.0), ("b", shared + extra, 2.5)):
        for t in types:
            batch_factor = rng.lognormal(0, 0.3, size=n_genes)
            rows.append(rng.poisson(profiles[t] * depth * batch_factor, size=(n_per, n_genes)))
            study += [s] * n_per
            cluster += [f"{s}|c{t}"] * n_per
            truth += [t] * n_per
    return np.vstack(rows).astype(float), np.array(study), np.array(cluster), np.array(truth)


def test_rank_standardize_dot_products_are_spearman_correlations():
    X, *_ = _toy()
    X = X[:30]
    for data in (X, sp.csr_matrix(X)):
        D, b = rank_standardize(data)
        Z = (D.toarray() if sp.issparse(D) else D) + b[:, None]
        np.testing.assert_allclose(Z @ Z.T, spearmanr(X.T).statistic, atol=1e-10)


def test_rank_standardize_constant_cell_is_zero():
    D, b = rank_standardize(sp.csr_matrix(np.array([[0.0, 0, 0], [1, 2, 0]])))
    assert np.all(D.toarray()[0] + b[0] == 0)


def test_exact_matches_reference_r_transcription():
    X, study, cluster, _ = _toy()
    ours, names = metaneighbor_us(X, study, cluster, method="exact")
    ref, ref_names = _reference_metaneighbor_us(X, study, cluster)
    assert names == ref_names
    np.testing.assert_allclose(ours, ref, atol=1e-10)


def test_sparse_and_dense_input_agree():
    X, study, cluster, _ = _toy(seed=1)
    for method in ("exact", "fast"):
        a, _ = metaneighbor_us(X, study, cluster, method=method)
        b, _ = metaneighbor_us(sp.csr_matrix(X), study, cluster, method=method)
        np.testing.assert_allclose(a, b, atol=1e-10)


def test_fast_and_exact_agree_on_small_data():
    X, study, cluster, _ = _toy(seed=2)
    exact, names = metaneighbor_us(X, study, cluster, method="exact")
    fast, _ = metaneighbor_us(X, study, cluster, method="fast")
    cross = np.array([[a.split("|")[0] != b.split("|")[0] for b in names] for a in names])
    rho = spearmanr(exact[cross], fast[cross]).statistic
    assert rho > 0.9
    # and the same best match for every cluster
    for i in range(len(names)):
        np.testing.assert_array_equal(np.argmax(np.where(cross[i], exact[i], -1)),
                                      np.argmax(np.where(cross[i], fast[i], -1)))


def test_true_types_score_highest():
    X, study, cluster, _ = _toy(seed=3)
    S, names = metaneighbor_us(X, study, cluster)
    for t in range(3):
        i, j = names.index(f"a|c{t}"), names.index(f"b|c{t}")
        assert S[i, j] > 0.9
        others = [names.index(f"b|c{u}") for u in range(4) if u != t]
        assert S[i, j] > S[i, others].max()


def test_auto_switches_to_fast_above_threshold():
    X, study, cluster, _ = _toy(seed=4)
    auto, _ = metaneighbor_us(X, study, cluster, exact_max_cells=10)
    fast, _ = metaneighbor_us(X, study, cluster, method="fast")
    np.testing.assert_allclose(auto, fast)


def test_study_with_one_cluster_uses_the_defined_direction():
    X, study, cluster, _ = _toy(seed=5)
    keep = (study == "b") | (cluster == "a|c0")
    S, names = metaneighbor_us(X[keep], study[keep], cluster[keep])
    assert np.all(np.isfinite(S))
    i = names.index("a|c0")
    assert names[int(np.argmax(np.where([n.startswith("b") for n in names], S[i], -1)))] == "b|c0"


def test_bad_input_messages():
    X, study, cluster, _ = _toy()
    with pytest.raises(ValueError, match="method must be one of"):
        metaneighbor_us(X, study, cluster, method="slow")
    with pytest.raises(ValueError, match="one entry per cell"):
        metaneighbor_us(X, study[:-1], cluster)
    with pytest.raises(ValueError, match="single study"):
        metaneighbor_us(X, study, np.where(cluster == "b|c1", "a|c1", cluster))


def test_match_clusters_hand_computed():
    # clusters: a0 a1 | b0 b1 b2 ; b2 is specific to batch b
    S = np.array([
        [1.0, 0.3, 0.95, 0.40, 0.91],
        [0.3, 1.0, 0.20, 0.88, 0.10],
        [0.95, 0.20, 1.0, 0.5, 0.5],
        [0.40, 0.88, 0.5, 1.0, 0.5],
        [0.91, 0.10, 0.5, 0.5, 1.0],
    ])
    batch = ["a", "a", "b", "b", "b"]
    M = match_clusters(S, batch, threshold=0.85)
    # a0's best in b is b0 (0.95, not b2 at 0.91); b2's best in a is a0 -> kept by the max-symmetrisation
    expected = np.zeros((5, 5))
    for i, j in [(0, 2), (1, 3), (0, 4)]:
        expected[i, j] = expected[j, i] = 1
    np.testing.assert_array_equal(M, expected)
    np.testing.assert_array_equal(cluster_pairs(M), [[0, 2], [0, 4], [1, 3]])
    M90 = match_clusters(S, batch, threshold=0.90)
    assert M90[1, 3] == 0 and M90[0, 4] == 1
    assert unmatched_clusters(M90, ["a0", "a1", "b0", "b1", "b2"]) == ["a1", "b1"]


def test_match_clusters_threshold_range():
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        match_clusters(np.zeros((2, 2)), ["a", "b"], threshold=1.5)
    with pytest.raises(ValueError, match="square"):
        match_clusters(np.zeros((2, 3)), ["a", "b"])


def test_rank_standardize_in_row_chunks_is_identical(monkeypatch):
    import scintegrate.tools.metaneighbor as mn

    X, *_ = _toy(seed=6)
    D, b = rank_standardize(sp.csr_matrix(X))
    monkeypatch.setattr(mn, "RANK_CHUNK", 7)
    Dc, bc = rank_standardize(sp.csr_matrix(X))
    np.testing.assert_allclose(Dc.toarray(), D.toarray())
    np.testing.assert_allclose(bc, b)


def test_row_value_order_matches_lexsort_and_falls_back():
    from scintegrate.tools.metaneighbor import _row_value_order

    rng = np.random.default_rng(0)
    rows = np.sort(rng.integers(0, 50, 2000))
    values = rng.integers(1, 6, 2000).astype(float)  # many ties
    np.testing.assert_array_equal(_row_value_order(values, rows), np.lexsort((values, rows)))
    # values too close for the combined key: the check falls back to lexsort
    close = np.array([1.0 + 1e-15, 1.0, 1e9])
    np.testing.assert_array_equal(_row_value_order(close, np.zeros(3)), [1, 0, 2])
