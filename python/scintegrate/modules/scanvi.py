"""scANVI's network (Xu et al. 2021, Mol Syst Biol): scVI's VAE plus a cell-type classifier and a second latent
layer (tensors only, no AnnData).

Generative model (the M1+M2 stack of Kingma et al. 2014 on top of scVI)::

    y ~ Cat(prior)            cell type (uniform prior over the labelled categories)
    z2 ~ N(0, I)
    z1 | z2, y ~ N(m(z2, y), v(z2, y))         decoder_z1
    x | z1, s ~ scVI's NB / ZINB decoder         vae (a :class:`~scintegrate.modules.vae.ConditionalVAE`)

Inference: q(z1 | x) (scVI's encoder), q(y | z1) (``classifier``, logits), q(z2 | z1, y) (``encoder_z2``).

Loss per cell (averaged over the minibatch), with ``w`` the KL weight::

    labelled (y known):  -log p(x | z1) + log q(z1 | x) - log p(z1 | z2, y) + w * KL(q(z2 | z1, y) || N(0, I))
    unlabelled:          -log p(x | z1) + log q(z1 | x) + sum_y q(y | z1) [-log p(z1 | z2, y)
                                          + w * KL(q(z2 | z1, y) || N(0, I))] + w * KL(q(y | z1) || prior)

plus ``classification_ratio`` (50) times the cross-entropy of the classifier on a minibatch of labelled cells
(the paper's alpha term; scvi-tools' default ratio). The paper's labelled ELBO uses the observed label;
scvi-tools 1.4 marginalises y for every cell of the main minibatch, labelled or not
(``marginalize_labelled=True`` does the same here).

Example
-------
>>> import torch
>>> from scintegrate.modules.scanvi import SCANVAE
>>> from scintegrate.modules.vae import ConditionalVAE
>>> vae = ConditionalVAE(n_genes=30, n_conditions=2, n_latent=4, hidden=(16,))
>>> net = SCANVAE(vae, n_labels=3, hidden=(16,))
>>> x = torch.poisson(torch.full((8, 30), 2.0)); s = torch.tensor([0, 1] * 4); y = torch.tensor([0, 1, 2, -1] * 2)
>>> out = net.loss({"x": x, "condition": s, "label": y, "kl_weight": 1.0, "labelled": {"x": x[:3],
...                 "condition": s[:3], "label": y[:3]}})
>>> sorted(out), net.classify(x, s).shape
(['classification', 'kl', 'loss', 'reconstruction'], torch.Size([8, 3]))
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..nn import MLP, GaussianEncoder, kl_normal_var
from .vae import ConditionalVAE

#: log(2 pi), in the Gaussian log-densities of z1
_LOG_2PI = math.log(2 * math.pi)


def normal_log_density(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, var) summed over the last dimension."""
    return -0.5 * (_LOG_2PI + torch.log(var) + (x - mean) ** 2 / var).sum(-1)


