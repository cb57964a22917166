"""VAE building blocks (ZINB, deep-injection MLP, Gaussian encoder, KL warm-up, trVAE MMD) against
scipy / numpy references and hand-computed values."""

import numpy as np
import pytest
import torch
from scipy import special, stats

from scintegrate.nn import (
    MLP,
    TRVAE_SCALES,
    GaussianEncoder,
    kl_normal_var,
    kl_warmup,
    mmd_between_conditions,
    mmd_rbf_multiscale,
    nb_nll,
    zinb_nll,
)

# --------------------------------------------------------------------------------------------- ZINB


def _zinb_inputs(seed=0, shape=(30, 9)):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 40, size=shape).astype(np.float64)
    x[rng.random(shape) < 0.4] = 0.0
    mu = rng.gamma(2.0, 3.0, size=shape)
    theta = rng.gamma(1.0, 2.0, size=shape) + 0.05
    logits = rng.uniform(-5, 5, size=shape)
    return x, mu, theta, logits


def test_zinb_nll_matches_scipy_mixture():
    x, mu, theta, logits = _zinb_inputs()
    pi = special.expit(logits)
    nb_logpmf = stats.nbinom.logpmf(x, theta, theta / (theta + mu))
    expected = np.where(x == 0, -np.log(pi + (1 - pi) * np.exp(nb_logpmf)), -np.log1p(-pi) - nb_logpmf)
    got = zinb_nll(*(torch.tensor(a) for a in (x, mu, theta, logits))).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert (x == 0).any() and (x > 0).any()


def test_zinb_nll_without_inflation_is_nb_nll():
    x, mu, theta, _ = (torch.tensor(a) for a in _zinb_inputs(1))
    logits = torch.full_like(x, -50.0)
    torch.testing.assert_close(zinb_nll(x, mu, theta, logits), nb_nll(x, mu, theta), rtol=1e-9, atol=1e-12)
    x32, mu32, theta32 = x.float(), mu.float(), theta.float()
    torch.testing.assert_close(zinb_nll(x32, mu32, theta32, logits.float()), nb_nll(x32, mu32, theta32))


def test_zinb_nll_finite_in_float32_at_extremes():
    values = {"x": [0.0, 1.0, 1e4], "mu": [1e-12, 1.0, 1e5], "theta": [1e-10, 1.0, 1e8], "pi": [-30.0, 0.0, 30.0]}
    grid = torch.cartesian_prod(*(torch.tensor(v, dtype=torch.float32) for v in values.values()))
    mu, theta, logits = (grid[:, i].clone().requires_grad_(True) for i in (1, 2, 3))
    nll = zinb_nll(grid[:, 0], mu, theta, logits)
    assert nll.dtype == torch.float32 and torch.isfinite(nll).all()
    nll.sum().backward()
    for t in (mu, theta, logits):
        assert torch.isfinite(t.grad).all()


def test_zinb_nll_gradients_finite_and_match_autograd_check():
    x, mu, theta, logits = (torch.tensor(a[:3, :4]) for a in _zinb_inputs(2))
    params = [t.clone().requires_grad_(True) for t in (mu, theta, logits)]
    assert torch.autograd.gradcheck(lambda m, t, p: zinb_nll(x, m, t, p), params)
    zinb_nll(x, *params).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in params)


# ---------------------------------------------------------------------------------------------- MLP


def test_mlp_default_state_dict_keys_unchanged():
    keys = list(MLP([5, 4, 3], n_conditions=2, batch_norm=True).state_dict())
    assert keys == ["net.0.weight", "net.0.bias", "net.1.weight", "net.1.bias", "net.1.running_mean",
                    "net.1.running_var", "net.1.num_batches_tracked", "net.3.weight", "net.3.bias"]


@pytest.mark.parametrize("condition_at", ["first", "all"])
def test_mlp_condition_modes_shapes_and_effect(condition_at):
    torch.manual_seed(0)
    net = MLP([5, 8, 6, 3], n_conditions=2, condition_at=condition_at, layer_norm=True, dropout=0.2).eval()
    x = torch.randn(4, 5)
    out0, out1 = net(x, torch.zeros(4, dtype=torch.long)), net(x, torch.ones(4, dtype=torch.long))
    assert out0.shape == (4, 3)
    assert not torch.allclose(out0, out1)
    linears = [m for m in net.net if isinstance(m, torch.nn.Linear)]
    conditioned = net.conditioned_linears()
    if condition_at == "all":
        assert [m.in_features for m in linears] == [7, 10, 8]
        assert conditioned == linears
    else:
        assert [m.in_features for m in linears] == [7, 8, 6]
        assert conditioned == linears[:1]
    assert all(isinstance(m, torch.nn.Linear) for m in conditioned)
    assert MLP([5, 3], condition_at=condition_at).conditioned_linears() == []


