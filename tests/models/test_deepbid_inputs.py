"""DeepBID's input preparation on every kind of input the validation accepts: the Seurat HVG statistics
(overflow-free, equal to scanpy's where scanpy is finite), declared-log input with huge values, non-integer
counts, and the regression for ``cannot specify integer bins when input data contains infinity``."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.special import logsumexp

import scintegrate as si
from scintegrate.cli import main
from scintegrate.data import extract
from scintegrate.models import DeepBID
from scintegrate.models._deepbid_data import _hvgs, prepare_inputs

FAST = dict(hidden=(24, 8), pretrain_epochs=1, cluster_epochs=1, n_top_genes=50, n_clusters=2, progress=False,
            device="cpu")


def _umi_and_tpm(n=80, g=200, seed=0, tpm_scale=1e6):
    """A batch of integer UMI counts and a batch of TPM-like non-integer values (up to ~1e5), as a held-back
    multi-technology set mixes them."""
    rng = np.random.default_rng(seed)
    mu = rng.gamma(0.5, 2.0, g)
    umi = rng.poisson(mu, (n, g)).astype(np.float64)
    raw = rng.poisson(mu * 3, (n, g)) * rng.lognormal(0, 0.3, (n, g))
    raw[0, 0] = raw[0].sum() * 0.2  # one dominant gene in one cell: TPM ~ 1e5
    tpm = raw / raw.sum(1, keepdims=True) * tpm_scale
    obs = pd.DataFrame({"batch": ["umi"] * n + ["tpm"] * n}, index=[f"c{i}" for i in range(2 * n)])
    return ad.AnnData(sp.csr_matrix(np.vstack([umi, tpm]).astype(np.float32)), obs=obs,
                      var=pd.DataFrame(index=[f"g{j}" for j in range(g)]))


def _scanpy_seurat(logx):
    import scanpy as sc

    sub = ad.AnnData(X=sp.csr_matrix(logx, dtype=np.float32))
    sc.pp.highly_variable_genes(sub, n_top_genes=30, flavor="seurat")
    return sub.var


def test_seurat_statistics_and_selection_equal_scanpy_on_log_data():
    from scintegrate.models._deepbid_data import seurat_dispersions, seurat_top_genes

    rng = np.random.default_rng(0)
    counts = rng.negative_binomial(2, 0.3, (150, 120)) * (rng.random((150, 120)) < 0.6)
    counts[:, :5] = 0  # all-zero genes: scanpy's 1e-12 mean and NaN dispersion
    counts[:, 5] = 3  # constant gene: zero variance, NaN dispersion
    logx = sp.csr_matrix(np.log1p(1e4 * counts / np.maximum(counts.sum(1, keepdims=True), 1)))
    ref = _scanpy_seurat(logx)
    means, disp = seurat_dispersions(logx)
    np.testing.assert_allclose(means, ref["means"], rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(np.isnan(disp), np.isnan(ref["dispersions"].to_numpy()))
    ok = ~np.isnan(disp)
    np.testing.assert_allclose(disp[ok], ref["dispersions"].to_numpy()[ok], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(seurat_top_genes(means, disp, 30), ref["highly_variable"].to_numpy())


def test_seurat_statistics_stay_finite_and_exact_where_expm1_overflows():
    """float32 expm1 is inf above 88.7 (float64 above 709.8): scanpy's means become inf there. Ours are
    log-domain: equal to a float64 brute force for values up to 300, and to logsumexp beyond."""
    from scintegrate.models._deepbid_data import seurat_dispersions, seurat_top_genes

    rng = np.random.default_rng(1)
    x = rng.uniform(0, 3, (40, 6))
    x[rng.random((40, 6)) < 0.3] = 0.0
    x[:, 1] *= 100  # up to 300: float32 expm1 overflows, float64 does not
    means, disp = seurat_dispersions(sp.csr_matrix(x))
    y = np.expm1(x)  # float64 brute force
    np.testing.assert_allclose(means, np.log1p(y.mean(0)), rtol=1e-12)
    np.testing.assert_allclose(disp, np.log(y.var(0, ddof=1) / y.mean(0)), rtol=1e-10)
    x[:, 2] *= 1e5 / 3  # TPM-scale values declared as log: e^x has no float64 value at all
    x[0, 3] = 3e38  # near the float32 limit
    means, disp = seurat_dispersions(sp.csr_matrix(x.astype(np.float32)))
    assert np.isfinite(means).all() and np.isfinite(disp).all()
    x32 = x.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(means[2:4], logsumexp(x32[:, 2:4], axis=0) - np.log(40), rtol=1e-12)
    selected = seurat_top_genes(means, disp, 2)
    assert selected.sum() == 2


def test_hvgs_of_values_above_the_float32_expm1_limit_do_not_reach_the_binning_as_inf():
    """The reported crash, at its source: ``_hvgs`` on log values above 88.7 (input='log' on counts or TPM)
    raised ``cannot specify integer bins when input data contains infinity``."""
    rng = np.random.default_rng(2)
    logx = sp.csr_matrix(rng.poisson(2.0, (50, 40)).astype(np.float32) * 50)  # counts up to ~500, as "log"
    genes = np.array([f"g{j}" for j in range(40)])
    chosen = _hvgs(logx, genes, 10)
    assert 10 <= len(chosen) < 40


@pytest.mark.parametrize("route", ["api", "cli"])
def test_umi_and_tpm_batches_declared_log_integrate(route, tmp_path):
    """Regression: integer UMI counts + TPM values (up to ~1e5) with input='log' / --input-kind log crashed in
    DeepBID's HVG step (float32 expm1 -> inf means -> pd.cut)."""
    a = _umi_and_tpm()
    assert float(a.X.max()) > 5e4
    if route == "api":
        si.integrate(a, method="deepbid", input="log", seed=0, **FAST)
        out = a
    else:
        src, dst = tmp_path / "in.h5ad", tmp_path / "out.h5ad"
        a.write_h5ad(src)
        params = [f"{k}={v}" for k, v in FAST.items() if k not in ("progress", "device")]
        args = ["integrate", str(src), "--method", "deepbid", "--input-kind", "log", "--out", str(dst), "--quiet",
                "--device", "cpu"]
        assert main(args + [x for p in params for x in ("--param", p)]) == 0
        out = ad.read_h5ad(dst)
    info = out.uns["scintegrate"]["X_deepbid"]
    assert info["likelihood"] == "gaussian"
    assert np.isfinite(out.obsm["X_deepbid"]).all() and np.isfinite(out.obsm["deepbid_soft"]).all()


