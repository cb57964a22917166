"""Negative log-likelihoods, numerically stable and written once.

Example
-------
>>> import torch
>>> from scintegrate.nn import nb_nll
>>> x = torch.tensor([[0.0, 3.0]]); mu = torch.tensor([[1.0, 3.0]]); theta = torch.tensor([[2.0, 2.0]])
>>> round(float(nb_nll(x, mu, theta).sum()), 4)  # -log NB(0|1,2) - log NB(3|3,2)
2.7897

Zero inflation only changes the likelihood of zeros (and scales the rest by 1 - pi):

>>> from scintegrate.nn import zinb_nll
>>> nll = zinb_nll(x, mu, theta, torch.zeros(1, 2))  # pi = 1/2
>>> bool(nll[0, 0] < nb_nll(x, mu, theta)[0, 0]), bool(nll[0, 1] > nb_nll(x, mu, theta)[0, 1])
(True, True)
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

_EPS = 1e-8
#: below this share of non-zero counts :func:`nb_nll` evaluates its gamma functions on the non-zero entries only
SPARSE_SHARE = 0.2


def nb_nll(x: torch.Tensor, mu: torch.Tensor, theta: torch.Tensor, eps: float = _EPS) -> torch.Tensor:
    """Element-wise negative log-likelihood of counts ``x`` under NB(mean ``mu``, inverse dispersion ``theta``).

    -log NB = lgamma(theta) + lgamma(x+1) - lgamma(x+theta)
              - theta*log(theta/(theta+mu)) - x*log(mu/(theta+mu))
    """
    theta = theta.clamp(min=eps, max=1e6)
    mu = mu.clamp(min=eps)
    log_theta_mu = torch.log(theta + mu + eps)
    out = -theta * (torch.log(theta + eps) - log_theta_mu) - x * (torch.log(mu + eps) - log_theta_mu)
    # lgamma(theta) + lgamma(x + 1) - lgamma(x + theta) vanishes where x == 0, which is most entries of single-cell
    # counts: where under a fifth are non-zero, the gamma functions (and their digamma gradients) are computed on
    # the non-zero entries only
    nonzero = x != 0
    if x.dim() == 0 or int(nonzero.sum()) >= SPARSE_SHARE * x.numel():
        return out + torch.lgamma(theta) + torch.lgamma(x + 1.0) - torch.lgamma(x + theta)
    xs, ts = x[nonzero], torch.broadcast_to(theta, out.shape)[nonzero]
    return out.index_put((nonzero,), torch.lgamma(ts) + torch.lgamma(xs + 1.0) - torch.lgamma(xs + ts),
                         accumulate=True)


def zinb_nll(x: torch.Tensor, mu: torch.Tensor, theta: torch.Tensor, pi_logits: torch.Tensor,
             eps: float = _EPS) -> torch.Tensor:
    """Element-wise negative log-likelihood of counts ``x`` under a zero-inflated NB.

    pi = sigmoid(``l``) (``l`` = ``pi_logits``) is the probability of a structural zero; the NB part has mean
    ``mu`` and inverse dispersion ``theta`` (clamped as in :func:`nb_nll`). With log NB(0) = theta*log(theta /
    (theta+mu)), log(1 - pi) = -softplus(l) and pi / (1 - pi) = exp(l)::

        x == 0: -log(pi + (1-pi) NB(0)) = softplus(l) - logaddexp(l, log NB(0))
        x > 0:  -log(1-pi) - log NB(x)  = softplus(l) - log NB(x)

    Computed densely in one pass (no sigmoid is logged): fewer element-wise operations than the NB term plus a
    mixture, which is faster on CPU even where most counts are zero.
    """
    theta = theta.clamp(min=eps, max=1e6)
    mu = mu.clamp(min=eps)
    log_theta_mu = torch.log(theta + mu + eps)
    log_nb_zero = theta * (torch.log(theta + eps) - log_theta_mu)
    log_nb = (log_nb_zero + x * (torch.log(mu + eps) - log_theta_mu) + torch.lgamma(x + theta) - torch.lgamma(theta)
              - torch.lgamma(x + 1.0))
    return F.softplus(pi_logits) - torch.where(x == 0, torch.logaddexp(pi_logits, log_nb_zero), log_nb)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor | float = 1.0) -> torch.Tensor:
    """Element-wise Gaussian negative log-likelihood (up to the constant), for non-count input."""
    var = torch.as_tensor(var, dtype=x.dtype, device=x.device).clamp(min=_EPS)
    return 0.5 * ((x - mean) ** 2 / var + torch.log(var))
