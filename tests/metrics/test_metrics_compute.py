"""compute_metrics: keys, subsets, aggregates, shared graph, bad input and degenerate data."""

import subprocess
import sys
import warnings

import numpy as np
import pytest

import scintegrate.metrics as sm
from scintegrate.metrics import BATCH_METRICS, BIO_METRICS, METRIC_KEYS, MetricWarning, compute_metrics

NO_UMAP = [m for m in METRIC_KEYS if m not in ("divergence_score", "entropy_score", "silhouette_score")]


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    labels = np.repeat(["t1", "t2", "t3"], [90, 60, 50])
    batch = np.r_[np.tile(["a", "b"], 45), np.tile(["a", "b"], 30), ["b"] * 50]  # t3 only in batch b
    X = rng.normal(size=(200, 6)) + np.repeat(np.eye(6)[:3] * 6, [90, 60, 50], axis=0)
    X_unint = X + (batch == "b")[:, None] * 3.0
    return X, batch, labels, X_unint


@pytest.fixture(scope="module")
def result(toy):
    X, batch, labels, X_unint = toy
    with warnings.catch_warnings():
        warnings.simplefilter("error", MetricWarning)  # nothing is undefined on this data
        return compute_metrics(X, batch, labels, X_unintegrated=X_unint, metrics=NO_UMAP)


def test_returns_exactly_the_documented_keys(result):
    assert tuple(result) == METRIC_KEYS
    assert all(isinstance(v, float) for v in result.values())
    assert np.isnan(result["divergence_score"]) and np.isnan(result["entropy_score"])  # not requested
    assert np.isnan(result["silhouette_score"])


def test_values_match_the_individual_functions(toy, result):
    X, batch, labels, X_unint = toy
    assert result["asw_label"] == sm.asw_label(X, labels)
    assert result["asw_batch"] == sm.asw_batch(X, batch, labels)
    assert result["ilisi"] == np.median(sm.lisi(X, batch))
    assert result["kbet"] == sm.kbet(X, batch, labels)
    assert result["ebm"] == sm.ebm(X, batch)
    assert result["knn_accuracy"] == sm.knn_accuracy(X, labels)
    assert result["graph_connectivity"] == sm.graph_connectivity(X, labels)
    assert result["pcr_comparison"] == sm.pcr_comparison(X_unint, X, batch)
    sweep = sm.resolution_sweep(sm.NeighborGraph.compute(X, 14).connectivities(15), labels)
    assert (result["nmi"], result["ari"]) == (sweep.best_nmi, sweep.best_ari)
    assert result["isolated_label_f1"] == sm.isolated_label_f1(batch, labels, sweep.clusterings)
    assert result["isolated_label_asw"] == sm.isolated_label_asw(X, batch, labels)


def test_aggregates_follow_scib(result):
    ilisi_scaled = (result["ilisi"] - 1) / (2 - 1)
    clisi_scaled = (3 - result["clisi"]) / (3 - 1)
    batch = [ilisi_scaled if m == "ilisi" else result[m] for m in BATCH_METRICS]
    bio = [clisi_scaled if m == "clisi" else result[m] for m in BIO_METRICS]
    assert result["batch_score"] == pytest.approx(np.mean(batch))
    assert result["bio_score"] == pytest.approx(np.mean(bio))
    assert result["overall"] == pytest.approx(0.4 * np.mean(batch) + 0.6 * np.mean(bio))
    assert result["bio_score"] > 0.8  # well-separated types


def test_subset_and_presets(toy):
    X, batch, labels, _ = toy
    res = compute_metrics(X, batch, labels, metrics=["ari", "knn_accuracy"])
    assert tuple(res) == METRIC_KEYS
    assert {k for k, v in res.items() if np.isfinite(v)} == {"nmi", "ari", "knn_accuracy"}
    fast = compute_metrics(X, batch, labels, metrics="fast")
    assert np.isnan(fast["nmi"]) and np.isfinite(fast["kbet"]) and np.isnan(fast["pcr_comparison"])
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['asw'\]"):
        compute_metrics(X, batch, labels, metrics=["asw"])


def test_precomputed_graph_gives_the_same_numbers(toy):
    X, batch, labels, _ = toy
    keys = ["ilisi", "clisi", "ebm", "knn_accuracy", "graph_connectivity", "nmi"]
    graph = sm.NeighborGraph.compute(X, 89)
    a = compute_metrics(X, batch, labels, metrics=keys)
    b = compute_metrics(X, batch, labels, metrics=keys, knn_graph=(graph.idx, graph.dist))
    assert a == pytest.approx(b, nan_ok=True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(X=np.array([[0.0, 1.0], [np.nan, 1.0], [2.0, 2.0]])), "X contains 1 NaN or infinite values"),
        (dict(labels=["t"] * 2), "labels has length 2 but the embedding has 3 cells"),
        (dict(batch=["a", "b"]), "batch has length 2 but the embedding has 3 cells"),
        (dict(labels=["t", None, "t"]), "labels has 1 missing values"),
        (dict(X_unintegrated=np.zeros((2, 2))), "X_unintegrated has 2 rows but the embedding has 3"),
        (dict(X=np.zeros((3, 2, 2))), "X must be 2-D"),
    ],
)
def test_bad_input_raises_clear_errors(kwargs, message):
    args = dict(X=np.zeros((3, 2)), batch=["a", "b", "a"], labels=["t", "u", "t"])
    args.update(kwargs)
    X, batch, labels = args.pop("X"), args.pop("batch"), args.pop("labels")
    with pytest.raises(ValueError, match=message):
        compute_metrics(X, batch, labels, **args)


