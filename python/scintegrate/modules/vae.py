"""The conditional variational autoencoder behind scVI, trVAE and CVAE (tensors only, no AnnData).

One network, configured per model (:mod:`scintegrate.models.scvi`, ``.trvae``, ``.cvae``)::

    q(z | x, s)   = N(mean, var)            encoder on log(1 + x) (counts) or x (continuous), condition s optional
    h1            = f1(z, s)                first decoder layer (trVAE's MMD acts on it)
    h             = f_rest(h1, s)           further decoder layers (the condition in every layer or the first only)
    counts:       rho = softmax(W h), mu = l * rho with l the observed library size (total counts of the cell)
                  or, with ``library="learned"`` (scVI's option), l = exp(log_l), log_l ~ q(log_l | x) a Gaussian
                  with the per-batch prior N(mean, var) of the data's log library sizes (its KL term unweighted),
                  x ~ NB(mu, theta) or ZINB(mu, theta, pi = sigmoid(W_pi h)), theta per gene or per gene and batch
    continuous:   x ~ N(W h, 1): the loss is half the squared error (CVAE)

Loss per cell, averaged over the minibatch: ``-log p(x | z, s) + kl_weight * KL(q(z | x, s) || N(0, I)) +
mmd_weight * MMD`` where MMD (trVAE) is the multi-scale RBF MMD between the conditions present in the
minibatch, on ``h1`` (``mmd_on="decoder"``, the paper's choice) or on ``z``.

Condition inputs are one-hot columns appended to the inputs of the conditioned linear layers
(:meth:`scintegrate.nn.MLP.conditioned_linears`), so a new condition is new columns (scArches surgery).

Example
-------
>>> import torch
>>> from scintegrate.modules.vae import ConditionalVAE
>>> vae = ConditionalVAE(n_genes=30, n_conditions=2, n_latent=4, hidden=(16,))
>>> x = torch.poisson(torch.full((8, 30), 2.0)); s = torch.tensor([0, 1] * 4)
>>> out = vae.loss({"x": x, "condition": s, "kl_weight": 1.0})
>>> sorted(out), vae.encode(x, s).shape
(['kl', 'loss', 'mmd', 'reconstruction'], torch.Size([8, 4]))
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import torch
from torch import nn

from ..nn import MLP, GaussianEncoder, gaussian_nll, kl_normal_var, mmd_between_conditions, nb_nll, zinb_nll

LIKELIHOODS = ("zinb", "nb", "gaussian")
DISPERSIONS = ("gene", "gene-batch")
MMD_ON = ("none", "decoder", "z")
NORMS = ("batch", "layer", "none")
LIBRARY = ("observed", "learned")


class ConditionalVAE(nn.Module):
    """Conditional VAE with an NB / ZINB decoder of counts or a Gaussian decoder of continuous values.

    Module contract: ``encode(x, condition)`` (the posterior mean) and ``loss(batch)`` with ``batch = {"x": values
    (cells x genes), "condition": integer codes, "kl_weight": float}`` (``"library"``, the cells' total counts,
    is taken from ``x`` when absent).
    """

    def __init__(self, n_genes: int, n_conditions: int, *, n_latent: int = 10, hidden: Sequence[int] = (128,),
                 dropout: float = 0.1, decoder_dropout: float = 0.0, likelihood: str = "zinb",
                 dispersion: str = "gene", encode_conditions: bool = False, condition_at: str = "all",
                 norm: str = "batch", mmd_on: str = "none", mmd_weight: float = 0.0, var_eps: float = 1e-4,
                 library: str = "observed"):
        super().__init__()
        for name, value, allowed in (("likelihood", likelihood, LIKELIHOODS), ("dispersion", dispersion, DISPERSIONS),
                                     ("mmd_on", mmd_on, MMD_ON), ("norm", norm, NORMS), ("library", library, LIBRARY)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        hidden = [int(h) for h in hidden]
        if min([n_genes, n_conditions, n_latent, len(hidden)] + hidden) < 1:
            raise ValueError(f"sizes must be positive, got n_genes={n_genes}, n_conditions={n_conditions}, "
                             f"n_latent={n_latent}, hidden={hidden}")
        self.n_genes, self.n_conditions, self.n_latent = int(n_genes), int(n_conditions), int(n_latent)
        self.likelihood, self.dispersion, self.mmd_on = likelihood, dispersion, mmd_on
        self.mmd_weight, self.encode_conditions = float(mmd_weight), bool(encode_conditions)
        block = dict(activation="relu", last_activation="relu", hidden_last=True, batch_norm=norm == "batch",
                     layer_norm=norm == "layer", condition_at=condition_at, dropout=float(decoder_dropout))
        self.encoder = GaussianEncoder(n_genes, n_latent, hidden=tuple(hidden),
                                       n_conditions=n_conditions if encode_conditions else 0,
                                       condition_at=condition_at, dropout=dropout, norm=norm, var_eps=var_eps)
        # the decoder mirrors the encoder; its first layer apart, as trVAE's MMD reads its output
        sizes = hidden[::-1]
        self.decoder_first = MLP([n_latent, sizes[0]], n_conditions=n_conditions, **block)
        rest_conditions = n_conditions if condition_at == "all" else 0
        self.decoder_rest = MLP(sizes, n_conditions=rest_conditions, **block) if len(sizes) > 1 else None
        self.mean_head = nn.Linear(sizes[-1], n_genes)  # softmax scale (counts) or the mean (continuous)
        self.dropout_head = nn.Linear(sizes[-1], n_genes) if likelihood == "zinb" else None
        if likelihood in ("nb", "zinb"):
            shape = (n_genes,) if dispersion == "gene" else (n_conditions, n_genes)
            self.log_theta = nn.Parameter(torch.randn(shape))
        if library == "learned" and likelihood == "gaussian":
            raise ValueError("a learned library size needs a count likelihood ('nb' or 'zinb')")
        self.library = library
        self.library_encoder = None
        if library == "learned":
            self.library_encoder = GaussianEncoder(n_genes, 1, hidden=(hidden[0],),
                                                   n_conditions=n_conditions if encode_conditions else 0,
                                                   condition_at=condition_at, dropout=dropout, norm=norm,
                                                   var_eps=var_eps)
            self.register_buffer("library_log_mean", torch.zeros(n_conditions))
            self.register_buffer("library_log_var", torch.ones(n_conditions))

    def set_library_prior(self, log_mean, log_var) -> None:
        """The per-condition prior of the log library size (``library="learned"``): mean and variance of the
        training cells' log total counts in each condition."""
        self.library_log_mean.copy_(torch.as_tensor(log_mean, dtype=torch.float32))
        self.library_log_var.copy_(torch.as_tensor(log_var, dtype=torch.float32).clamp(min=1e-4))

    # ------------------------------------------------------------------ pieces
    def _encoder_input(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log1p(x) if self.likelihood != "gaussian" else x

    def posterior(self, x: torch.Tensor, condition: Optional[torch.Tensor] = None):
        """``(mean, var, z)`` of q(z | x, s) (``z`` sampled in training mode, the mean in eval mode)."""
        cond = condition if self.encode_conditions else None
        return self.encoder(self._encoder_input(x), cond)

    def encode(self, x: torch.Tensor, condition: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The posterior mean (the embedding)."""
        return self.posterior(x, condition)[0]

    def decode(self, z: torch.Tensor, condition: torch.Tensor):
        """``(h1, h)``: the first decoder layer's output and the last one's."""
        h1 = self.decoder_first(z, condition)
        h = h1 if self.decoder_rest is None else self.decoder_rest(
            h1, condition if self.decoder_rest.n_conditions else None)
        return h1, h

    def expression(self, z: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Normalised expression: the decoder's ``rho`` (counts: shares of the library summing to 1 per cell) or
        its mean (continuous), for the latent ``z`` in condition ``condition``."""
        h = self.decode(z, condition)[1]
        out = self.mean_head(h)
        return torch.softmax(out, dim=-1) if self.likelihood != "gaussian" else out

    def reconstruction(self, x: torch.Tensor, h: torch.Tensor, condition: torch.Tensor,
                       library: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``-log p(x | h)`` per cell (summed over genes)."""
        out = self.mean_head(h)
        if self.likelihood == "gaussian":
            return gaussian_nll(x, out).sum(-1)
        library = x.sum(-1, keepdim=True) if library is None else library.reshape(-1, 1)
        mu = torch.softmax(out, dim=-1) * library
        log_theta = self.log_theta if self.dispersion == "gene" else self.log_theta[condition.long()]
        theta = log_theta.exp()
        if self.likelihood == "nb":
            return nb_nll(x, mu, theta).sum(-1)
        return zinb_nll(x, mu, theta, self.dropout_head(h)).sum(-1)

    # ------------------------------------------------------------------ loss
    def _library(self, x: torch.Tensor, condition: torch.Tensor, library):
        """``(library, kl)``: the observed library size (``kl`` 0), or a sample of the learned one (its mean in eval
        mode) with KL(q(log_l | x) || N(prior mean, prior var) of the cell's condition) per cell."""
        if self.library_encoder is None:
            return library, None
        cond = condition if self.encode_conditions else None
        mean, var, log_l = self.library_encoder(self._encoder_input(x), cond)
        p_mean, p_var = self.library_log_mean[condition.long()], self.library_log_var[condition.long()]
        kl = 0.5 * (torch.log(p_var) - torch.log(var[:, 0]) + (var[:, 0] + (mean[:, 0] - p_mean) ** 2) / p_var - 1)
        return torch.exp(log_l), kl

    def _per_cell(self, batch: Dict[str, object]):
        """``(reconstruction, kl, z, h1, kl_library)``: the per-cell terms of ``batch``, what the MMD may act on,
        and the learned library size's KL (``None`` for the observed library)."""
        x, condition = batch["x"], batch["condition"]
        mean, var, z = self.posterior(x, condition)
        h1, h = self.decode(z, condition)
        library, kl_library = self._library(x, condition, batch.get("library"))
        return self.reconstruction(x, h, condition, library), kl_normal_var(mean, var), z, h1, kl_library

    def loss(self, batch: Dict[str, object]) -> Dict[str, torch.Tensor]:
        """Loss of one minibatch (module contract): mean over cells of reconstruction + weighted KL (+ MMD)."""
        condition = batch["condition"]
        rec, kl, z, h1, kl_library = self._per_cell(batch)
        reconstruction, kl = rec.mean(), kl.mean()
        if self.mmd_on != "none" and self.mmd_weight > 0:
            mmd = mmd_between_conditions(h1 if self.mmd_on == "decoder" else z, condition, self.n_conditions)
        else:
            mmd = reconstruction.new_zeros(())
        loss = reconstruction + float(batch.get("kl_weight", 1.0)) * kl + self.mmd_weight * mmd
        out = {"loss": loss, "reconstruction": reconstruction, "kl": kl, "mmd": mmd}
        if kl_library is not None:  # not warmed up (scvi-tools' kl_local_no_warmup)
            out["kl_library"] = kl_library.mean()
            out["loss"] = loss + out["kl_library"]
        return out

    def elbo_terms(self, batch: Dict[str, object]) -> Dict[str, torch.Tensor]:
        """Summed (not averaged) reconstruction and KL over the cells of ``batch``, in the current mode
        (validation: the unweighted negative ELBO, as scvi-tools reports it)."""
        rec, kl, _, _, kl_library = self._per_cell(batch)
        return {"reconstruction": rec.sum(), "kl": kl.sum() + (0.0 if kl_library is None else kl_library.sum())}
