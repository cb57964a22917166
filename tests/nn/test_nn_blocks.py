"""Shared torch blocks against independent implementations (scipy) and hand-computed values."""

import numpy as np
import pytest
import torch
from scipy import stats

from scintegrate.nn import (
    MLP,
    gaussian_nll,
    kl_divergence,
    kl_normal,
    mmd_multi_kernel,
    nb_nll,
    student_t_similarity,
    target_distribution,
)


def test_nb_nll_matches_scipy():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 50, size=(20, 7)).astype(np.float64)
    mu = rng.gamma(2.0, 3.0, size=(20, 7))
    theta = rng.gamma(1.0, 2.0, size=(20, 7)) + 0.05
    expected = -stats.nbinom.logpmf(x, theta, theta / (theta + mu))
    got = nb_nll(torch.tensor(x), torch.tensor(mu), torch.tensor(theta)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_nb_nll_stable_at_extremes():
    x = torch.tensor([0.0, 1e4, 0.0])
    mu = torch.tensor([0.0, 1e4, 1e-12])
    theta = torch.tensor([1e-12, 1e8, 1.0])
    assert torch.isfinite(nb_nll(x, mu, theta)).all()


def test_gaussian_nll_unit_variance():
    x, m = torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0])
    np.testing.assert_allclose(gaussian_nll(x, m).numpy(), [0.5, 2.0])


def test_mmd_zero_for_identical_and_grows_with_shift():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(64, 4, generator=g)
    assert float(mmd_multi_kernel(a, a)) == pytest.approx(0.0, abs=1e-6)
    near = mmd_multi_kernel(a, a + 0.1)
    far = mmd_multi_kernel(a, a + 3.0)
    assert 0 < float(near) < float(far)


def test_mmd_hand_computed_single_kernel():
    # x = {0}, y = {1}: pooled mean squared distance over off-diagonal pairs = 1 -> bandwidth 1
    x, y = torch.zeros(1, 1), torch.ones(1, 1)
    value = mmd_multi_kernel(x, y, kernel_mul=2.0, kernel_num=1)
    assert float(value) == pytest.approx(2 - 2 * np.exp(-1.0), rel=1e-6)


def test_kl_terms_hand_values():
    assert float(kl_normal(torch.zeros(1, 3), torch.zeros(1, 3))) == pytest.approx(0.0)
    assert float(kl_normal(torch.ones(1, 2), torch.zeros(1, 2))) == pytest.approx(1.0)
    p, q = torch.tensor([0.5, 0.5]), torch.tensor([0.25, 0.75])
    assert float(kl_divergence(p, q)) == pytest.approx(0.5 * np.log(2) + 0.5 * np.log(2 / 3), rel=1e-6)


def test_student_t_and_target_distribution():
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    c = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    q = student_t_similarity(z, c)
    # cell 0: distances 0 and 4 -> kernel 1 and 1/5
    np.testing.assert_allclose(q[0].numpy(), [1 / 1.2, 0.2 / 1.2], rtol=1e-6)
    p = target_distribution(q)
    assert torch.allclose(p.sum(1), torch.ones(2))
    assert p[0, 0] > q[0, 0]  # sharpened


def test_mlp_shapes_and_condition_required():
    net = MLP([5, 8, 3], activation="tanh", n_conditions=2)
    out = net(torch.zeros(4, 5), torch.tensor([0, 1, 1, 0]))
    assert out.shape == (4, 3)
    with pytest.raises(ValueError, match="conditional"):
        net(torch.zeros(4, 5))
    with pytest.raises(ValueError, match="at least"):
        MLP([5])


def test_nb_nll_on_sparse_counts_equals_the_dense_formula_with_gradients():
    """Mostly-zero counts take the path that evaluates the gamma functions on non-zero entries only."""
    g = torch.Generator().manual_seed(0)
    x = torch.poisson(torch.rand(40, 30, generator=g) * 0.1, generator=g).double()
    assert 0 < float((x > 0).double().mean()) < 0.2
    mu = (torch.rand(40, 30, generator=g, dtype=torch.float64) * 5).requires_grad_()
    theta = (torch.rand(30, generator=g, dtype=torch.float64) + 0.1).requires_grad_()
    got = nb_nll(x, mu, theta)
    want = -stats.nbinom.logpmf(x.numpy(), theta.detach().numpy(), (theta / (theta + mu)).detach().numpy())
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-6, atol=1e-8)
    got.sum().backward()
    g_mu, g_theta = mu.grad.clone(), theta.grad.clone()
    mu.grad, theta.grad = None, None
    dense = (torch.lgamma(theta) + torch.lgamma(x + 1) - torch.lgamma(x + theta)
             - theta * torch.log(theta / (theta + mu)) - x * torch.log(mu / (theta + mu)))
    dense.sum().backward()
    torch.testing.assert_close(g_mu, mu.grad, rtol=1e-5, atol=1e-8)  # the reference has no eps terms
    torch.testing.assert_close(g_theta, theta.grad, rtol=1e-5, atol=1e-8)