def test_single_batch_gives_nan_batch_metrics_with_reason(toy):
    X, _, labels, _ = toy
    with pytest.warns(MetricWarning, match=r"only one batch \('a'\): batch-mixing metrics are NaN"):
        res = compute_metrics(X, np.repeat("a", 200), labels, metrics=NO_UMAP)
    for m in BATCH_METRICS + ("batch_score", "overall"):
        assert np.isnan(res[m]), m
    for m in BIO_METRICS + ("bio_score",):
        assert np.isfinite(res[m]), m


def test_label_with_a_single_cell_is_scored(toy):
    X, batch, labels, _ = toy
    labels = labels.copy()
    labels[0] = "lonely"  # documented: silhouette 0 for it, skipped by ASW batch and kBET, usually isolated
    res = compute_metrics(X, batch, labels, metrics=NO_UMAP)
    assert all(np.isfinite(res[m]) for m in NO_UMAP if m != "pcr_comparison")


def test_metrics_package_imports_without_heavy_dependencies():
    code = ("import sys, scintegrate.metrics; "
            "print(sorted(m for m in ('torch', 'umap', 'igraph', 'sklearn', 'jax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow  # numba compiles UMAP's version first (~20 s)
def test_fuzzy_connectivities_equal_umap():
    import scipy.sparse as sp
    from umap.umap_ import fuzzy_simplicial_set

    X = np.random.default_rng(0).normal(size=(300, 5))
    X[1] = X[0]  # a duplicated cell
    graph = sm.NeighborGraph.compute(X, 20)
    idx, dist = graph.with_self(15)
    ref = fuzzy_simplicial_set(sp.coo_matrix((300, 1)), n_neighbors=15, random_state=None, metric=None,
                               knn_indices=idx, knn_dists=dist.astype(np.float32))[0]
    assert abs(graph.connectivities(15) - ref).max() < 1e-6


@pytest.mark.slow
def test_all_metrics_including_bermuda_on_umap():
    rng = np.random.default_rng(0)
    labels = np.repeat(["t1", "t2", "t3"], 150)
    batch = np.r_[np.tile(["a", "b"], 150), ["b"] * 150]  # t3 only in batch b
    centres = np.repeat(np.eye(6)[:3] * 8, 150, axis=0)
    apart = rng.normal(size=(450, 6)) + centres
    res = compute_metrics(apart, batch, labels, X_unintegrated=apart, seed=0)
    assert tuple(res) == METRIC_KEYS and np.isfinite(res["divergence_score"])
    # t3 keeps to itself: its 100 nearest cells are its own (batch b) cells, entropy near 0
    assert res["entropy_score"] < 0.1
    # t3 laid over t1 (cells of both batches): its neighbourhoods mix batches, entropy rises
    merged = apart.copy()
    merged[300:] = rng.normal(size=(150, 6)) + centres[:150]
    assert compute_metrics(merged, batch, labels, metrics=["entropy_score"])["entropy_score"] > 0.4


def test_torch_distance_path_equals_numpy():
    pytest.importorskip("torch")
    from scintegrate.metrics._silhouette import group_distance_sums

    rng = np.random.default_rng(0)
    X, codes = rng.normal(size=(300, 4)), rng.integers(0, 3, 300)
    for metric in ("euclidean", "cosine"):
        np.testing.assert_allclose(group_distance_sums(X, codes, 3, metric, device="cpu", chunk=128),
                                   group_distance_sums(X, codes, 3, metric), rtol=1e-10)


def test_progress_bar_and_cpu_device_accepted(toy, capsys):
    X, batch, labels, _ = toy
    res = compute_metrics(X, batch, labels, metrics=["knn_accuracy"], progress=True, device="cpu")
    assert res["knn_accuracy"] == sm.knn_accuracy(X, labels)
    assert "metrics" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["_checks", "_graph", "_silhouette", "bermuda_scores", "clustering", "lisi",
                                    "mixing", "scib", "summary"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    mod = importlib.import_module(f"scintegrate.metrics.{module}")
    assert doctest.testmod(mod, optionflags=doctest.ELLIPSIS).failed == 0
