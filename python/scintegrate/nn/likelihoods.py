"""Negative log-likelihoods, numerically stable and written once.

Example
-------
>>> import torch
>>> from scintegrate.nn import nb_nll
>>> x = torch.tensor([[0.0, 3.0]]); mu = torch.tensor([[1.0, 3.0]]); theta = torch.tensor([[2.0, 2.0]])
>>> round(float(nb_nll(x, mu, theta).sum()), 4)  # -log NB(0|1,2) - log NB(3|3,2)
2.7897
"""

from __future__ import annotations

import torch

_EPS = 1e-8


def nb_nll(x: torch.Tensor, mu: torch.Tensor, theta: torch.Tensor, eps: float = _EPS) -> torch.Tensor:
    """Element-wise negative log-likelihood of counts ``x`` under NB(mean ``mu``, inverse dispersion ``theta``).

    -log NB = lgamma(theta) + lgamma(x+1) - lgamma(x+theta)
              - theta*log(theta/(theta+mu)) - x*log(mu/(theta+mu))
    """
    theta = theta.clamp(min=eps, max=1e6)
    mu = mu.clamp(min=eps)
    log_theta_mu = torch.log(theta + mu + eps)
    return (
        torch.lgamma(theta)
        + torch.lgamma(x + 1.0)
        - torch.lgamma(x + theta)
        - theta * (torch.log(theta + eps) - log_theta_mu)
        - x * (torch.log(mu + eps) - log_theta_mu)
    )


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor | float = 1.0) -> torch.Tensor:
    """Element-wise Gaussian negative log-likelihood (up to the constant), for non-count input."""
    var = torch.as_tensor(var, dtype=x.dtype, device=x.device).clamp(min=_EPS)
    return 0.5 * ((x - mean) ** 2 / var + torch.log(var))
