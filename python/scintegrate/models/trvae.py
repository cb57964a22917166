"""trVAE (Lotfollahi et al. 2020, Bioinformatics) as an integrator (the CVAE of :mod:`scintegrate.models.cvae`
is the same network with a Gaussian likelihood and no MMD).

trVAE: the condition (batch) enters the encoder and the first decoder layer; NB likelihood of the counts with
one dispersion per gene and batch; the multi-scale RBF MMD between the batches present in a minibatch on the
output of the first decoder layer (the paper's choice; ``mmd_on="z"``, scArches' default, as an option),
weighted by ``mmd_weight`` (beta = 1). Architecture and training as scArches' trVAE: hidden layers (256, 64)
(the decoder mirrored), 10 latent dimensions, dropout 0.05 in every layer, layer normalisation, Adam at 1e-3
with weight decay 0.04, minibatches of 128, early stopping on the held-out ELBO after the KL warm-up. One deliberate difference from
scArches' default (no KL annealing): the KL weight ramps over 400 epochs, as scVI's does, which kept the
simulated types better apart (``benchmarks/results/vae_design.md``); ``n_epochs_kl_warmup=None`` restores
scArches'.

Example
-------
>>> import scintegrate as si
>>> from scintegrate.models import TRVAE
>>> adata = si.datasets.simulate_counts(n_cells=300, n_genes=100, seed=0)
>>> TRVAE(max_epochs=2, progress=False).fit(adata, batch_key="batch").embed().shape
(300, 10)
"""

from __future__ import annotations

from typing import Optional, Sequence

from ._vae_base import ConditionalVAEModel


class TRVAE(ConditionalVAEModel):
    """trVAE integrator (counts in; ``obsm["X_trvae"]`` out).

    Parameters
    ----------
    n_latent, hidden, dropout
        Latent dimensions (10), encoder hidden sizes ((256, 64); the decoder mirrors them), dropout (0.05).
    likelihood
        ``"nb"`` (default) or ``"zinb"``.
    mmd_on, mmd_weight
        ``"decoder"`` (the first decoder layer's output, default) or ``"z"``; the MMD weight beta (1).
    n_features, batch_size, lr, weight_decay, max_epochs, n_epochs_kl_warmup, patience, rel_tol,
    validation_fraction
        As :class:`scintegrate.models.SCVI`; weight decay 0.04 as scArches; the KL warm-up over 400 epochs
        (scArches: none, ``None``).
    seed, device, progress
        Seed of initialisation, split and sampling; ``"auto" | "cpu" | "cuda"``; tqdm bar with the loss terms.
    """

    method = "trvae"
    _likelihoods = ("nb", "zinb")

    def __init__(self, *, n_latent: int = 10, hidden: Sequence[int] = (256, 64), dropout: float = 0.05,
                 likelihood: str = "nb", mmd_on: str = "decoder", mmd_weight: float = 1.0, n_features: int = 2000,
                 batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 0.04,
                 max_epochs: Optional[int] = None, n_epochs_kl_warmup: Optional[int] = 400,
                 patience: Optional[int] = None, rel_tol: float = 0.0, validation_fraction: float = 0.1,
                 seed: int = 0, device: str = "auto", progress: bool = True):
        if likelihood not in self._likelihoods:
            raise ValueError(f"{type(self).__name__}'s likelihood must be one of {self._likelihoods}, got "
                             f"{likelihood!r}")
        if mmd_on not in ("decoder", "z", "none"):
            raise ValueError(f"mmd_on must be 'decoder', 'z' or 'none', got {mmd_on!r}")
        hidden = [int(h) for h in hidden]
        if not hidden or min(hidden) < 1:
            raise ValueError(f"hidden must be a non-empty list of positive sizes, got {hidden}")
        self._setup_vae(dict(n_latent=int(n_latent), hidden=hidden, dropout=float(dropout), likelihood=likelihood,
                             mmd_on=mmd_on, mmd_weight=float(mmd_weight), n_features=int(n_features),
                             batch_size=int(batch_size), lr=float(lr), weight_decay=float(weight_decay),
                             max_epochs=max_epochs, n_epochs_kl_warmup=n_epochs_kl_warmup, patience=patience,
                             rel_tol=float(rel_tol), validation_fraction=float(validation_fraction)),
                        seed=seed, device=device, progress=progress)

    def _module_kwargs(self) -> dict:
        p = self.params
        return dict(hidden=p["hidden"], dropout=p["dropout"], decoder_dropout=p["dropout"], dispersion="gene-batch",
                    encode_conditions=True, condition_at="first", norm="layer", mmd_on=p["mmd_on"],
                    mmd_weight=p["mmd_weight"])
