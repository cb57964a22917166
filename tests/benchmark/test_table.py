"""benchmark() / score_embedding(): table shape, what reaches the metrics, and input errors."""

import numpy as np
import pandas as pd
import pytest

from scintegrate.benchmark import METRIC_COLUMNS, benchmark, score_embedding
from scintegrate.benchmark.table import default_embeddings

#: everything but BERMUDA's divergence / entropy, which need a 2-D UMAP (slow to compile in tests)
NO_UMAP = [m for m in METRIC_COLUMNS if m not in ("divergence_score", "entropy_score")]


def test_benchmark_one_row_per_embedding_all_metric_columns(adata, structured):
    adata.obsm["X_good"] = structured(adata, label_sep=6.0)
    adata.obsm["X_noise"] = np.random.default_rng(1).normal(size=(adata.n_obs, 10)).astype(np.float32)
    df = benchmark(adata, embeddings=["X_good", "X_noise"], metrics=NO_UMAP, progress=False)
    assert list(df.index) == ["X_good", "X_noise"]
    assert df.index.name == "embedding"
    assert list(df.columns) == METRIC_COLUMNS
    assert df.dtypes.map(lambda d: np.issubdtype(d, np.floating)).all()
    assert df["divergence_score"].isna().all() and df[NO_UMAP].notna().all().all()
    # the unintegrated PCA was computed with scintegrate.pp and stored for reuse
    assert adata.obsm["X_pca"].shape[0] == adata.n_obs and 2 < adata.obsm["X_pca"].shape[1] <= 50
    # cell types separated by the embedding -> better bio conservation than noise
    assert df.loc["X_good", "bio_score"] > df.loc["X_noise", "bio_score"] + 0.1
    assert df.loc["X_good", "asw_label"] > df.loc["X_noise", "asw_label"]


def test_batch_shift_lowers_batch_score(adata, structured):
    adata.obsm["X_mixed"] = structured(adata, seed=0)
    adata.obsm["X_split"] = structured(adata, seed=0, batch_shift=12.0)
    df = benchmark(adata, embeddings=["X_mixed", "X_split"], unintegrated=None, metrics=NO_UMAP, progress=False)
    assert df.loc["X_mixed", "batch_score"] > df.loc["X_split", "batch_score"] + 0.1
    assert "X_pca" not in adata.obsm  # unintegrated=None computes nothing


def test_unintegrated_can_be_scored_before_it_exists(adata):
    df = benchmark(adata, embeddings=["X_pca"], metrics=["asw_label", "knn_accuracy"], progress=False)
    assert list(df.index) == ["X_pca"] and 0.0 <= df.loc["X_pca", "knn_accuracy"] <= 1.0


def test_default_embeddings_skip_2d_and_foreign_shapes(adata):
    adata.obsm["X_a"] = np.zeros((adata.n_obs, 5))
    adata.obsm["X_umap"] = np.zeros((adata.n_obs, 2))
    adata.obsm["X_names"] = np.full((adata.n_obs, 3), "x", dtype=object)
    assert default_embeddings(adata) == ["X_a"]


def test_metrics_subset_is_passed_through(adata, structured, monkeypatch):
    import scintegrate.metrics as metrics

    seen = {}
    real = metrics.compute_metrics

    def spy(X, batch, labels, **kw):
        seen.update(kw, X=X, batch=batch, labels=labels)
        return real(X, batch, labels, **kw)

    monkeypatch.setattr(metrics, "compute_metrics", spy)
    adata.obsm["X_e"] = structured(adata)
    df = benchmark(adata, embeddings="X_e", metrics=["nmi", "ari"], seed=3, unintegrated=None, progress=False)
    assert seen["metrics"] == ["nmi", "ari"] and seen["seed"] == 3
    np.testing.assert_array_equal(seen["labels"], adata.obs["cell_type"].astype(str).to_numpy())
    np.testing.assert_array_equal(seen["X"], adata.obsm["X_e"])
    assert {"nmi", "ari"} <= set(df.columns)


def test_score_embedding_array_and_key_agree(adata, structured):
    emb = structured(adata)
    adata.obsm["X_seurat"] = emb
    by_key = score_embedding(adata, "X_seurat", batch_key="batch", label_key="cell_type", metrics=NO_UMAP)
    by_array = score_embedding(adata, emb, batch_key="batch", label_key="cell_type", name="seurat", metrics=NO_UMAP)
    assert list(by_key.index) == ["X_seurat"] and list(by_array.index) == ["seurat"]
    assert list(by_key.columns) == METRIC_COLUMNS
    np.testing.assert_allclose(by_key.to_numpy(), by_array.to_numpy(), rtol=1e-6, equal_nan=True)


def test_missing_label_column(adata, structured):
    adata.obsm["X_e"] = structured(adata)
    with pytest.raises(KeyError, match="label column 'celltype' not found in adata.obs"):
        benchmark(adata, label_key="celltype", embeddings=["X_e"], progress=False)


def test_missing_batch_column(adata):
    with pytest.raises(KeyError, match="batch column 'sample' not found"):
        score_embedding(adata, "X_e", batch_key="sample")


def test_embedding_key_absent(adata):
    with pytest.raises(KeyError, match="embedding 'X_nope' not found in adata.obsm"):
        benchmark(adata, embeddings=["X_nope"], progress=False)
    with pytest.raises(KeyError, match="embedding 'X_nope' not found"):
        score_embedding(adata, "X_nope")


def test_bad_embeddings(adata, structured):
    with pytest.raises(ValueError, match=r"shape \(10, 3\); expected 300 rows"):
        score_embedding(adata, np.zeros((10, 3)))
    bad = structured(adata)
    bad[5, 2] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        score_embedding(adata, bad)
    with pytest.raises(ValueError, match="no embeddings given"):
        benchmark(adata, embeddings=[], progress=False)


def test_bad_labels_and_batches(adata, structured):
    emb = structured(adata)
    adata.obs["cell_type"] = adata.obs["cell_type"].astype(object)
    adata.obs.iloc[:4, adata.obs.columns.get_loc("cell_type")] = None
    with pytest.raises(ValueError, match="obs\\['cell_type'\\] has 4 missing values"):
        score_embedding(adata, emb)
    one_batch = adata.copy()
    one_batch.obs["cell_type"] = "t"
    one_batch.obs["batch"] = pd.Categorical(["b1"] * adata.n_obs)
    with pytest.raises(ValueError, match="at least 2 batches"):
        score_embedding(one_batch, emb)