def test_umi_and_tpm_batches_declared_counts_embed_new_cells_like_training():
    """input='counts' normalises the non-integer values as counts (Gaussian term, since they are not
    integers); new cells must be normalised the same way, so re-embedding the training cells reproduces
    the training embedding."""
    a = _umi_and_tpm()
    model = DeepBID(seed=0, **FAST).fit(a, input="counts")
    assert model.input_kind_ == "noninteger_counts" and model.likelihood_ == "gaussian"
    np.testing.assert_allclose(model.embed(a), model.embed(), rtol=1e-5, atol=1e-6)


def test_integer_counts_declared_log_are_not_given_an_nb_term():
    """input='log' takes the values as they are; an NB term on them would read declared log values as counts
    (and huge integer-valued 'log' values overflowed it)."""
    a = _umi_and_tpm()
    a.X = sp.csr_matrix(np.round(a.X.toarray()))
    inp = prepare_inputs(extract(a, "batch", input="log"), n_top_genes=50)
    assert inp.likelihood == "gaussian" and inp.counts is None
    np.testing.assert_array_equal(inp.logx.toarray(), a.X.toarray()[:, a.var_names.get_indexer(inp.genes)])
    assert prepare_inputs(extract(a, "batch"), n_top_genes=50).likelihood == "nb"  # auto: counts


@pytest.mark.parametrize("big", [1e5, 1e20, 3e38])
def test_declared_log_values_up_to_the_float32_limit_train_finite(big):
    rng = np.random.default_rng(0)
    X = rng.poisson(1.0, (120, 60)).astype(np.float32) + 0.5 * (rng.random((120, 60)) < 0.1)
    X[5, 3], X[70, 4], X[71, 4] = big, big, big * 0.9
    obs = pd.DataFrame({"batch": ["a"] * 60 + ["b"] * 60}, index=[f"c{i}" for i in range(120)])
    a = ad.AnnData(sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(60)]))
    inp = prepare_inputs(extract(a, "batch", input="log"), n_top_genes=20)
    assert np.isfinite(inp.gene_mean).all() and np.isfinite(inp.gene_std).all()
    assert np.isfinite(inp.x_rows(slice(None))).all()
    model = DeepBID(seed=0, **{**FAST, "n_top_genes": 20}).fit(a, input="log")
    assert np.isfinite(model.embed()).all()
