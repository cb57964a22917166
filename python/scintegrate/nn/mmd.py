"""Maximum mean discrepancy with a multi-kernel Gaussian (as BERMUDA and trVAE use).

Bandwidths: the mean pairwise squared distance of the pooled sample, divided by ``kernel_mul**(n//2)``
and multiplied by ``kernel_mul`` for each of ``kernel_num`` kernels (the DAN/BERMUDA construction).

Inputs may carry leading batch dimensions (``... x n x d``): many sample pairs (e.g. all similar
cluster pairs of a BERMUDA step) are then scored in one call, one MMD per pair.

Example
-------
>>> import torch
>>> from scintegrate.nn import mmd_multi_kernel
>>> g = torch.Generator().manual_seed(0)
>>> a = torch.randn(50, 3, generator=g); b = torch.randn(50, 3, generator=g) + 3
>>> bool(mmd_multi_kernel(a, b) > mmd_multi_kernel(a, torch.randn(50, 3, generator=g)))
True
"""

from __future__ import annotations

import torch


def gaussian_kernel_matrix(
    x: torch.Tensor, y: torch.Tensor, kernel_mul: float = 2.0, kernel_num: int = 5, fix_sigma=None
) -> torch.Tensor:
    """Sum of ``kernel_num`` Gaussian kernels over the pooled sample [x; y] (... x (n+m) x (n+m))."""
    total = torch.cat([x, y], dim=-2)
    d2 = torch.cdist(total, total).pow(2)
    n = total.shape[-2]
    if fix_sigma is not None:
        bandwidth = torch.as_tensor(fix_sigma, dtype=total.dtype, device=total.device)
    else:
        bandwidth = d2.detach().sum(dim=(-2, -1), keepdim=True) / max(n * n - n, 1)
    bandwidth = bandwidth.clamp(min=1e-8) / (kernel_mul ** (kernel_num // 2))
    return sum(torch.exp(-d2 / (bandwidth * kernel_mul**i)) for i in range(kernel_num))


def mmd_multi_kernel(x: torch.Tensor, y: torch.Tensor, kernel_mul: float = 2.0, kernel_num: int = 5,
                     fix_sigma=None) -> torch.Tensor:
    """Biased MMD^2 estimate between samples ``x`` (n x d) and ``y`` (m x d); batched: ``...`` MMDs."""
    n = x.shape[-2]
    k = gaussian_kernel_matrix(x, y, kernel_mul, kernel_num, fix_sigma)
    dims = (-2, -1)
    return k[..., :n, :n].mean(dims) + k[..., n:, n:].mean(dims) - 2 * k[..., :n, n:].mean(dims)
