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

trVAE / scArches instead use fixed scales (:data:`TRVAE_SCALES`) and sum the MMD over all pairs of
conditions of a minibatch:

>>> from scintegrate.nn import mmd_between_conditions
>>> z = torch.cat([a, b]); condition = torch.repeat_interleave(torch.tensor([0, 1]), 50)
>>> bool(mmd_between_conditions(z, condition, 2) > mmd_between_conditions(a, condition[:50], 2))
True
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

#: Kernel scales of trVAE (Lotfollahi et al. 2020) and scArches: k = sum_s exp(-||a-b||^2 / (2 s)).
TRVAE_SCALES = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 100.0,
                1e3, 1e4, 1e5, 1e6)


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


def mmd_rbf_multiscale(x: torch.Tensor, y: torch.Tensor, scales: Sequence[float] = TRVAE_SCALES) -> torch.Tensor:
    """Biased MMD^2 between ``x`` (n x d) and ``y`` (m x d) with k(a, b) = sum_s exp(-||a-b||^2 / (2 s)).

    This is the multi-scale RBF kernel of trVAE / scArches (``beta = 1 / (2 * scale)`` on squared Euclidean
    distances; checked against scArches' ``trvae/losses.py``). Squared distances are computed without the
    matrix-product shortcut so that d(a, a) is exactly 0 (the 1e-6 scale is sensitive to rounding).
    Leading batch dimensions are allowed, as in :func:`mmd_multi_kernel`.
    """
    beta = 1.0 / (2.0 * torch.as_tensor(scales, dtype=x.dtype, device=x.device))

    def kernel_mean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d2 = torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist").pow(2)
        return torch.exp(-d2.unsqueeze(-1) * beta).sum(-1).mean(dim=(-2, -1))

    return kernel_mean(x, x) + kernel_mean(y, y) - 2 * kernel_mean(x, y)


def mmd_between_conditions(
    z: torch.Tensor,
    condition: torch.Tensor,
    n_conditions: int,
    kernel: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = mmd_rbf_multiscale,
) -> torch.Tensor:
    """Sum of ``kernel(z_i, z_j)`` over all pairs i < j of conditions in the minibatch (trVAE's MMD loss).

    ``condition`` holds the condition index (0 .. ``n_conditions`` - 1) of each row of ``z``; conditions with
    fewer than 2 cells are skipped. With fewer than two such conditions the result is a zero tensor that is
    still part of the graph of ``z``.
    """
    condition = condition.reshape(-1)
    groups = [z[condition == c] for c in range(n_conditions)]
    groups = [g for g in groups if g.shape[0] >= 2]
    loss = z.sum() * 0.0
    for i in range(len(groups)):
        for j in range(i + 1, len(groups)):
            loss = loss + kernel(groups[i], groups[j])
    return loss
