"""No-grad evaluation of a network over all cells in chunks (written once for every model).

>>> import torch
>>> from scintegrate.train import map_chunks
>>> x = torch.arange(10.0).reshape(5, 2)
>>> map_chunks(lambda rows: x[rows] * 2, 5, chunk=2).shape
torch.Size([5, 2])
"""

from __future__ import annotations

from typing import Callable

import torch


def map_chunks(fn: Callable[[slice], torch.Tensor], n_rows: int, chunk: int = 4096) -> torch.Tensor:
    """``torch.cat([fn(rows) for rows in slices of chunk rows])`` under ``torch.no_grad()``."""
    with torch.no_grad():
        parts = [fn(slice(start, min(start + chunk, n_rows))) for start in range(0, n_rows, chunk)]
    return torch.cat(parts) if parts else torch.empty(0)
