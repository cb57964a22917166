"""The numeric core of Harmony (Korsunsky et al. 2019): torch tensors in, tensors out, no AnnData.

Cells are in rows throughout (the R package keeps them in columns). With ``Z`` the cells x dims embedding,
``Phi`` the one-hot design of the covariates (batches of every covariate side by side), ``R`` the cells x
clusters soft assignments, ``O = Phi^T R`` (batches x clusters, observed) and ``E = Pr_b * sum_i R_i``
(expected under perfect mixing), one outer iteration is

1. soft k-means on the cosine-normalised corrected embedding: centroids ``Y = normalise(R^T Z_cos)``,
   distances ``d = 2 (1 - Z_cos Y^T)``, then the assignments of random blocks of cells, each block with
   ``O`` and ``E`` of the other cells: ``R_i ~ softmax(-d_i / sigma - sum_c theta_b log((O_b + E_b) / E_b))``
   over the batches ``b`` of cell ``i`` (one per covariate ``c``);
2. mixture-of-experts ridge correction of the ORIGINAL embedding: per cluster ``k``,
   ``W_k = (Phi~^T diag(R_k) Phi~ + Lambda)^-1 Phi~^T diag(R_k) Z`` with ``Phi~ = [1, Phi]`` and an
   unpenalised intercept that is not removed, ``Z_corr = Z - sum_k diag(R_k) Phi W_k``.

The objective is ``2000 / N * (sum R d + sigma sum R log R + sigma sum_b,k theta_b O log((O + E) / E))``.

Example
-------
>>> import torch
>>> from scintegrate.models._harmony_core import run_harmony
>>> g = torch.Generator().manual_seed(0)
>>> Z = torch.randn(300, 5, generator=g)
>>> codes = torch.randint(0, 2, (300, 1), generator=g)
>>> fit = run_harmony(Z, codes, [2], n_clusters=5, generator=g)
>>> fit.Z_corr.shape, fit.R.shape
(torch.Size([300, 5]), torch.Size([300, 5]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Union

import torch

#: the clustering convergence test compares sums of this many successive objectives (as R harmony does)
WINDOW = 3
_TINY = 1e-12
Numbers = Union[float, Sequence[float]]


@dataclass
class HarmonyFit:
    """What :func:`run_harmony` returns (tensors on the input's device, cells in rows)."""

    Z_corr: torch.Tensor
    R: torch.Tensor
    Y: torch.Tensor
    objective_harmony: List[float] = field(default_factory=list)
    objective_kmeans: List[float] = field(default_factory=list)
    kmeans_rounds: List[int] = field(default_factory=list)
    converged: bool = False
    n_iter: int = 0


def cosine_normalize(Z: torch.Tensor) -> torch.Tensor:
    """Every row scaled to unit L2 norm (zero rows stay zero)."""
    return Z / Z.norm(dim=1, keepdim=True).clamp_min(_TINY)


def per_level(values: Numbers, n_levels: Sequence[int], name: str) -> torch.Tensor:
    """A number for all covariates, or one per covariate, expanded to one float64 value per batch level."""
    vals = [float(values)] * len(n_levels) if isinstance(values, (int, float)) else [float(v) for v in values]
    if len(vals) != len(n_levels):
        raise ValueError(f"{name} needs one value per covariate ({len(n_levels)}), got {len(vals)}")
    return torch.cat([torch.full((int(n),), v, dtype=torch.float64) for v, n in zip(vals, n_levels)])


def global_codes(codes: torch.Tensor, n_levels: Sequence[int]) -> torch.Tensor:
    """Per-covariate level codes (cells x covariates) -> indices into the concatenated levels of all covariates."""
    offsets = torch.tensor([0, *n_levels[:-1]], dtype=torch.int64, device=codes.device).cumsum(0)
    return codes.to(torch.int64) + offsets


def observed(R: torch.Tensor, gcodes: torch.Tensor, n_total: int) -> torch.Tensor:
    """``O = Phi^T R`` (batches x clusters, float64) from the global level codes of each cell."""
    O = torch.zeros(n_total, R.shape[1], dtype=R.dtype, device=R.device)
    for c in range(gcodes.shape[1]):
        O.index_add_(0, gcodes[:, c], R)
    return O.double()


def diversity_penalty(O: torch.Tensor, E: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """``theta_b log((O_bk + E_bk) / E_bk)`` (batches x clusters): the cost of over-representing batch ``b``."""
    E = E.clamp_min(_TINY)
    return theta[:, None] * torch.log((O.clamp_min(0) + E) / E)


def objective(kmeans_error: float, entropy: float, O: torch.Tensor, E: torch.Tensor, theta: torch.Tensor,
              sigma: float, n_cells: int) -> float:
    """Harmony's objective from its three parts; ``entropy`` is ``sum R log R``. The cross-entropy term
    ``sum_i sigma R_ik theta_b log((O+E)/E)`` over the batches of each cell sums to ``sigma sum O * penalty``."""
    cross = float((O * diversity_penalty(O, E, theta)).sum())
    return 2000.0 / n_cells * (kmeans_error + sigma * entropy + sigma * cross)


def converged(values: Sequence[float], epsilon: float, window: int = 1) -> bool:
    """Whether the last ``window`` objectives changed by less than ``epsilon`` relative to the ``window``
    before them (absolute change; R harmony's signed test would also stop on a rising objective)."""
    if len(values) < window + 1:
        return False
    old = sum(values[-2 - i] for i in range(window))
    new = sum(values[-1 - i] for i in range(window))
    return abs(old - new) / max(abs(old), _TINY) < epsilon


def kmeans(X: torch.Tensor, k: int, generator: torch.Generator, max_iter: int = 10,
           n_seed_cells: int = 20000) -> torch.Tensor:
    """Lloyd's k-means of the rows of ``X`` from a k-means++ start (drawn on at most ``n_seed_cells`` cells);
    returns the ``k x dims`` centroids. Randomness comes from the CPU ``generator`` only."""
    n = X.shape[0]
    sub = torch.randperm(n, generator=generator)[:max(k, min(n, n_seed_cells))].to(X.device)
    S = X[sub]
    chosen = [int(torch.randint(S.shape[0], (1,), generator=generator))]
    d2 = ((S - S[chosen[0]]) ** 2).sum(1)
    for _ in range(1, k):
        cum = d2.double().cumsum(0)
        if float(cum[-1]) <= 0:  # fewer distinct points than clusters: take any other point
            nxt = next(i for i in range(S.shape[0]) if i not in set(chosen))
        else:
            u = torch.rand((), generator=generator, dtype=torch.float64).to(X.device) * cum[-1]
            nxt = int(torch.searchsorted(cum, u.reshape(1)).clamp_max(S.shape[0] - 1))
        chosen.append(nxt)
        d2 = torch.minimum(d2, ((S - S[nxt]) ** 2).sum(1))
    C = S[torch.tensor(chosen, device=X.device)].clone()
    labels = None
    chunk = 65536
    buf = torch.empty(min(n, chunk), k, dtype=X.dtype, device=X.device)
    for _ in range(max_iter):
        cc = (C * C).sum(1)
        new = torch.cat([torch.addmm(cc, X[s:s + chunk], C.T, beta=1.0, alpha=-2.0, out=buf[:min(chunk, n - s)])
                         .argmin(1) for s in range(0, n, chunk)])
        if labels is not None and torch.equal(new, labels):
            break
        labels = new
        counts = torch.bincount(labels, minlength=k).to(X.dtype)
        sums = torch.zeros_like(C).index_add_(0, labels, X)
        empty = counts == 0
        C = torch.where(empty[:, None], C, sums / counts.clamp_min(1)[:, None])
    return C


def soft_assign_blocks(R: torch.Tensor, logits: torch.Tensor, O: torch.Tensor, mass: torch.Tensor,
                       gcodes: torch.Tensor, pr_b: torch.Tensor, theta: torch.Tensor, block_size: float,
                       generator: torch.Generator, n_first: Optional[int] = None):
    """Update ``R`` in place in random blocks of cells (``logits = -d / sigma``); ``O`` (batches x clusters)
    and ``mass`` (``sum_i R_i``) are kept current in place. ``n_first`` is the number of levels of the first
    covariate (default: all levels). Returns ``(sum R * logits, sum R log R)``."""
    n = R.shape[0]
    n_first = O.shape[0] if n_first is None else int(n_first)
    n_blocks = int(math.ceil(1.0 / block_size))
    per_block = max(1, int(n * block_size))
    order = torch.randperm(n, generator=generator).to(R.device)
    starts = [b * per_block for b in range(n_blocks) if b * per_block < n]
    fit_term, ent_term = 0.0, 0.0
    part = torch.zeros(O.shape, dtype=R.dtype, device=R.device)
    for j, start in enumerate(starts):
        idx = order[start:(n if j == len(starts) - 1 else start + per_block)]
        cb = gcodes.index_select(0, idx)
        Rb = R.index_select(0, idx)
        part.zero_()
        for c in range(cb.shape[1]):  # remove the block's cells from O and E
            part.index_add_(0, cb[:, c], Rb)
        if idx.numel() == n:  # one block of all cells: nothing is left (not round-off that log(O+E)/E magnifies)
            O.zero_()
            mass.zero_()
        else:
            O -= part.double()
            mass -= part[:n_first].sum(0).double()  # every cell is in one level of the first covariate
        pen = diversity_penalty(O, pr_b[:, None] * mass[None, :], theta).to(R.dtype)
        lb = logits.index_select(0, idx)
        scores = pen.index_select(0, cb[:, 0]).neg_().add_(lb)
        for c in range(1, cb.shape[1]):
            scores -= pen.index_select(0, cb[:, c])
        log_rb = torch.log_softmax(scores, dim=1)
        Rb = torch.exp(log_rb, out=scores)
        R.index_copy_(0, idx, Rb)
        fit_term += float(torch.dot(Rb.view(-1), lb.view(-1)))
        ent_term += float(torch.dot(Rb.view(-1), log_rb.view(-1)))
        part.zero_()
        for c in range(cb.shape[1]):  # put them back with their new assignments
            part.index_add_(0, cb[:, c], Rb)
        O += part.double()
        mass += part[:n_first].sum(0).double()
    return fit_term, ent_term


class Design:
    """The covariates of the cells, prepared once: global level codes (cells x covariates), the cells of every
    level, and the distinct combinations of levels ("patterns") with their ``[1, Phi]`` rows."""

    def __init__(self, codes: torch.Tensor, n_levels: Sequence[int]):
        self.n_levels = [int(v) for v in n_levels]
        self.n_total = sum(self.n_levels)
        self.gcodes = global_codes(codes, self.n_levels)
        self.n_cells = self.gcodes.shape[0]
        self.n_b = torch.bincount(self.gcodes.flatten(), minlength=self.n_total).double()
        self.levels = []  # (level, indices of its cells) for every level of every covariate
        for c in range(self.gcodes.shape[1]):
            col = self.gcodes[:, c]
            order = torch.argsort(col, stable=True)
            start = 0
            for b, cnt in enumerate(torch.bincount(col, minlength=self.n_total).tolist()):
                if cnt:
                    self.levels.append((b, order[start:start + cnt]))
                start += cnt
        key = codes[:, 0].to(torch.int64)
        for c in range(1, codes.shape[1]):  # one integer per combination of levels (mixed radix)
            key = key * self.n_levels[c] + codes[:, c].to(torch.int64)
        _, self.pattern_of_cell = torch.unique(key, return_inverse=True)
        n_pat = int(self.pattern_of_cell.max()) + 1
        first = torch.zeros(n_pat, dtype=torch.int64, device=codes.device).scatter_(
            0, self.pattern_of_cell, torch.arange(self.n_cells, device=codes.device))  # a cell of each pattern
        self.patterns = torch.zeros(n_pat, self.n_total + 1, dtype=torch.float64, device=codes.device)
        self.patterns[:, 0] = 1.0
        self.patterns.scatter_(1, self.gcodes[first] + 1, 1.0)


def ridge_correct(Z: torch.Tensor, R: torch.Tensor, design: Design, lamb: Optional[torch.Tensor],
                  alpha: float = 0.2, max_chunk: int = 2 * 10**7):
    """Mixture-of-experts ridge correction of ``Z`` (always the original embedding); returns ``(Z_corr, W)``.

    ``lamb`` holds one ridge penalty per batch level (the intercept is not penalised); ``None`` estimates it
    per cluster as ``alpha * E_kb`` (Harmony 2). ``W`` is clusters x (1 + batches) x dims with the intercept
    row zeroed. Each cluster's system is only (1 + batches) wide: they are all solved at once, in float64.
    """
    d, K, B, dev = Z.shape[1], R.shape[1], design.n_total, Z.device
    P = design.patterns
    S = torch.zeros(P.shape[0], K, dtype=R.dtype, device=dev).index_add_(0, design.pattern_of_cell, R).double()
    rhs = torch.zeros(K, B + 1, d, dtype=torch.float64, device=dev)  # [1, Phi]^T diag(R_k) Z
    for b, idx in design.levels:
        rhs[:, 1 + b] = (R[idx].T @ Z[idx]).double()
    # the intercept row as the sum of the first covariate's rows (every cell is in one of its levels): the
    # system stays exactly consistent along the intercept-minus-batches direction that only lamb penalises,
    # so a small lamb does not amplify float32 round-off there
    rhs[:, 0] = rhs[:, 1:1 + design.n_levels[0]].sum(1)
    mass = S.sum(0)
    W = torch.zeros(K, B + 1, d, dtype=torch.float64, device=dev)
    step = max(1, max_chunk // (B + 1) ** 2)
    for k0 in range(0, K, step):
        ks = slice(k0, min(K, k0 + step))
        A = torch.einsum("pk,pb,pc->kbc", S[:, ks], P, P)  # [1, Phi]^T diag(R_k) [1, Phi]
        if lamb is None:
            pen = alpha * (design.n_b / design.n_cells)[None, :] * mass[ks, None]
        else:
            pen = lamb.to(dev, torch.float64)[None, :].expand(A.shape[0], B)
        A[:, 1:, 1:] += torch.diag_embed(pen)
        live = mass[ks] > _TINY  # an empty cluster corrects nothing
        A[~live] = torch.eye(B + 1, dtype=torch.float64, device=dev)
        W[ks] = torch.linalg.solve(A, rhs[ks]) * live[:, None, None]
    W[:, 0] = 0.0  # the intercept (the cluster's centre) is not removed
    Wf = W.to(Z.dtype)
    Z_corr = Z.clone()
    for b, idx in design.levels:
        Z_corr.index_add_(0, idx, R[idx] @ Wf[:, 1 + b], alpha=-1.0)
    return Z_corr, W


def run_harmony(Z: torch.Tensor, codes: torch.Tensor, n_levels: Sequence[int], *, theta: Numbers = 2.0,
                sigma: float = 0.1, lamb: Optional[Numbers] = 1.0, alpha: float = 0.2, n_clusters: int = 100,
                tau: float = 0.0, block_size: float = 0.05, max_iter: int = 10, max_iter_cluster: int = 20,
                epsilon_cluster: float = 1e-5, epsilon_harmony: float = 1e-4,
                generator: Optional[torch.Generator] = None, callback=None) -> HarmonyFit:
    """Harmony on ``Z`` (cells x dims, float32) with ``codes`` (cells x covariates) of ``n_levels`` levels each.

    ``theta`` and ``lamb`` are one number or one per covariate (``lamb=None``: estimated from ``alpha``);
    ``tau > 0`` discounts ``theta`` of small batches by ``1 - exp(-(N_b / (K tau))^2)``. ``callback(i, fit)``
    is called after every outer iteration.
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    n = Z.shape[0]
    K = int(n_clusters)
    design = Design(codes.to(Z.device), n_levels)
    n_levels, n_total, gcodes, n_b = design.n_levels, design.n_total, design.gcodes, design.n_b
    pr_b = n_b / n
    theta_b = per_level(theta, n_levels, "theta").to(Z.device)
    if tau > 0:
        theta_b = theta_b * (1 - torch.exp(-(n_b / (K * tau)) ** 2))
    lamb_b = None if lamb is None else per_level(lamb, n_levels, "lamb").to(Z.device)

    Z_cos = cosine_normalize(Z)
    Y = cosine_normalize(kmeans(Z_cos, K, generator))
    logits = torch.empty(n, K, dtype=Z.dtype, device=Z.device)

    def set_logits():  # logits = -d / sigma with d = 2 (1 - Z_cos Y^T), in the preallocated buffer
        torch.matmul(Z_cos, Y.T, out=logits)
        logits.sub_(1.0).mul_(2.0 / sigma)

    set_logits()
    R = torch.softmax(logits, dim=1)
    O, mass = observed(R, gcodes, n_total), R.sum(0, dtype=torch.float64)
    log_r = torch.log_softmax(logits, dim=1)
    fit = HarmonyFit(Z_corr=Z, R=R, Y=Y)
    first = objective(-sigma * float((R * logits).sum(dtype=torch.float64)),
                      float((R * log_r).sum(dtype=torch.float64)), O, pr_b[:, None] * mass[None, :], theta_b,
                      sigma, n)
    del log_r
    fit.objective_kmeans.append(first)
    fit.objective_harmony.append(first)
    Z_corr = Z
    for it in range(max_iter):
        rounds = 0
        for j in range(max_iter_cluster):
            Y = cosine_normalize(R.T @ Z_cos)
            set_logits()
            fit_term, ent = soft_assign_blocks(R, logits, O, mass, gcodes, pr_b, theta_b, block_size, generator,
                                               n_levels[0])
            fit.objective_kmeans.append(objective(-sigma * fit_term, ent, O, pr_b[:, None] * mass[None, :],
                                                  theta_b, sigma, n))
            rounds = j + 1
            if j > WINDOW and converged(fit.objective_kmeans, epsilon_cluster, WINDOW):
                break
        fit.kmeans_rounds.append(rounds)
        fit.objective_harmony.append(fit.objective_kmeans[-1])
        Z_corr, _ = ridge_correct(Z, R, design, lamb_b, alpha)
        Z_cos = cosine_normalize(Z_corr)
        fit.n_iter = it + 1
        fit.Y = Y
        if callback is not None:
            callback(it, fit)
        if converged(fit.objective_harmony, epsilon_harmony):
            fit.converged = True
            break
    fit.Z_corr, fit.R, fit.Y = Z_corr, R, Y
    return fit
