"""Robust fuzzy k-means pieces (DFKM / DeepBID Eqs. 3, 4, 13, 14) against hand values and autograd."""

import numpy as np
import pytest
import torch

from scintegrate.nn import student_t_similarity
from scintegrate.nn.fuzzy import (
    adaptive_loss,
    adaptive_weights,
    center_distances,
    fuzzy_kmeans,
    fuzzy_kmeans_loss,
    memberships,
    update_centers,
    weight_penalty,
)


def _blobs(seed=0, n=30):
    g = torch.Generator().manual_seed(seed)
    return torch.cat([torch.randn(n, 3, generator=g, dtype=torch.float64),
                      torch.randn(n, 3, generator=g, dtype=torch.float64) + 5.0]), torch.repeat_interleave(
        torch.arange(2), n)


def test_adaptive_loss_hand_values_and_plain_case():
    r = torch.tensor([0.0, 1.0, 3.0], dtype=torch.float64)
    # (1+1) r^2 / (r+1): 0, 1, 4.5 ; sigma=0.5: 1.5 r^2/(r+0.5)
    np.testing.assert_allclose(adaptive_loss(r, 1.0).numpy(), [0.0, 1.0, 4.5])
    np.testing.assert_allclose(adaptive_loss(r, 0.5).numpy(), [0.0, 1.0, 1.5 * 9 / 3.5])
    np.testing.assert_allclose(adaptive_loss(r, None).numpy(), [0.0, 1.0, 9.0])
    assert torch.equal(adaptive_weights(r, None), torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("sigma", [0.1, 1.0, 5.0])
def test_adaptive_weights_are_the_irls_weights(sigma):
    r = torch.linspace(0.05, 6.0, 40, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(adaptive_loss(r, sigma).sum(), r)
    np.testing.assert_allclose(adaptive_weights(r.detach(), sigma).numpy(), (grad / (2 * r)).detach().numpy(),
                               rtol=1e-10)


def test_center_distances_match_cdist_and_have_finite_gradient_at_zero():
    z, _ = _blobs()
    c = z[[0, 40]].clone()
    np.testing.assert_allclose(center_distances(z, c).numpy(), torch.cdist(z, c).numpy(), atol=1e-6)
    z = z.clone().requires_grad_(True)
    center_distances(z, c).sum().backward()
    assert torch.isfinite(z.grad).all()


def test_memberships_are_the_softmax_of_eq14():
    z, _ = _blobs()
    c = torch.stack([z[:30].mean(0), z[30:].mean(0)])
    p = memberships(z, c, sigma=1.0, gamma=0.7).numpy()
    r = np.linalg.norm(z.numpy()[:, None, :] - c.numpy()[None], axis=2)
    e = np.exp(-(2 * r**2 / (r + 1)) / 0.7)
    np.testing.assert_allclose(p, e / e.sum(1, keepdims=True), rtol=1e-8)
    with pytest.raises(ValueError, match="gamma must be > 0"):
        memberships(z, c, gamma=0.0)


def test_update_centers_is_the_weighted_mean_and_does_not_increase_the_objective():
    z, _ = _blobs(1)
    c = z[[3, 50]].clone()
    p = memberships(z, c, 1.0, 2.0)
    new = update_centers(z, p, c, sigma=1.0)
    w = (p * adaptive_weights(center_distances(z, c), 1.0)).numpy()
    np.testing.assert_allclose(new.numpy(), (w.T @ z.numpy()) / w.sum(0)[:, None], rtol=1e-10)

    def objective(cent):
        return float((p * adaptive_loss(center_distances(z, cent), 1.0)).sum())
    assert objective(new) <= objective(c) + 1e-9  # majorise-minimise step


def test_update_centers_keeps_an_empty_cluster_in_place():
    z, _ = _blobs()
    c = torch.stack([z[0], torch.full((3,), 100.0, dtype=torch.float64)])
    p = torch.zeros(z.shape[0], 2, dtype=torch.float64)
    p[:, 0] = 1.0
    new = update_centers(z, p, c)
    assert torch.equal(new[1], c[1])


def test_fuzzy_kmeans_loss_has_the_gradient_of_the_adaptive_objective():
    z, _ = _blobs(2)
    c = torch.stack([z[:30].mean(0), z[30:].mean(0)]) + 0.3
    p = memberships(z, c, 1.0, 1.0)
    z1 = z.clone().requires_grad_(True)
    (g_surrogate,) = torch.autograd.grad(fuzzy_kmeans_loss(z1, c, p, 1.0), z1)
    z2 = z.clone().requires_grad_(True)
    exact = 0.5 * (p * adaptive_loss(center_distances(z2, c), 1.0)).sum() / z.shape[0]
    (g_exact,) = torch.autograd.grad(exact, z2)
    np.testing.assert_allclose(g_surrogate.numpy(), g_exact.numpy(), rtol=1e-6, atol=1e-12)


def test_fuzzy_kmeans_recovers_two_blobs_and_checks_k():
    z, y = _blobs(3)
    centers, p = fuzzy_kmeans(z, z[[0, 1]].clone(), sigma=1.0, gamma=0.5)
    labels = p.argmax(1)
    assert len(set(labels[:30].tolist())) == 1 and len(set(labels[30:].tolist())) == 1
    assert labels[0] != labels[-1]
    np.testing.assert_allclose(p.sum(1).numpy(), 1.0)
    with pytest.raises(ValueError, match="3 clusters asked for but only 2 cells"):
        fuzzy_kmeans(z[:2], z[:3].clone())


def test_weight_penalty_sums_squared_weights_and_biases():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(2, 1, bias=False)
    expected = a.weight.pow(2).sum() + a.bias.pow(2).sum() + b.weight.pow(2).sum()
    got = weight_penalty([torch.nn.Sequential(a, torch.nn.Tanh()), b]).detach()
    assert float(got) == pytest.approx(float(expected.detach()))
    with pytest.raises(ValueError, match="no nn.Linear"):
        weight_penalty([torch.nn.Tanh()])


def test_student_t_similarity_can_exclude_self():
    z, _ = _blobs()
    q = student_t_similarity(z[:5], z[:5], exclude_diagonal=True)
    assert torch.all(q.diagonal() == 0)
    np.testing.assert_allclose(q.sum(1).numpy(), 1.0)
    d2 = torch.cdist(z[:5], z[:5]).pow(2)
    raw = (1 + d2) ** -1.0 * (1 - torch.eye(5, dtype=torch.float64))
    np.testing.assert_allclose(q.numpy(), (raw / raw.sum(1, keepdim=True)).numpy(), rtol=1e-8)
