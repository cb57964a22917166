"""Fully connected stacks with optional condition (batch) inputs.

Example
-------
>>> import torch
>>> from scintegrate.nn import MLP
>>> net = MLP([10, 20, 5], activation="relu", n_conditions=2)
>>> net(torch.zeros(4, 10), torch.tensor([0, 1, 0, 1])).shape
torch.Size([4, 5])
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "none": nn.Identity}


class MLP(nn.Module):
    """Linear layers of ``sizes`` with an activation after every layer except (by default) the last.

    ``n_conditions > 0`` adds a one-hot condition to the input of the first layer (conditional models,
    where scArches-style surgery extends exactly these weights).
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
    ):
        super().__init__()
        if len(sizes) < 2:
            raise ValueError("MLP needs at least input and output sizes")
        self.n_conditions = n_conditions
        layers = []
        for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            is_last = i == len(sizes) - 2
            layers.append(nn.Linear(d_in + (n_conditions if i == 0 else 0), d_out))
            act = last_activation if is_last else activation
            if not is_last and batch_norm:
                layers.append(nn.BatchNorm1d(d_out))
            if act is not None:
                layers.append(_ACTIVATIONS[act]())
            if not is_last and dropout > 0:
                layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, condition: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.n_conditions:
            if condition is None:
                raise ValueError("this MLP is conditional: pass the condition indices")
            x = torch.cat([x, nn.functional.one_hot(condition.long(), self.n_conditions).to(x.dtype)], dim=1)
        return self.net(x)
