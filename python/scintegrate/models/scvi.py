"""scVI (Lopez et al. 2018, Nat Methods): a conditional VAE of the counts with the batch as the condition.

The network is :class:`scintegrate.modules.vae.ConditionalVAE` with scvi-tools' defaults: encoder on
``log(1 + counts)`` without the batch, 1 hidden layer of 128 units, batch normalisation, dropout 0.1 in the
encoder, 10 latent dimensions; the decoder takes the batch in every layer; ZINB likelihood with one dispersion
per gene; the observed library size. Training (:mod:`scintegrate.models._vae_base`): Adam at 1e-3 with weight
decay 1e-6, minibatches of 128, the KL weight ramping over 400 epochs as scvi-tools does (so runs shorter than
400 epochs end below weight 1, as there), scvi-tools' epoch rule, early stopping on the held-out ELBO once the
KL warm-up has ended.

Example
-------
>>> import scintegrate as si
>>> from scintegrate.models import SCVI
>>> adata = si.datasets.simulate_counts(n_cells=300, n_genes=100, seed=0)
>>> model = SCVI(max_epochs=3, progress=False).fit(adata, batch_key="batch")
>>> model.embed().shape, model.schedule_["epochs_used"]
((300, 10), 3)
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ._vae_base import ConditionalVAEModel


class SCVI(ConditionalVAEModel):
    """scVI integrator (AnnData of counts in; ``obsm["X_scvi"]`` and, on request, normalised expression out).

    Parameters
    ----------
    n_latent, n_hidden, n_layers, dropout
        Latent dimensions (10), hidden units per layer (128), hidden layers (1), encoder dropout (0.1).
    likelihood, dispersion
        ``"zinb"`` (default) or ``"nb"``; ``"gene"`` (default) or ``"gene-batch"`` dispersion.
    n_features
        Integration features (2,000).
    batch_size, lr, weight_decay, max_epochs, n_epochs_kl_warmup, patience, rel_tol, validation_fraction
        Training (128, 1e-3, 1e-6, ``None`` = scvi-tools' rule, 400, ``None`` = a tenth of the epochs, 0, 0.1).
    library
        ``"observed"`` (default, as scArches: the cell's total counts) or ``"learned"`` (scVI's latent library
        size with a log-normal prior per batch, fitted to the training cells).
    return_normalized
        Also write the decoder's normalised expression (shares of 10,000 per cell, each cell in its own batch)
        as ``layers["scvi_normalized"]`` (dense cells x features, in the features' columns).
    seed, device, progress
        Seed of initialisation, split and sampling; ``"auto" | "cpu" | "cuda"``; tqdm bar with the loss terms.
    """

    method = "scvi"

    def __init__(self, *, n_latent: int = 10, n_hidden: int = 128, n_layers: int = 1, dropout: float = 0.1,
                 likelihood: str = "zinb", dispersion: str = "gene", n_features: int = 2000, batch_size: int = 128,
                 lr: float = 1e-3, weight_decay: float = 1e-6, max_epochs: Optional[int] = None,
                 n_epochs_kl_warmup: Optional[int] = 400, patience: Optional[int] = None, rel_tol: float = 0.0,
                 validation_fraction: float = 0.1, return_normalized: bool = False, library: str = "observed",
                 seed: int = 0,
                 device: str = "auto", progress: bool = True):
        if likelihood not in ("zinb", "nb"):
            raise ValueError(f"scVI's likelihood must be 'zinb' or 'nb', got {likelihood!r} (method='cvae' models "
                             "log-normalised values)")
        if library not in ("observed", "learned"):
            raise ValueError(f"library must be 'observed' or 'learned', got {library!r}")
        if int(n_hidden) < 1 or int(n_layers) < 1:
            raise ValueError(f"n_hidden and n_layers must be positive, got {n_hidden}, {n_layers}")
        self._setup_vae(dict(n_latent=int(n_latent), n_hidden=int(n_hidden), n_layers=int(n_layers),
                             dropout=float(dropout), likelihood=likelihood, dispersion=dispersion,
                             n_features=int(n_features), batch_size=int(batch_size), lr=float(lr),
                             weight_decay=float(weight_decay), max_epochs=max_epochs,
                             n_epochs_kl_warmup=n_epochs_kl_warmup, patience=patience, rel_tol=float(rel_tol),
                             validation_fraction=float(validation_fraction),
                             return_normalized=bool(return_normalized), library=library),
                        seed=seed, device=device, progress=progress)

    def _module_kwargs(self) -> dict:
        p = self.params
        return dict(hidden=[p["n_hidden"]] * p["n_layers"], dropout=p["dropout"], decoder_dropout=0.0,
                    dispersion=p["dispersion"], encode_conditions=False, condition_at="all", norm="batch",
                    library=p.get("library", "observed"))

    def normalized_expression(self, adata=None, *, batch_key: Optional[str] = None,
                              layer: Optional[str] = None) -> np.ndarray:
        """The decoder's expression shares (x 10,000, cells x features in ``features_`` order) of the training
        cells (``adata=None``) or of new cells of the training batches, each decoded in its own batch.

        >>> model.normalized_expression(new_cells, batch_key="batch").shape  # doctest: +SKIP
        (n_new_cells, 2000)
        """
        import torch

        from ..train import map_chunks

        self._check_fitted()
        if adata is None:
            codes, z = self.train_codes_, self.embedding_
        else:
            key = batch_key if batch_key is not None else self.batch_key_
            if key not in adata.obs.columns:
                raise KeyError(f"batch column {key!r} not found: the decoder needs each cell's batch")
            adata, data = self._new_cells(adata, batch_key=key, layer=layer)
            X, codes = self._new_values(data, need_batch=True)
            z = self._encode(X, codes)
        codes = torch.as_tensor(codes, device=self.device)
        z = torch.as_tensor(z, device=self.device)
        self.module.eval()
        out = map_chunks(lambda rows: self.module.expression(z[rows], codes[rows]) * 1e4, z.shape[0])
        return out.cpu().numpy().astype(np.float32)

    def _outputs(self) -> dict:
        out = super()._outputs()
        if self.params["return_normalized"]:
            import scipy.sparse as sp

            norm = self.normalized_expression()
            lookup = {g: i for i, g in enumerate(self.var_names_)}
            cols = np.array([lookup[g] for g in self.features_], dtype=np.int64)
            order = np.argsort(cols)
            n, k = norm.shape
            full = sp.csr_matrix((norm[:, order].ravel(), np.tile(cols[order], n), np.arange(0, n * k + 1, k)),
                                 shape=(n, len(self.var_names_)))
            out["layers"] = {"scvi_normalized": full}
        return out