def test_mlp_condition_weights_are_the_last_columns():
    net = MLP([3, 4, 2], n_conditions=2, condition_at="all", activation="none")
    x, c = torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1])
    with torch.no_grad():
        h = x
        for layer in net.conditioned_linears():
            w = layer.weight
            h = h @ w[:, :-2].t() + w[:, -2:][:, c].t() + layer.bias
    torch.testing.assert_close(net(x, c), h)


def test_mlp_all_matches_first_when_single_layer():
    torch.manual_seed(1)
    first = MLP([5, 3], n_conditions=2)
    deep = MLP([5, 3], n_conditions=2, condition_at="all")
    deep.load_state_dict(first.state_dict())
    x, c = torch.randn(6, 5), torch.tensor([0, 1, 0, 1, 1, 0])
    torch.testing.assert_close(deep(x, c), first(x, c))


def test_mlp_layer_norm_normalises_hidden_rows():
    torch.manual_seed(2)
    net = MLP([6, 16, 3], layer_norm=True, activation="none")
    assert isinstance(net.net[1], torch.nn.LayerNorm) and len(list(net.net[1].parameters())) == 0
    captured = {}
    net.net[1].register_forward_hook(lambda mod, inp, out: captured.setdefault("h", out))
    net(torch.randn(8, 6) * 5 + 3)
    h = captured["h"]
    torch.testing.assert_close(h.mean(1), torch.zeros(8), atol=1e-5, rtol=0)
    torch.testing.assert_close(h.var(1, unbiased=False), torch.ones(8), atol=1e-3, rtol=0)
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in net.net) == 1  # not after the last layer


def test_mlp_hidden_last_normalises_and_drops_out_after_the_last_layer_too():
    plain = MLP([5, 4, 3], batch_norm=True, dropout=0.1, last_activation="relu")
    body = MLP([5, 4, 3], batch_norm=True, dropout=0.1, last_activation="relu", hidden_last=True)
    kinds = [type(m).__name__ for m in body.net]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear", "BatchNorm1d", "ReLU", "Dropout"]
    assert [type(m).__name__ for m in plain.net] == kinds[:5] + ["ReLU"]
    assert isinstance(MLP([5, 3], layer_norm=True, hidden_last=True).net[1], torch.nn.LayerNorm)


def test_mlp_rejects_bad_options():
    with pytest.raises(ValueError, match="condition_at"):
        MLP([3, 2], condition_at="every")
    with pytest.raises(ValueError, match="batch_norm and layer_norm"):
        MLP([3, 4, 2], batch_norm=True, layer_norm=True)


# ------------------------------------------------------------------------------------------ encoder


@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
def test_gaussian_encoder_shapes_and_eval_mode(norm):
    torch.manual_seed(3)
    enc = GaussianEncoder(7, 3, hidden=(16, 8), n_conditions=2, condition_at="all", norm=norm)
    x, c = torch.randn(10, 7), torch.randint(0, 2, (10,))
    mean, var, z = enc(x, c)
    assert mean.shape == var.shape == z.shape == (10, 3)
    assert (var > 0).all()
    assert not torch.equal(z, mean)
    enc.eval()
    mean, var, z = enc(x, c)
    assert torch.equal(z, mean) and (var >= 1e-4).all()
    assert [m.in_features for m in enc.conditioned_linears()] == [9, 18]


def test_gaussian_encoder_body_layout_and_defaults():
    enc = GaussianEncoder(6, 2)  # hidden=(128,), batch norm, dropout 0.1: all on the single body layer
    kinds = [type(m).__name__ for m in enc.body.net]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Dropout"] and enc.body.net[0].out_features == 128
    assert enc.mean.in_features == enc.logvar.in_features == 128 and enc.mean.out_features == 2
    assert enc.conditioned_linears() == []
    enc = GaussianEncoder(6, 2, hidden=(8, 4), norm="layer", dropout=0.0, activation="tanh", n_conditions=3)
    assert [type(m).__name__ for m in enc.body.net] == ["Linear", "LayerNorm", "Tanh"] * 2
    assert [m.in_features for m in enc.conditioned_linears()] == [9]
    with pytest.raises(ValueError, match="conditional"):
        enc(torch.zeros(2, 6))


def test_gaussian_encoder_samples_have_the_predicted_variance():
    torch.manual_seed(4)
    enc = GaussianEncoder(5, 2, hidden=(8,), dropout=0.0, norm="none")
    x = torch.randn(1, 5).expand(4000, 5)
    with torch.no_grad():
        mean, var, z = enc(x)
    assert enc.training
    torch.testing.assert_close(z.var(0), var[0], rtol=0.1, atol=0)
    torch.testing.assert_close(z.mean(0), mean[0], rtol=0, atol=float(4 * (var[0] / 4000).sqrt().max()))


def test_gaussian_encoder_rejects_bad_norm():
    with pytest.raises(ValueError, match="norm"):
        GaussianEncoder(5, 2, norm="group")


