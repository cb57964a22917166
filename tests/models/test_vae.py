"""scVI, trVAE and CVAE: the network against hand-computed losses, the training run's schedule and split, bad
input, new cells, and (slow) integration quality on simulated counts with known types."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import scintegrate as si
from scintegrate import registry
from scintegrate.models import CVAE, SCVI, TRVAE
from scintegrate.models._vae_base import default_max_epochs, validation_split
from scintegrate.modules.vae import ConditionalVAE
from scintegrate.nn import kl_normal_var, mmd_between_conditions, nb_nll, zinb_nll


@pytest.fixture(scope="module")
def small():
    return si.datasets.simulate_counts(n_cells=300, n_genes=80, n_batches=3, seed=0)


def _quick(cls, **kw):
    return cls(max_epochs=3, progress=False, **{"n_features": 80, **kw})


# ------------------------------------------------------------------------------------------ the network
@pytest.mark.parametrize("likelihood", ["zinb", "nb", "gaussian"])
def test_loss_is_mean_reconstruction_plus_weighted_kl(likelihood):
    torch.manual_seed(0)
    vae = ConditionalVAE(20, 2, n_latent=3, hidden=(8,), likelihood=likelihood).eval()  # eval: z = mean
    x = torch.poisson(torch.full((6, 20), 1.5))
    s = torch.tensor([0, 1, 0, 1, 1, 0])
    out = vae.loss({"x": x, "condition": s, "kl_weight": 0.3})
    with torch.no_grad():
        mean, var, _ = vae.encoder(torch.log1p(x) if likelihood != "gaussian" else x)
        h = vae.decoder_first(mean, s)
        scores = vae.mean_head(h)
        if likelihood == "gaussian":
            rec = 0.5 * ((x - scores) ** 2).sum(1)
        else:
            mu = torch.softmax(scores, 1) * x.sum(1, keepdim=True)
            theta = vae.log_theta.exp()
            rec = (nb_nll(x, mu, theta) if likelihood == "nb" else zinb_nll(x, mu, theta, vae.dropout_head(h))).sum(1)
        kl = kl_normal_var(mean, var)
    assert float(out["reconstruction"]) == pytest.approx(float(rec.mean()), rel=1e-5)
    assert float(out["kl"]) == pytest.approx(float(kl.mean()), rel=1e-5)
    assert float(out["loss"]) == pytest.approx(float(rec.mean() + 0.3 * kl.mean()), rel=1e-5)
    assert float(out["mmd"]) == 0.0


def test_trvae_mmd_acts_on_the_first_decoder_layer_or_on_z():
    torch.manual_seed(0)
    x = torch.poisson(torch.full((10, 15), 2.0))
    s = torch.tensor([0] * 5 + [1] * 5)
    for on in ("decoder", "z"):
        vae = ConditionalVAE(15, 2, n_latent=3, hidden=(12, 6), likelihood="nb", encode_conditions=True,
                             condition_at="first", norm="layer", mmd_on=on, mmd_weight=2.0).eval()
        out = vae.loss({"x": x, "condition": s, "kl_weight": 1.0})
        with torch.no_grad():
            mean = vae.encoder(torch.log1p(x), s)[0]
            target = vae.decoder_first(mean, s) if on == "decoder" else mean
            want = mmd_between_conditions(target, s, 2)
        assert target.shape[1] == (6 if on == "decoder" else 3)  # the decoder mirrors (12, 6): its first layer is 6
        assert float(out["mmd"]) == pytest.approx(float(want), rel=1e-5) and float(out["mmd"]) > 0
        assert float(out["loss"]) == pytest.approx(float(out["reconstruction"] + out["kl"] + 2.0 * out["mmd"]),
                                                   rel=1e-5)


def test_conditions_enter_where_configured():
    scvi_like = ConditionalVAE(30, 4, hidden=(16, 16))
    assert scvi_like.encoder.conditioned_linears() == []  # scVI's encoder does not read the batch
    assert len(scvi_like.decoder_first.conditioned_linears()) == 1
    assert len(scvi_like.decoder_rest.conditioned_linears()) == 1  # in every decoder layer
    trvae_like = ConditionalVAE(30, 4, hidden=(16, 8), encode_conditions=True, condition_at="first", norm="layer")
    assert len(trvae_like.encoder.conditioned_linears()) == 1
    assert trvae_like.decoder_rest.conditioned_linears() == []  # the first decoder layer only
    for lin in trvae_like.decoder_first.conditioned_linears():
        assert lin.in_features == 10 + 4  # z (10 latent dimensions) and the 4 condition columns
    with pytest.raises(ValueError, match="likelihood must be one of"):
        ConditionalVAE(30, 2, likelihood="poisson")


def test_gene_batch_dispersion_uses_each_cells_batch():
    vae = ConditionalVAE(5, 3, n_latent=2, hidden=(4,), likelihood="nb", dispersion="gene-batch").eval()
    with torch.no_grad():
        vae.log_theta.copy_(torch.log(torch.tensor([[1.0] * 5, [5.0] * 5, [50.0] * 5])))
    x = torch.tensor([[0.0, 3, 1, 0, 7]] * 3)
    h = torch.ones(3, 4)
    rec = vae.reconstruction(x, h, torch.tensor([0, 1, 2]))
    mu = torch.softmax(vae.mean_head(h), 1) * x.sum(1, keepdim=True)
    for i, theta in enumerate((1.0, 5.0, 50.0)):
        assert float(rec[i]) == pytest.approx(float(nb_nll(x[i], mu[i], torch.full((5,), theta)).sum()), rel=1e-5)


# ------------------------------------------------------------------------------------------ schedule and split
def test_epochs_follow_the_data_size_and_the_split_is_seeded():
    assert default_max_epochs(1_000) == 400 and default_max_epochs(50_000) == 160 and default_max_epochs(10**6) == 8
    train, val = validation_split(1000, 0.1, seed=3)
    assert val.size == 100 and train.size == 900 and not set(train) & set(val)
    assert np.array_equal(validation_split(1000, 0.1, seed=3)[1], val)
    assert not np.array_equal(validation_split(1000, 0.1, seed=4)[1], val)
    assert validation_split(10, 0.1, seed=0)[1].size == 0  # one cell held out is too few to score: none


def test_training_records_the_schedule_and_stops_on_the_held_out_elbo(small):
    model = SCVI(max_epochs=60, patience=2, rel_tol=0.5, n_features=80, n_epochs_kl_warmup=10,
                 progress=False).fit(small, batch_key="batch")
    s = model.schedule_
    assert s["n_validation"] == 30 and s["n_train"] == 270 and s["steps_per_epoch"] == 3
    assert s["epochs_used"] < 60 and model.history_.stopped_early and "val_elbo" in model.history_.reason
    assert len(model.history_.losses["val_elbo"]) == s["epochs_used"]
    assert s["epochs_used"] >= 10  # never before the KL weight has reached 1
    # the default warm-up (400 epochs) outlasts the 60 epochs: no early stop, whatever the tolerance
    full = SCVI(max_epochs=60, patience=2, rel_tol=0.5, n_features=80, progress=False).fit(small, batch_key="batch")
    assert full.schedule_["epochs_used"] == 60 and not full.history_.stopped_early


def test_a_last_minibatch_of_one_cell_does_not_crash(small):
    data = small[:257].copy()  # 26 cells held out, 231 trained on: batch_size 230 leaves a minibatch of one
    model = _quick(SCVI, batch_size=230).fit(data, batch_key="batch")
    assert np.isfinite(model.embed()).all()


# ------------------------------------------------------------------------------------------ bad input
def test_count_models_refuse_values_that_are_not_counts(small):
    logged = small.copy()
    logged.X = np.log1p(logged.X.toarray() if sp.issparse(logged.X) else logged.X) + 0.01
    for cls in (SCVI, TRVAE):
        with pytest.raises(ValueError, match="models counts.*'cvae'"):
            _quick(cls).fit(logged, batch_key="batch")
    assert np.isfinite(_quick(CVAE).fit(logged, batch_key="batch").embed()).all()  # the continuous model takes them


def test_cells_without_counts_are_kept_with_a_warning_and_no_nan(small):
    data = small.copy()
    X = data.X.toarray() if sp.issparse(data.X) else np.array(data.X)
    X[:4] = 0
    data.X = sp.csr_matrix(X)
    with pytest.warns(UserWarning, match="4 cells have no counts"):
        model = _quick(SCVI).fit(data, batch_key="batch")
    assert np.isfinite(model.embed()).all() and model.embed().shape[0] == data.n_obs


def test_bad_parameters_give_one_line_errors():
    with pytest.raises(ValueError, match="scVI's likelihood"):
        SCVI(likelihood="gaussian")
    with pytest.raises(ValueError, match="mmd_on"):
        TRVAE(mmd_on="x")
    with pytest.raises(ValueError, match="validation_fraction"):
        SCVI(validation_fraction=1.0)
    with pytest.raises(ValueError, match="n_latent"):
        TRVAE(n_latent=0)


def test_new_cells_of_training_batches_embed_and_new_batches_are_refused_where_the_encoder_reads_them(small):
    trvae = _quick(TRVAE).fit(small, batch_key="batch")
    np.testing.assert_allclose(trvae.embed(small[:50].copy()), trvae.embed()[:50], atol=1e-5)
    other = small[:20].copy()
    other.obs["batch"] = "a new lab"
    with pytest.raises(ValueError, match="not in training"):
        trvae.embed(other)
    scvi = _quick(SCVI).fit(small, batch_key="batch")
    assert scvi.embed(other).shape == (20, 10)  # scVI's encoder does not read the batch


def test_scvi_normalized_expression_is_an_optional_layer(small):
    adata = small.copy()
    si.integrate(adata, method="scvi", progress=False, max_epochs=2, n_features=40, return_normalized=True)
    layer = adata.layers["scvi_normalized"]
    assert layer.shape == adata.shape and sp.issparse(layer)
    sums = np.asarray(layer.sum(1)).ravel()
    np.testing.assert_allclose(sums, 1e4, rtol=1e-3)  # shares of 10,000 over the 40 features
    assert (np.diff(layer.indptr) == 40).all()


def test_normalized_expression_of_new_cells_matches_the_training_cells_and_needs_known_batches(small):
    model = _quick(SCVI).fit(small, batch_key="batch")
    new = small[:40].copy()
    np.testing.assert_allclose(model.normalized_expression(new), model.normalized_expression()[:40], rtol=1e-5)
    new.obs["batch"] = "unseen"
    with pytest.raises(ValueError, match=r"batches \['unseen'\] were not in training"):
        model.normalized_expression(new)
    del new.obs["batch"]
    with pytest.raises(KeyError, match="the decoder needs each cell's batch"):
        model.normalized_expression(new)


def test_learned_library_size_has_the_data_prior_and_its_kl_term():
    torch.manual_seed(0)
    vae = ConditionalVAE(20, 2, n_latent=3, hidden=(8,), library="learned").eval()
    vae.set_library_prior([3.0, 4.0], [0.5, 0.2])
    x = torch.poisson(torch.full((6, 20), 1.5))
    s = torch.tensor([0, 1, 0, 1, 1, 0])
    out = vae.loss({"x": x, "condition": s, "kl_weight": 0.3})
    with torch.no_grad():
        m, v, _ = vae.library_encoder(torch.log1p(x))
        q = torch.distributions.Normal(m[:, 0], v[:, 0].sqrt())
        p = torch.distributions.Normal(torch.tensor([3.0, 4.0])[s], torch.tensor([0.5, 0.2])[s].sqrt())
        kl = torch.distributions.kl_divergence(q, p)
    assert float(out["kl_library"]) == pytest.approx(float(kl.mean()), rel=1e-5)
    assert float(out["loss"]) == pytest.approx(float(out["reconstruction"] + 0.3 * out["kl"] + kl.mean()), rel=1e-5)
    with pytest.raises(ValueError, match="a learned library size needs a count likelihood"):
        ConditionalVAE(20, 2, likelihood="gaussian", library="learned")


def test_learned_library_prior_is_fitted_per_batch_and_reloads(small, tmp_path):
    from scintegrate.models._vae_base import library_prior

    model = _quick(SCVI, library="learned").fit(small, batch_key="batch")
    X = small[:, model.features_].X
    train, _ = validation_split(small.n_obs, 0.1, 0)
    mean, var = library_prior(X, model.train_codes_, train, 3)
    totals = np.asarray(X.sum(1)).ravel()
    first = train[model.train_codes_[train] == 0]
    assert mean[0] == pytest.approx(np.log(totals[first]).mean()) and var[0] == pytest.approx(
        np.log(totals[first]).var())
    np.testing.assert_allclose(model.module.library_log_mean.numpy(), mean, rtol=1e-6)
    model.save(tmp_path / "m")
    np.testing.assert_array_equal(SCVI.load(tmp_path / "m").embed(small[:30].copy()), model.embed(small[:30].copy()))


# ------------------------------------------------------------------------------------------ quality (slow)
def _scores(adata, Z):
    from scintegrate.metrics import compute_metrics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compute_metrics(Z, adata.obs["batch"].to_numpy(), adata.obs["cell_type"].to_numpy(),
                               metrics=["nmi", "ari", "ilisi", "asw_label"], seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("method, min_nmi", [("scvi", 0.8), ("trvae", 0.8), ("cvae", 0.75)])
def test_integrates_simulated_batches_and_keeps_the_types(method, min_nmi):
    """2,000 cells x 1,000 genes, 4 types in 2 batches with a batch effect (the uncorrected PCA: NMI 0.72, ARI
    0.57): the integrated latent space mixes the batches better than the PCA and keeps the types (ARI of the
    Leiden sweep > 0.8, NMI > min_nmi). CVAE's Gaussian decoder of log counts is the weakest of the three on
    counts: its NMI spans 0.78-0.84 over seeds 0-2 and 1 or 2 threads, so it is held to 0.75."""
    adata = si.datasets.simulate_counts(n_cells=2000, n_genes=1000, n_batches=2, seed=3, batch_effect=0.5)
    base = si.integrate(adata.copy(), method="pca", progress=False, copy=True).obsm["X_pca_baseline"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = registry.get_spec(method).model_class()(seed=0, progress=False, n_features=1000)
        Z = model.fit(adata, batch_key="batch").embed()
    ours, pca = _scores(adata, Z), _scores(adata, base)
    assert ours["nmi"] > min_nmi and ours["ari"] > 0.8, ours
    assert ours["ilisi"] > pca["ilisi"] + 0.1, (ours, pca)


def test_cuda_goes_through_the_device_logic(small):
    if not torch.cuda.is_available():
        for cls in (SCVI, TRVAE, CVAE):
            with pytest.raises(RuntimeError, match="CUDA is not available"):
                cls(device="cuda")
        return
    model = _quick(SCVI, device="cuda").fit(small, batch_key="batch")
    assert next(model.module.parameters()).is_cuda and np.isfinite(model.embed()).all()
