"""Robust fuzzy k-means in a latent space (Zhang et al. 2019, "deep fuzzy k-means"; DeepBID Eqs. 3, 4, 13, 14).

Notation: ``z`` (n x d) latent cells, ``centers`` (K x d), ``r_ik = ||z_i - c_k||`` (Euclidean, not squared),
``sigma`` the adaptive-loss parameter, ``gamma`` the entropy-regularisation weight of the memberships.

* adaptive loss            f_sigma(r) = (1 + sigma) r^2 / (r + sigma)
* its re-weighting (Eq. 3) d_ik = (1 + sigma)(r_ik + 2 sigma) / (2 (r_ik + sigma)^2) = f'(r) / (2 r), so that
  the surrogate  1/2 sum_k p_ik d_ik r_ik^2  has the same gradient as  1/2 sum_k p_ik f_sigma(r_ik)  (IRLS).
  (The public DFKM/DeepBID scripts drop the square in the denominator; we keep the derivative exact.)
* memberships (Eq. 14)     p_ik = exp(-f_sigma(r_ik) / gamma) / sum_k' exp(-f_sigma(r_ik') / gamma)
* centres (Eq. 13)         c_k = sum_i p_ik d_ik z_i / sum_i p_ik d_ik
* regulariser L_O (Eq. 4)  sum of squared weights and biases of the network's linear layers.

``sigma=None`` gives plain (squared-Euclidean) fuzzy k-means: d_ik = 1 and f(r) = r^2.

Example
-------
>>> import torch
>>> from scintegrate.nn.fuzzy import fuzzy_kmeans
>>> g = torch.Generator().manual_seed(0)
>>> z = torch.cat([torch.randn(20, 2, generator=g), torch.randn(20, 2, generator=g) + 6])
>>> centers, p = fuzzy_kmeans(z, torch.stack([z[0], z[25]]))
>>> p.argmax(1)[:20].unique().numel(), p.argmax(1)[20:].unique().numel()
(1, 1)
"""

from __future__ import annotations

from typing import Iterable, Optional, Tuple

import torch

_EPS = 1e-12


def adaptive_loss(r: torch.Tensor, sigma: Optional[float] = 1.0) -> torch.Tensor:
    """f_sigma(r) = (1+sigma) r² / (r+sigma) of (non-squared) distances ``r``; r² when ``sigma`` is None."""
    if sigma is None:
        return r.pow(2)
    return (1.0 + sigma) * r.pow(2) / (r + sigma)


def adaptive_weights(r: torch.Tensor, sigma: Optional[float] = 1.0) -> torch.Tensor:
    """Re-weighting d = (1+sigma)(r+2 sigma) / (2 (r+sigma)²) (DeepBID Eq. 3); ones when ``sigma`` is None."""
    if sigma is None:
        return torch.ones_like(r)
    return (1.0 + sigma) * (r + 2.0 * sigma) / (2.0 * (r + sigma).pow(2))


def center_distances(z: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (n x K), with a gradient that stays finite when a cell sits on a centre."""
    d2 = z.pow(2).sum(1, keepdim=True) + centers.pow(2).sum(1).unsqueeze(0) - 2.0 * z @ centers.t()
    return d2.clamp(min=_EPS).sqrt()


def memberships(z: torch.Tensor, centers: torch.Tensor, sigma: Optional[float] = 1.0,
                gamma: float = 1.0) -> torch.Tensor:
    """Soft assignments P (Eq. 14): softmax over clusters of -f_sigma(||z_i - c_k||)/gamma; differentiable in z."""
    if gamma <= 0:
        raise ValueError(f"gamma must be > 0 (entropy weight of the memberships), got {gamma}")
    return torch.softmax(-adaptive_loss(center_distances(z, centers), sigma) / gamma, dim=1)


def update_centers(z: torch.Tensor, p: torch.Tensor, centers: torch.Tensor,
                   sigma: Optional[float] = 1.0) -> torch.Tensor:
    """Centres (Eq. 13): c_k = Σ_i p_ik d_ik z_i / Σ_i p_ik d_ik, d from the current ``centers``.

    A cluster with (numerically) no mass keeps its previous centre.
    """
    w = p * adaptive_weights(center_distances(z, centers), sigma)  # n x K
    mass = w.sum(0)
    new = (w.t() @ z) / mass.clamp(min=_EPS).unsqueeze(1)
    return torch.where((mass > 1e-8).unsqueeze(1), new, centers)


def fuzzy_kmeans_loss(z: torch.Tensor, centers: torch.Tensor, p: torch.Tensor,
                      sigma: Optional[float] = 1.0) -> torch.Tensor:
    """Adaptive clustering loss L_A = 1/(2n) Σ_i Σ_k p_ik d_ik ||z_i - c_k||² (p, d and centres held fixed).

    Its gradient in ``z`` equals that of 1/(2n) Σ p_ik f_sigma(r_ik) at the current point (IRLS form).
    """
    r = center_distances(z, centers.detach())
    d = adaptive_weights(r.detach(), sigma)
    return 0.5 * (p.detach() * d * r.pow(2)).sum() / max(z.shape[0], 1)


def weight_penalty(modules: Iterable[torch.nn.Module]) -> torch.Tensor:
    """L_O (Eq. 4): Σ ||W||_F² + ||b||² over every ``nn.Linear`` inside ``modules``."""
    total = None
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, torch.nn.Linear):
                term = layer.weight.pow(2).sum() + (layer.bias.pow(2).sum() if layer.bias is not None else 0.0)
                total = term if total is None else total + term
    if total is None:
        raise ValueError("weight_penalty found no nn.Linear layer")
    return total


def fuzzy_kmeans(z: torch.Tensor, centers: torch.Tensor, *, sigma: Optional[float] = 1.0, gamma: float = 1.0,
                 max_iter: int = 100, tol: float = 1e-4) -> Tuple[torch.Tensor, torch.Tensor]:
    """Alternate Eq. 14 (P) and Eq. 13 (C) from ``centers`` until the largest change of P is below ``tol``.

    Returns ``(centers, P)``; no gradient flows (an update step, not a loss).
    """
    if centers.shape[0] > z.shape[0]:
        raise ValueError(f"{centers.shape[0]} clusters asked for but only {z.shape[0]} cells")
    with torch.no_grad():
        p = memberships(z, centers, sigma, gamma)
        for _ in range(max_iter):
            centers = update_centers(z, p, centers, sigma)
            p_new = memberships(z, centers, sigma, gamma)
            change = float((p_new - p).abs().max())
            p = p_new
            if change < tol:
                break
    return centers, p