class SCANVAE(nn.Module):
    """scANVI: ``vae`` (scVI's network, usually pre-trained) with a classifier on z1 and the z2 | z1, y layer.

    ``hidden``, ``dropout`` and ``norm`` size the classifier and the two z2 / z1 networks (scvi-tools: as scVI's
    encoder, 1 x 128, dropout 0.1, batch norm). Labels are integer codes ``0..n_labels-1``, ``-1`` for unlabelled
    cells.
    """

    def __init__(self, vae: ConditionalVAE, n_labels: int, *, hidden: Sequence[int] = (128,), dropout: float = 0.1,
                 norm: str = "batch", marginalize_labelled: bool = False):
        super().__init__()
        if int(n_labels) < 1:
            raise ValueError(f"n_labels must be positive, got {n_labels}")
        self.vae, self.n_labels = vae, int(n_labels)
        self.marginalize_labelled = bool(marginalize_labelled)
        n_latent = vae.n_latent
        hidden = [int(h) for h in hidden]
        self.classifier = nn.Sequential(
            MLP([n_latent, *hidden], activation="relu", last_activation="relu", dropout=dropout,
                batch_norm=norm == "batch", layer_norm=norm == "layer", hidden_last=True),
            nn.Linear(hidden[-1], self.n_labels))
        self.encoder_z2 = GaussianEncoder(n_latent, n_latent, hidden=hidden, n_conditions=self.n_labels,
                                          condition_at="all", dropout=dropout, norm=norm)
        self.decoder_z1 = GaussianEncoder(n_latent, n_latent, hidden=hidden, n_conditions=self.n_labels,
                                          condition_at="all", dropout=0.0, norm=norm)
        self.register_buffer("log_prior", torch.full((self.n_labels,), -math.log(self.n_labels)))

    # ------------------------------------------------------------------ module contract, predictions
    @property
    def n_latent(self) -> int:
        return self.vae.n_latent

    def encode(self, x: torch.Tensor, condition: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The posterior mean of z1 (the embedding)."""
        return self.vae.encode(x, condition)

    def expression(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """scVI's normalised expression of z1 in ``condition`` (see :meth:`ConditionalVAE.expression`)."""
        return self.vae.expression(z, condition)

    def classify(self, x: torch.Tensor, condition: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Logits of q(y | z1) at the posterior mean of z1 (scvi-tools' ``use_posterior_mean``)."""
        return self.classifier(self.vae.posterior(x, condition)[0])

    # ------------------------------------------------------------------ loss
    def _z1_terms(self, z1: torch.Tensor, labels: torch.Tensor):
        """Per (cell, label) ``-log p(z1 | z2, y)`` and ``KL(q(z2 | z1, y) || N(0, I))`` for the given labels."""
        mean2, var2, z2 = self.encoder_z2(z1, labels)
        mean1, var1, _ = self.decoder_z1(z2, labels)
        return -normal_log_density(z1, mean1, var1), kl_normal_var(mean2, var2)

    def _per_cell(self, batch: Dict[str, object]):
        """``(reconstruction, kl)`` per cell: the z1-level terms in the reconstruction, the z2 / y KL terms in kl."""
        vae = self.vae
        x, condition = batch["x"], batch["condition"]
        labels = batch.get("label")
        n = x.shape[0]
        labels = torch.full((n,), -1, dtype=torch.long, device=x.device) if labels is None else labels.long()
        mean1, var1, z1 = vae.posterior(x, condition)
        h = vae.decode(z1, condition)[1]
        library, kl_library = vae._library(x, condition, batch.get("library"))
        rec = vae.reconstruction(x, h, condition, library) + normal_log_density(z1, mean1, var1)
        known = labels >= 0
        if self.marginalize_labelled:
            known = torch.zeros_like(known)
        idx_known, idx_rest = known.nonzero().squeeze(1), (~known).nonzero().squeeze(1)
        m = idx_rest.numel()
        # one pass of the z2 / z1 networks (batch norm sees every row): labelled cells with their label, then
        # every unlabelled cell once per label
        rows = torch.cat([idx_known, idx_rest.repeat(self.n_labels)])
        row_labels = torch.cat([labels[idx_known],
                                torch.arange(self.n_labels, device=x.device).repeat_interleave(m)])
        nll1, kl2 = self._z1_terms(z1[rows], row_labels)
        k = idx_known.numel()
        kl = torch.zeros_like(rec) if kl_library is None else kl_library  # weighted, as in scvi-tools' scANVI
        kl = kl.index_add(0, idx_known, kl2[:k])
        rec = rec.index_add(0, idx_known, nll1[:k])
        if m:  # unlabelled cells: every label, weighted by q(y | z1), and KL(q(y | z1) || prior)
            log_q = F.log_softmax(self.classifier(z1), dim=-1)[idx_rest]  # all rows: batch norm needs two
            probs = log_q.exp()
            nll_u = (nll1[k:].view(self.n_labels, m).t() * probs).sum(-1)
            kl_u = (kl2[k:].view(self.n_labels, m).t() * probs).sum(-1) + (probs * (log_q - self.log_prior)).sum(-1)
            rec, kl = rec.index_add(0, idx_rest, nll_u), kl.index_add(0, idx_rest, kl_u)
        return rec, kl

    def loss(self, batch: Dict[str, object]) -> Dict[str, torch.Tensor]:
        """Mean of reconstruction + weighted KL over ``batch``, plus ``classification_ratio`` x the cross-entropy
        on ``batch["labelled"]`` (a minibatch of labelled cells; absent: no classification term)."""
        rec, kl = self._per_cell(batch)
        reconstruction, kl = rec.mean(), kl.mean()
        loss = reconstruction + float(batch.get("kl_weight", 1.0)) * kl
        labelled = batch.get("labelled")
        classification = reconstruction.new_zeros(())
        if labelled is not None:
            classification = F.cross_entropy(self.classify(labelled["x"], labelled["condition"]),
                                              labelled["label"].long())
            loss = loss + float(batch.get("classification_ratio", 50.0)) * classification
        return {"loss": loss, "reconstruction": reconstruction, "kl": kl, "classification": classification}

    def elbo_terms(self, batch: Dict[str, object]) -> Dict[str, torch.Tensor]:
        """Summed reconstruction and KL over the cells of ``batch`` (the held-out negative ELBO)."""
        rec, kl = self._per_cell(batch)
        return {"reconstruction": rec.sum(), "kl": kl.sum()}
