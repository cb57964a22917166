"""DeepBID's network and its two KL terms (Qin, Zhang et al., Advanced Science 2024).

``DeepBIDNet`` is a tanh autoencoder f-500-300-500 whose last decoder layer D feeds three linear heads:
``recon`` (500 -> f, the MSE output used in layer-wise pretraining and by the Gaussian likelihood),
and the negative-binomial heads mean mu = s_i * exp(W_mu D) and dispersion theta = exp(W_theta D) (Eqs. 1-2),
with ``s_i`` the cell's library-size factor (DCA / scDeepCluster convention).

KL1 (Eqs. 7-9): Student-t similarities between cells of the *same batch* inside a minibatch, against their
sharpened (DEC) target. KL2 (Eq. 10): the batch proportions u_Bk inside each soft cluster k against the
global batch proportions v_B -- computed from memberships that depend on the latent codes, so it is
differentiable (the public DeepBID script returns it as a Python float, so there it never trains anything).

Example
-------
>>> import torch
>>> from scintegrate.modules.deepbid import DeepBIDNet
>>> net = DeepBIDNet(n_input=30, hidden=(16, 8))
>>> z = net.encode(torch.zeros(4, 30)); mu, theta = net.nb_params(net.decode(z), torch.ones(4))
>>> z.shape, mu.shape
(torch.Size([4, 8]), torch.Size([4, 30]))
>>> sorted(net.loss({"phase": "layer1", "x": torch.zeros(4, 30)}))
['loss']
"""

from __future__ import annotations

from typing import Sequence, Tuple

import torch
from torch import nn

from ..nn import gaussian_nll, kl_divergence, nb_nll, student_t_similarity, target_distribution
from ..nn.fuzzy import fuzzy_kmeans_loss, memberships, weight_penalty

_LOG_MAX = 15.0  # exp(15) ~ 3.3e6: caps the mean / dispersion heads


class DeepBIDNet(nn.Module):
    """Encoder f-h1-h2 and decoder h2-h1 (tanh everywhere), plus recon / NB-mean / NB-dispersion heads.

    Module contract: ``encode(x, cond=None)`` (DeepBID takes no condition) and ``loss(batch)``, where
    ``batch["phase"]`` is one of DeepBID's training phases: ``"layer1"`` / ``"layer2"`` (layer-wise MSE
    pretraining), ``"heads"`` (the likelihood heads on a frozen autoencoder) and ``"cluster"`` (Eq. 11).
    ``likelihood`` (``"nb"`` or ``"gaussian"``) picks the reconstruction term.
    """

    def __init__(self, n_input: int, hidden: Sequence[int] = (500, 300), likelihood: str = "nb"):
        super().__init__()
        self.likelihood = likelihood
        if len(hidden) != 2:
            raise ValueError(f"hidden must hold two sizes (e.g. (500, 300)), got {tuple(hidden)}")
        h1, h2 = int(hidden[0]), int(hidden[1])
        self.enc1, self.enc2 = nn.Linear(n_input, h1), nn.Linear(h1, h2)
        self.dec1 = nn.Linear(h2, h1)
        self.recon = nn.Linear(h1, n_input)
        self.mean_head, self.disp_head = nn.Linear(h1, n_input), nn.Linear(h1, n_input)

    def encode(self, x: torch.Tensor, cond: torch.Tensor = None) -> torch.Tensor:
        return torch.tanh(self.enc2(torch.tanh(self.enc1(x))))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Last decoder layer D (n x h1)."""
        return torch.tanh(self.dec1(z))

    def reconstruct(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.recon(hidden)

    def nb_params(self, hidden: torch.Tensor, size_factors: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(mu, theta): mu = s * exp(W_mu D), theta = exp(W_theta D) (log-scale clamped for stability)."""
        mean = torch.exp(self.mean_head(hidden).clamp(max=_LOG_MAX))
        theta = torch.exp(self.disp_head(hidden).clamp(-_LOG_MAX, _LOG_MAX))
        return mean * size_factors.unsqueeze(1), theta

    def network_layers(self):
        """The layers whose weights L_O penalises: the encoder, decoder and the active likelihood's heads."""
        heads = (self.mean_head, self.disp_head) if self.likelihood == "nb" else (self.recon,)
        return [self.enc1, self.enc2, self.dec1, *heads]

    # ------------------------------------------------------------------ losses (module contract)
    def reconstruction_loss(self, batch: dict, hidden: torch.Tensor) -> torch.Tensor:
        """L_rec per entry: NB negative log-likelihood of the counts, or 1/2 squared error (Gaussian)."""
        if self.likelihood == "nb":
            mu, theta = self.nb_params(hidden, batch["size_factors"])
            return nb_nll(batch["counts"], mu, theta).mean()
        return gaussian_nll(batch["x"], self.reconstruct(hidden)).mean()

    def loss(self, batch: dict) -> dict:
        """The loss terms of one minibatch of ``batch["phase"]`` (see the class docstring)."""
        phase, x = batch["phase"], batch.get("x")
        mse = torch.nn.functional.mse_loss
        if phase == "layer1":
            return {"loss": mse(self.recon(torch.tanh(self.enc1(x))), x)}
        if phase == "layer2":
            with torch.no_grad():
                h1 = torch.tanh(self.enc1(x))
            return {"loss": mse(self.decode(torch.tanh(self.enc2(h1))), h1)}
        if phase == "heads":
            return {"loss": self.reconstruction_loss(batch, batch["hidden"])}
        if phase == "cluster":
            return self._clustering_loss(batch)
        raise ValueError(f"unknown DeepBID training phase {phase!r}")

    def _clustering_loss(self, b: dict) -> dict:
        """Eq. 11: L_rec + lam1 L_A + lam2 L_O / m + kappa1 KL1 + kappa2 KL2 (P, C held fixed)."""
        w, centers, sigma = b["weights"], b["centers"], b["sigma"]
        z = self.encode(b["x"])
        rec = self.reconstruction_loss(b, self.decode(z))
        la = fuzzy_kmeans_loss(z, centers, b["p_old"], sigma)
        lo = weight_penalty(self.network_layers()) / len(b["x"])
        kl1 = within_batch_similarity_kl(z, b["batch"], w["alpha"])
        kl2 = batch_proportion_kl(memberships(z, centers, sigma, b["gamma"]), b["onehot"], v=b["v"],
                                  mass_rest=b["mass_rest"])
        loss = rec + w["lam1"] * la + w["lam2"] * lo + w["kappa1"] * kl1 + w["kappa2"] * kl2
        return {"loss": loss, "rec": rec, "L_A": la, "L_O": lo, "KL1": kl1, "KL2": kl2}


