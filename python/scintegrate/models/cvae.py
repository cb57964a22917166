"""CVAE: the conditional VAE of log-normalised values (Gaussian likelihood), for data without counts.

The network and training of :class:`scintegrate.models.TRVAE` (scArches' CVAE / trVAE architecture: the batch in
the encoder and the first decoder layer, hidden layers (256, 64), layer normalisation, dropout 0.05, Adam with
weight decay 0.04) with a Gaussian likelihood of unit variance (half the squared error, scArches'
``recon_loss="mse"``) and no MMD. Counts are log-normalised first (:func:`scintegrate.pp.log_normalize`);
log-normalised or other continuous values are taken as they are.

Example
-------
>>> import scintegrate as si
>>> from scintegrate.models import CVAE
>>> adata = si.datasets.simulate_counts(n_cells=300, n_genes=100, seed=0)
>>> CVAE(max_epochs=2, progress=False).fit(adata, batch_key="batch").embed().shape
(300, 10)
"""

from __future__ import annotations

from typing import Optional, Sequence

from .trvae import TRVAE


class CVAE(TRVAE):
    """Conditional VAE of log-normalised values: ``obsm["X_cvae"]``.

    Parameters
    ----------
    n_latent, hidden, dropout
        Latent dimensions (10), encoder hidden sizes ((256, 64); the decoder mirrors them), dropout (0.05).
    likelihood
        ``"gaussian"`` (the only one: count models are ``scvi`` and ``trvae``).
    mmd_on, mmd_weight
        ``"none"`` and 0 (no MMD; ``"decoder"`` or ``"z"`` with a weight add trVAE's MMD to the Gaussian model).
    n_features, batch_size, lr, weight_decay, max_epochs, n_epochs_kl_warmup, patience, rel_tol,
    validation_fraction
        As :class:`scintegrate.models.TRVAE`.
    seed, device, progress
        Seed of initialisation, split and sampling; ``"auto" | "cpu" | "cuda"``; tqdm bar.
    """

    method = "cvae"
    _likelihoods = ("gaussian",)

    def __init__(self, *, n_latent: int = 10, hidden: Sequence[int] = (256, 64), dropout: float = 0.05,
                 likelihood: str = "gaussian", mmd_on: str = "none", mmd_weight: float = 0.0,
                 n_features: int = 2000, batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 0.04,
                 max_epochs: Optional[int] = None, n_epochs_kl_warmup: Optional[int] = 400,
                 patience: Optional[int] = None, rel_tol: float = 0.0, validation_fraction: float = 0.1,
                 seed: int = 0, device: str = "auto", progress: bool = True):
        super().__init__(n_latent=n_latent, hidden=hidden, dropout=dropout, likelihood=likelihood, mmd_on=mmd_on,
                         mmd_weight=mmd_weight, n_features=n_features, batch_size=batch_size, lr=lr,
                         weight_decay=weight_decay, max_epochs=max_epochs, n_epochs_kl_warmup=n_epochs_kl_warmup,
                         patience=patience, rel_tol=rel_tol, validation_fraction=validation_fraction, seed=seed,
                         device=device, progress=progress)
