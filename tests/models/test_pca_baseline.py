"""The "pca" baseline: Seurat chain on counts, non-count input, quality on labelled data."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import scintegrate as si
from scintegrate import pp
from scintegrate.models import PCABaseline


def integrate_pca(adata, *, batch_key, seed=0, n_comps=50, n_features=2000):
    model = PCABaseline(n_comps=n_comps, n_features=n_features, seed=seed, device="cpu").fit(adata, batch_key=batch_key)
    return model.embed(), model.to_result().info


def _counts(n=240, g=150, seed=0):
    rng = np.random.default_rng(seed)
    profiles = rng.gamma(0.6, 3, size=(3, g))
    types = np.arange(n) % 3
    X = rng.poisson(profiles[types] * rng.uniform(0.5, 1.5, size=(n, 1))).astype(np.float32)
    obs = pd.DataFrame({"batch": np.repeat(["a", "b"], n // 2), "cell_type": types.astype(str)},
                       index=[f"c{i}" for i in range(n)])
    return ad.AnnData(sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(g)]))


def test_counts_follow_the_pp_chain():
    adata = _counts()
    emb, info = integrate_pca(adata, batch_key="batch", seed=0, n_comps=10,
                              n_features=100)
    ref = adata.copy()
    pp.log_normalize(ref)
    features = pp.select_integration_features(ref, batch_key="batch", n_features=100, fvf_n_features=100)
    pp.scale_data(ref, features=features)
    pp.run_pca(ref, n_comps=10)
    np.testing.assert_allclose(emb, ref.obsm["X_pca"], atol=1e-5)
    assert info["normalized"] and list(info["features"]) == features and info["n_comps"] == 10
    assert sp.issparse(adata.X) and adata.X.max() > 1  # input left as raw counts


def test_integrate_entry_point_and_non_count_input():
    adata = _counts()
    si.integrate(adata, method="pca", batch_key="batch", progress=False, n_comps=5, n_features=100)
    assert adata.obsm["X_pca_baseline"].shape == (240, 5)
    assert adata.uns["scintegrate"]["X_pca_baseline"]["normalized"] is True
    logged = adata.copy()
    pp.log_normalize(logged)
    emb, info = integrate_pca(logged, batch_key="batch", seed=0, n_comps=5,
                              n_features=200)
    assert not info["normalized"] and info["feature_selection"] == "all genes" and emb.shape == (240, 5)
    centred = logged.copy()
    centred.X = logged.X.toarray() - 1.0
    _, info = integrate_pca(centred, batch_key="batch", seed=0, n_comps=5,
                            n_features=50)
    assert info["feature_selection"].startswith("top variance") and len(info["features"]) == 50


def test_separates_cell_types_on_mixology(shared_data):
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.model_selection import cross_val_score

    adata = ad.read_h5ad(shared_data / "mixology_3cl.h5ad")
    emb, _ = integrate_pca(adata, batch_key="batch", seed=0, n_comps=20)
    acc = cross_val_score(KNeighborsClassifier(15), emb, adata.obs["cell_type"].astype(str), cv=5).mean()
    assert acc > 0.95


def test_bad_parameters():
    with pytest.raises(ValueError, match="n_comps must be >= 1"):
        PCABaseline(n_comps=0)
