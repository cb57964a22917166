"""Fully connected stacks with optional condition (batch) inputs.

Example
-------
>>> import torch
>>> from scintegrate.nn import MLP
>>> net = MLP([10, 20, 5], activation="relu", n_conditions=2)
>>> net(torch.zeros(4, 10), torch.tensor([0, 1, 0, 1])).shape
torch.Size([4, 5])

``condition_at="all"`` feeds the condition to every linear layer (scVI's ``deeply_inject_covariates``);
the condition weights are the last ``n_conditions`` input columns of each of ``conditioned_linears()``:

>>> deep = MLP([10, 20, 5], n_conditions=2, condition_at="all")
>>> [layer.in_features for layer in deep.conditioned_linears()]
[12, 22]
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "none": nn.Identity}


class MLP(nn.Module):
    """Linear layers of ``sizes`` with an activation after every layer except (by default) the last.

    ``n_conditions > 0`` adds a one-hot condition to the input of the first layer
    (``condition_at="first"``) or of every linear layer (``condition_at="all"``). In each conditioned
    ``nn.Linear`` (see :meth:`conditioned_linears`) the condition weights are the last ``n_conditions``
    input columns of the weight matrix: scArches-style surgery extends exactly these columns.

    Hidden layers are Linear -> [BatchNorm1d | LayerNorm] -> activation -> [Dropout]; ``layer_norm`` uses
    ``nn.LayerNorm(d_out, elementwise_affine=False)`` and excludes ``batch_norm``. ``hidden_last=True``
    treats the last layer the same way (norm and dropout too, with ``last_activation``): a body that feeds
    further heads, as in VAE encoders and decoders.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        activation: str = "relu",
        last_activation: Optional[str] = None,
        n_conditions: int = 0,
        dropout: float = 0.0,
        batch_norm: bool = False,
        condition_at: str = "first",
        layer_norm: bool = False,
        hidden_last: bool = False,
    ):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError("MLP needs at least input and output sizes")
        if condition_at not in ("first", "all"):
            raise ValueError(f"condition_at must be 'first' or 'all', got {condition_at!r}")
        if batch_norm and layer_norm:
            raise ValueError("choose at most one of batch_norm and layer_norm")
        self.n_conditions = n_conditions
        self.condition_at = condition_at
        layers = []
        for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            is_last = i == len(sizes) - 2
            plain = is_last and not hidden_last  # no norm / dropout
            conditioned = i == 0 or condition_at == "all"
            layers.append(nn.Linear(d_in + (n_conditions if conditioned else 0), d_out))
            act = last_activation if is_last else activation
            if not plain and batch_norm:
                layers.append(nn.BatchNorm1d(d_out))
            if not plain and layer_norm:
                layers.append(nn.LayerNorm(d_out, elementwise_affine=False))
            if act is not None:
                layers.append(_ACTIVATIONS[act]())
            if not plain and dropout > 0:
                layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers)

    def conditioned_linears(self) -> List[nn.Linear]:
        """The ``nn.Linear`` layers that take the condition (last ``n_conditions`` input columns)."""
        if not self.n_conditions:
            return []
        linears = [layer for layer in self.net if isinstance(layer, nn.Linear)]
        return linears if self.condition_at == "all" else linears[:1]

    def forward(self, x: torch.Tensor, condition: Optional[torch.Tensor] = None) -> torch.Tensor:
        if not self.n_conditions:
            return self.net(x)
        if condition is None:
            raise ValueError("this MLP is conditional: pass the condition indices")
        onehot = nn.functional.one_hot(condition.long(), self.n_conditions).to(x.dtype)
        if self.condition_at == "first":
            return self.net(torch.cat([x, onehot], dim=1))
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                x = torch.cat([x, onehot], dim=1)
            x = layer(x)
        return x
