"""BERMUDA's autoencoder and loss (Wang, Johnson & Huang 2019, Genome Biology), tensors only.

Architecture (``ae.py`` of the reference code): encoder ``n_genes -> 200 -> ReLU -> 20`` (linear
code), decoder ``20 -> 200 -> ReLU -> n_genes -> ReLU`` (the input is scaled to [0, 1]); Xavier
uniform weights and biases 0.01. The 2-D Gaussian toy uses ``hidden=20, code_dim=2``.

Loss of one training step (Eqs. 6-8), for a minibatch made of ``n_mb`` cells from each of K
clusters stacked cluster by cluster::

    L = sum_k MSE(x_k, x_hat_k) + lam * sum_{(i, j) similar} M_ij * MMD^2(code_i, code_j)

MMD uses five Gaussian kernels with fixed widths sigma = 1, 2, 4, 8, 16
(``exp(-d^2 / (2 sigma^2))``; biased estimate), i.e. :func:`scintegrate.nn.mmd_multi_kernel`
with ``kernel_mul=4, kernel_num=5, fix_sigma=32``. ``lam`` follows Eq. 9 (see :func:`lambda_ramp`).

Deliberate deviation, the default (``code_norm="sphere"``; ``"none"`` is the published network). With
fixed kernel widths the MMD term is lowered by shrinking the codes of every cluster that has a similar
pair, and the decoder makes up for the smaller scale; clusters that match nothing have no MMD term and
keep their scale. On pbmc_10x_chemistries the published network put the matched clusters within 0.4 of the
median code and the one unmatched cluster 8-11 away, which breaks every distance-based use of the embedding
(k-means NMI 0.02). Here every cell's code is scaled to the norm ``sqrt(code_dim)`` (the norm of a
standardised code) before the decoder and the MMD: no shrinking can lower the MMD, so it aligns pairs at a
fixed scale, and an unmatched cluster can lie at most one diameter from the rest, while batch-specific types of
the removal simulations stay apart. ``"matched"`` (the code standardised by the mean and variance of the matched clusters' cells, as
batch normalisation; running statistics at inference) also stops the runaway but mixes batch-specific types
on the removal simulations. Scaling the codes only inside the MMD was rejected: the loss is then lowered by
pushing one pair far from the rest (``benchmarks/results/bermuda_design.md``).

Example
-------
>>> import torch
>>> from scintegrate.modules.bermuda import BermudaAE
>>> ae = BermudaAE(n_genes=30, hidden=20, code_dim=2)
>>> ae.set_cluster_pairs(n_clusters=3, pairs=torch.tensor([[0, 1]]))
>>> x = torch.rand(3 * 5, 30)  # 3 clusters x 5 cells
>>> out = ae.loss({"x": x, "lam": 0.5})
>>> sorted(out), ae.encode(x).shape
(['lambda', 'loss', 'mmd', 'reconstruction'], torch.Size([15, 2]))
"""

from __future__ import annotations

import math
from typing import Dict

import torch
from torch import nn

from ..nn import MLP, mmd_multi_kernel

#: BERMUDA's MMD kernels: sigma = 1, 2, 4, 8, 16 -> widths 2 sigma^2 = 2 .. 512 = 32 * 4^(i - 2)
MMD_KERNEL = {"kernel_mul": 4.0, "kernel_num": 5, "fix_sigma": 32.0}


#: ``"sphere"`` (default): every code scaled to norm sqrt(code_dim); ``"none"``: the published network, raw codes;
#: ``"matched"``: the code is standardised by the mean and spread of the matched clusters' cells
CODE_NORMS = ("sphere", "none", "matched")
NORM_EPS, NORM_MOMENTUM = 1e-5, 0.1


def lambda_ramp(progress: float, ramp_length: float, lam_max: float = 1.0) -> float:
    """Eq. 9: ``lam_p = lam_max * (2 / (1 + exp(-10 p / n_p)) - 1)`` (0 at p=0, ~lam_max at p=n_p).

    >>> round(lambda_ramp(0, 100), 3), round(lambda_ramp(50, 100), 3), round(lambda_ramp(100, 100), 4)
    (0.0, 0.987, 0.9999)
    """
    if ramp_length <= 0:
        return float(lam_max)
    return float(lam_max) * (2.0 / (1.0 + math.exp(-10.0 * progress / ramp_length)) - 1.0)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        nn.init.constant_(module.bias, 0.01)


def _to_sphere(code: torch.Tensor) -> torch.Tensor:
    """Each cell's code scaled to norm sqrt(code_dim) (the norm of a standardised code)."""
    return code * (math.sqrt(code.shape[-1]) / code.norm(dim=-1, keepdim=True).clamp(min=NORM_EPS))