def test_kl_normal_var_hand_values():
    mean = torch.tensor([[1.0, -2.0], [0.0, 0.0]])
    var = torch.tensor([[0.5, 4.0], [1.0, 1.0]])
    expected = [0.5 * ((1 + 0.5 - 1 - np.log(0.5)) + (4 + 4 - 1 - np.log(4.0))), 0.0]
    np.testing.assert_allclose(kl_normal_var(mean, var).numpy(), expected, rtol=1e-6, atol=1e-7)


def test_kl_warmup_schedule():
    assert kl_warmup(0, 10) == 0.0
    assert kl_warmup(5, 10) == pytest.approx(0.5)
    assert kl_warmup(10, 10, max_weight=2.0) == pytest.approx(2.0)
    assert kl_warmup(25, 10, max_weight=2.0) == pytest.approx(2.0)
    assert kl_warmup(3, 0, max_weight=0.7) == pytest.approx(0.7)
    assert kl_warmup(0, None) == 1.0
    assert isinstance(kl_warmup(1, 4), float)


# ---------------------------------------------------------------------------------------------- MMD


def _numpy_mmd(x, y, scales=TRVAE_SCALES):
    def k(a, b):
        d2 = np.sum((a - b) ** 2)
        return sum(np.exp(-d2 / (2 * s)) for s in scales)

    def mean_k(a, b):
        return np.mean([[k(ai, bj) for bj in b] for ai in a])

    return mean_k(x, x) + mean_k(y, y) - 2 * mean_k(x, y)


def test_trvae_scales_are_the_published_list():
    assert TRVAE_SCALES == (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 5, 10, 15, 20, 25, 30, 35, 100,
                            1e3, 1e4, 1e5, 1e6)


def test_mmd_rbf_multiscale_matches_numpy_double_loop():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(4, 3)), rng.normal(size=(6, 3)) + 0.5
    expected = _numpy_mmd(x, y)
    np.testing.assert_allclose(float(mmd_rbf_multiscale(torch.tensor(x), torch.tensor(y))), expected, rtol=1e-5)
    got32 = float(mmd_rbf_multiscale(torch.tensor(x).float(), torch.tensor(y).float()))
    np.testing.assert_allclose(got32, expected, rtol=1e-5)
    np.testing.assert_allclose(float(mmd_rbf_multiscale(torch.tensor(x), torch.tensor(y), scales=[2.0])),
                               _numpy_mmd(x, y, [2.0]), rtol=1e-10)


def test_mmd_rbf_multiscale_zero_symmetric_and_grows_with_shift():
    g = torch.Generator().manual_seed(6)
    a, b = torch.randn(64, 4, generator=g), torch.randn(40, 4, generator=g)
    assert float(mmd_rbf_multiscale(a, a)) == pytest.approx(0.0, abs=1e-5)
    torch.testing.assert_close(mmd_rbf_multiscale(a, b), mmd_rbf_multiscale(b, a))
    near, far = mmd_rbf_multiscale(a, a + 0.1), mmd_rbf_multiscale(a, a + 3.0)
    assert 0 < float(near) < float(far)
    batched = mmd_rbf_multiscale(torch.stack([a[:20], a[20:40]]), torch.stack([b[:20], b[20:]]))
    torch.testing.assert_close(batched[1], mmd_rbf_multiscale(a[20:40], b[20:]))


def test_mmd_between_conditions_sums_pairs_and_flows_gradients():
    g = torch.Generator().manual_seed(7)
    z = torch.randn(30, 3, generator=g, dtype=torch.float64)
    condition = torch.tensor([0] * 10 + [2] * 12 + [3] * 7 + [1])  # condition 1 has a single cell
    z.requires_grad_(True)
    total = mmd_between_conditions(z, condition, 4)
    parts = [z[:10], z[10:22], z[22:29]]
    expected = sum(mmd_rbf_multiscale(parts[i], parts[j]) for i in range(3) for j in range(i + 1, 3))
    torch.testing.assert_close(total, expected)
    total.backward()
    assert torch.isfinite(z.grad).all() and z.grad[:29].abs().sum() > 0
    assert torch.equal(z.grad[29], torch.zeros(3, dtype=torch.float64))


def test_mmd_between_conditions_single_condition_is_zero_with_graph():
    z = torch.randn(12, 2, requires_grad=True)
    for condition in (torch.zeros(12, dtype=torch.long), torch.tensor([0] * 11 + [1])):
        loss = mmd_between_conditions(z, condition, 2)
        assert float(loss.detach()) == 0.0 and loss.requires_grad
        loss.backward()
    custom = mmd_between_conditions(z.detach(), torch.tensor([0] * 6 + [1] * 6), 2,
                                    kernel=lambda a, b: (a.mean(0) - b.mean(0)).pow(2).sum())
    torch.testing.assert_close(custom, (z[:6].mean(0) - z[6:].mean(0)).pow(2).sum().detach())