def within_batch_similarity_kl(z: torch.Tensor, batch: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """KL1: Σ over cells of KL(T_i || Q_i), Q = Student-t similarities among the cells of the same batch
    (self excluded), T = its sharpened target (held fixed). Batches with < 3 cells in ``z`` add nothing.

    Quadratic in the minibatch only (one small matrix per batch present).
    """
    total = z.new_zeros(())
    for level in torch.unique(batch):
        zb = z[batch == level]
        if zb.shape[0] < 3:  # with 2 cells each row is a single similarity 1: KL is 0 anyway
            continue
        q = student_t_similarity(zb, zb, alpha, exclude_diagonal=True)
        target = target_distribution(q).detach()  # zero diagonal too: those terms vanish
        total = total + kl_divergence(target, q, dim=1).sum()
    return total


def batch_proportion_kl(p: torch.Tensor, batch_onehot: torch.Tensor, v: torch.Tensor = None,
                        mass_rest: torch.Tensor = None) -> torch.Tensor:
    """KL2 (Eq. 10): Σ_k π_k Σ_B u_Bk log(u_Bk / v_B), u_Bk = Σ_{i∈B} p_ik / Σ_i p_ik, π_k = Σ_i p_ik / n.

    ``p`` (n x K) soft memberships, ``batch_onehot`` (n x n_batches); ``v`` defaults to the batch
    proportions of the same cells (the global ones when ``p`` covers every cell).

    Each cluster's KL is weighted by its share of the cells, π_k, which makes KL2 the mutual information
    between batch and cluster: a per-cell average like the other terms of Eq. 11. Unweighted (the public
    script), a 5% cluster costs as much as a 50% one, so the cheapest way to lower KL2 is to dissolve the
    small batch-specific clusters into others (measured: ``benchmarks/results/deepbid_design.md``).

    ``mass_rest`` (n_batches x K, no gradient): the membership mass of every *other* cell of the data set.
    With it, u_Bk and π_k are the data-set-level values of Eq. 10 (as the public script computes them, from
    all cells' memberships) and the gradient is exact with respect to the minibatch's cells, instead of
    the proportions of a 128-cell sample, whose sampling noise alone makes KL2 large.
    """
    mass = batch_onehot.t() @ p  # n_batches x K
    if mass_rest is not None:
        mass = mass + mass_rest
    cluster_mass = mass.sum(0)
    share = cluster_mass / cluster_mass.sum().clamp(min=1e-12)
    u = mass / cluster_mass.clamp(min=1e-12)
    if v is None:
        v = batch_onehot.sum(0) / batch_onehot.shape[0]
    return (share * kl_divergence(u.t(), v.unsqueeze(0).expand(u.shape[1], -1), dim=1)).sum()
