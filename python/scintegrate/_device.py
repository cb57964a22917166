"""Device selection and seeding, explicit and local (nothing global is set at import).

Example
-------
>>> from scintegrate._device import resolve_device, torch_generator
>>> resolve_device("cpu").type
'cpu'
>>> g = torch_generator(0)
"""

from __future__ import annotations

import random
from typing import Optional, Union

import numpy as np


def resolve_device(device: Union[str, "torch.device", None] = "auto", *, cuda_available: Optional[bool] = None):
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` into a ``torch.device``.

    ``"auto"`` picks CUDA when available. Asking for CUDA on a machine without it is an error,
    not a silent fallback. ``cuda_available`` overrides detection (used by tests on CPU machines).
    """
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    device = "auto" if device is None else str(device).lower()
    has_cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    if device == "auto":
        return torch.device("cuda" if has_cuda else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not has_cuda:
            raise RuntimeError(f"device={device!r} was asked for but CUDA is not available; use 'cpu' or 'auto'")
        return torch.device(device)
    raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")


def torch_generator(seed: int, device="cpu"):
    """A ``torch.Generator`` seeded with ``seed`` (for sampling and initialisation)."""
    import torch

    g = torch.Generator(device=str(device))
    g.manual_seed(int(seed))
    return g


class seeded:
    """Context manager that seeds torch/numpy/random for a block and restores their state after.

    Weight initialisation in ``torch.nn`` draws from the global generator, so models build their
    modules inside ``with seeded(seed):`` to be reproducible without leaving global state behind.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)

    def __enter__(self):
        import torch

        self._torch = torch.random.get_rng_state()
        self._np = np.random.get_state()
        self._py = random.getstate()
        torch.manual_seed(self.seed)
        np.random.seed(self.seed % (2**32))
        random.seed(self.seed)
        return self

    def __exit__(self, *exc):
        import torch

        torch.random.set_rng_state(self._torch)
        np.random.set_state(self._np)
        random.setstate(self._py)
        return False
