"""KL terms: Gaussian posterior vs prior (VAEs) and between discrete distributions (DEC/DeepBID).

Example
-------
>>> import torch
>>> from scintegrate.nn import student_t_similarity, target_distribution
>>> q = student_t_similarity(torch.zeros(3, 2), torch.tensor([[0.0, 0.0], [5.0, 5.0]]))
>>> q.shape, bool(torch.allclose(q.sum(1), torch.ones(3)))
(torch.Size([3, 2]), True)
"""

from __future__ import annotations

import torch

_EPS = 1e-10


def kl_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)) per cell (summed over latent dimensions)."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)


def kl_divergence(p: torch.Tensor, q: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """KL(p || q) = sum p log(p/q) along ``dim`` (p, q probability vectors)."""
    return (p * (torch.log(p + _EPS) - torch.log(q + _EPS))).sum(dim=dim)


def student_t_similarity(z: torch.Tensor, centers: torch.Tensor, alpha: float = 1.0,
                         exclude_diagonal: bool = False) -> torch.Tensor:
    """Soft assignment q_ij ∝ (1 + ||z_i - c_j||²/alpha)^(-(alpha+1)/2), rows normalised (DEC).

    ``exclude_diagonal=True`` (cell-to-cell similarities, ``centers`` = ``z``) sets q_ii = 0 before the
    rows are normalised, as DeepBID's KL1 does.
    """
    d2 = (z.pow(2).sum(1, keepdim=True) + centers.pow(2).sum(1).unsqueeze(0) - 2.0 * z @ centers.t()).clamp(min=0)
    q = (1.0 + d2 / alpha).pow(-(alpha + 1.0) / 2.0)
    if exclude_diagonal:
        q = q * (1.0 - torch.eye(q.shape[0], q.shape[1], dtype=q.dtype, device=q.device))
    return q / q.sum(dim=1, keepdim=True).clamp(min=_EPS)


def target_distribution(q: torch.Tensor) -> torch.Tensor:
    """Sharpened target p_ij = (q_ij² / f_j) / Σ_j'(q_ij'² / f_j'), f_j = Σ_i q_ij (DEC)."""
    weight = q.pow(2) / q.sum(dim=0, keepdim=True).clamp(min=_EPS)
    return weight / weight.sum(dim=1, keepdim=True)
