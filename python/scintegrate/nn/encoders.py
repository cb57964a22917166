"""Gaussian (VAE) encoders with reparameterisation, their KL term and the KL warm-up schedule.

Example
-------
>>> import torch
>>> from scintegrate.nn import GaussianEncoder, kl_normal_var
>>> enc = GaussianEncoder(10, 3, hidden=(16,), n_conditions=2).eval()
>>> mean, var, z = enc(torch.zeros(4, 10), torch.tensor([0, 1, 0, 1]))
>>> z.shape, bool(torch.equal(z, mean)), bool((var > 0).all()), kl_normal_var(mean, var).shape
(torch.Size([4, 3]), True, True, torch.Size([4]))
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from .kl import kl_normal
from .layers import MLP

_NORMS = ("batch", "layer", "none")


class GaussianEncoder(nn.Module):
    """q(z | x, condition) = N(mean, var): an :class:`MLP` body to ``hidden[-1]``, then mean and log-variance heads.

    Every body layer is Linear -> norm -> activation -> dropout (``norm`` is "batch", "layer" or "none"),
    the last one included; the condition enters as in :class:`MLP` (``condition_at`` "first" or "all").
    ``var = exp(logvar) + var_eps``; ``z = mean + sqrt(var) * eps`` in training mode, ``z = mean`` in eval.
    """

    def __init__(
        self,
        n_input: int,
        n_latent: int,
        *,
        hidden: Sequence[int] = (128,),
        n_conditions: int = 0,
        condition_at: str = "first",
        dropout: float = 0.1,
        norm: str = "batch",
        var_eps: float = 1e-4,
        activation: str = "relu",
    ):
        super().__init__()
        hidden = list(hidden)
        if not hidden:
            raise ValueError("GaussianEncoder needs at least one hidden layer")
        if norm not in _NORMS:
            raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")
        self.var_eps = var_eps
        self.body = MLP([n_input, *hidden], activation=activation, last_activation=activation,
                        n_conditions=n_conditions, condition_at=condition_at, dropout=dropout,
                        batch_norm=norm == "batch", layer_norm=norm == "layer", hidden_last=True)
        self.mean = nn.Linear(hidden[-1], n_latent)
        self.logvar = nn.Linear(hidden[-1], n_latent)

    def conditioned_linears(self) -> List[nn.Linear]:
        """The body's linear layers that take the condition (see :meth:`MLP.conditioned_linears`)."""
        return self.body.conditioned_linears()

    def forward(self, x: torch.Tensor, condition: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.body(x, condition)
        mean = self.mean(h)
        var = torch.exp(self.logvar(h)) + self.var_eps
        z = mean + var.sqrt() * torch.randn_like(mean) if self.training else mean
        return mean, var, z


def kl_normal_var(mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, var) || N(0, I)) per cell (summed over latent dimensions)."""
    return kl_normal(mean, torch.log(var))


def kl_warmup(epoch: float, n_epochs_kl_warmup: Optional[float], max_weight: float = 1.0) -> float:
    """KL weight min(1, epoch / n_epochs_kl_warmup) * max_weight; no warm-up (None or <= 0) gives max_weight."""
    if n_epochs_kl_warmup is None or n_epochs_kl_warmup <= 0:
        return float(max_weight)
    return float(min(1.0, epoch / n_epochs_kl_warmup) * max_weight)