class BermudaAE(nn.Module):
    """Autoencoder ``n_genes -> hidden -> code_dim -> hidden -> n_genes`` with BERMUDA's loss.

    Module contract: ``encode(x, cond=None)`` (BERMUDA takes no condition: batches are scaled apart
    beforehand) and ``loss(batch)`` with ``batch = {"x": cells stacked cluster by cluster, "lam": MMD
    weight}``; the clusters and their similar pairs are set once per fit with :meth:`set_cluster_pairs`.
    """

    def __init__(self, n_genes: int, hidden: int = 200, code_dim: int = 20, code_norm: str = "sphere"):
        super().__init__()
        if code_norm not in CODE_NORMS:
            raise ValueError(f"code_norm must be one of {CODE_NORMS}, got {code_norm!r}")
        if min(n_genes, hidden, code_dim) < 1:
            raise ValueError(f"sizes must be positive, got n_genes={n_genes}, hidden={hidden}, code_dim={code_dim}")
        self.code_norm = code_norm
        self.encoder = MLP([n_genes, hidden, code_dim], activation="relu")
        self.decoder = MLP([code_dim, hidden, n_genes], activation="relu", last_activation="relu")
        self.apply(_init_weights)
        if code_norm == "matched":  # running mean / variance of the matched clusters' raw codes (as BatchNorm's)
            self.register_buffer("code_mean", torch.zeros(code_dim))
            self.register_buffer("code_var", torch.ones(code_dim))
        self.n_clusters, self.pairs, self.pair_weights = 1, torch.zeros((0, 2), dtype=torch.long), None

    def set_cluster_pairs(self, n_clusters: int, pairs: torch.Tensor, pair_weights: torch.Tensor = None) -> None:
        """The number of clusters stacked in every minibatch and the similar pairs (P x 2 indices)."""
        self.n_clusters = int(n_clusters)
        self.pairs = torch.as_tensor(pairs, dtype=torch.long).reshape(-1, 2)
        self.pair_weights = pair_weights

    def encode(self, x: torch.Tensor, cond: torch.Tensor = None) -> torch.Tensor:
        code = self.encoder(x)
        if self.code_norm == "matched":
            code = (code - self.code_mean) / (self.code_var + NORM_EPS).sqrt()
        elif self.code_norm == "sphere":
            code = _to_sphere(code)
        return code

    def forward(self, x: torch.Tensor):
        code = self.encode(x)
        return code, self.decoder(code)

    def _training_code(self, x: torch.Tensor, n_clusters: int, pairs: torch.Tensor) -> torch.Tensor:
        """Codes of a training minibatch: on the sphere, raw, or (``"matched"``) standardised by the statistics of its
        matched clusters' cells (all cells when nothing is matched), which also update the running statistics
        used by :meth:`encode`."""
        raw = self.encoder(x)
        if self.code_norm == "none":
            return raw
        if self.code_norm == "sphere":
            return _to_sphere(raw)
        blocks = raw.view(n_clusters, -1, raw.shape[1])
        ref = blocks[torch.unique(pairs.to(raw.device))] if pairs.shape[0] else blocks
        ref = ref.reshape(-1, raw.shape[1])
        mean, var = ref.mean(0), ref.var(0, unbiased=False)
        if self.training:
            with torch.no_grad():
                self.code_mean.lerp_(mean.detach(), NORM_MOMENTUM)
                self.code_var.lerp_(var.detach(), NORM_MOMENTUM)
        return (raw - mean) / (var + NORM_EPS).sqrt()

    def loss(self, batch: Dict[str, object]) -> Dict[str, torch.Tensor]:
        """Loss of one step (module contract); see :meth:`loss_terms`."""
        lam = float(batch["lam"])
        out = self.loss_terms(batch["x"], self.n_clusters, self.pairs, lam, self.pair_weights)
        out["lambda"] = torch.tensor(lam)
        return out

    def loss_terms(self, x: torch.Tensor, n_clusters: int, pairs: torch.Tensor, lam: float,
                   pair_weights: torch.Tensor = None) -> Dict[str, torch.Tensor]:
        """Loss of one step; ``x`` holds ``n_clusters`` equal blocks of cells, one per cluster.

        ``pairs`` (P x 2, cluster indices into the blocks) are the similar cluster pairs with
        weights ``pair_weights`` (default 1, as after BERMUDA's binarisation).
        """
        code = self._training_code(x, n_clusters, pairs)
        recon = self.decoder(code)
        n_mb = x.shape[0] // n_clusters
        # sum over clusters of each cluster's mean squared error (equal block sizes)
        reconstruction = ((recon - x) ** 2).mean() * n_clusters
        blocks = code.view(n_clusters, n_mb, -1)
        if pairs.shape[0]:  # all pairs in one batched call: P x n_mb x code_dim each side
            pairs = pairs.to(code.device)
            per_pair = mmd_multi_kernel(blocks[pairs[:, 0]], blocks[pairs[:, 1]], **MMD_KERNEL)
            w = torch.ones_like(per_pair) if pair_weights is None else pair_weights.to(per_pair)
            mmd = (w * per_pair).sum()
        else:
            mmd = code.new_zeros(())
        return {"loss": reconstruction + lam * mmd, "reconstruction": reconstruction, "mmd": mmd}
