"""What scVI, trVAE and CVAE share: input, schedule, the training run, embedding, saving (AnnData in, arrays out).

A subclass sets its registry ``method``, its defaults (constructor) and ``_module_kwargs()``; this base

1. takes the integration features (``n_features``, 2,000: Seurat's SelectIntegrationFeatures on counts, the
   same genes as the uncorrected baseline) and their values as a CSR matrix (never densified: each minibatch's
   rows are made dense on their own); count likelihoods (NB, ZINB) need counts, and other values are refused
   with an error that names the continuous model (values are never rounded); the Gaussian likelihood reads
   log-normalised values (counts go through :func:`scintegrate.pp.log_normalize`);
2. holds out ``validation_fraction`` (0.1) of the cells (a seeded draw), trains on the rest with Adam
   (``lr``, ``weight_decay``, eps 0.01 as scvi-tools and scArches) in minibatches of ``batch_size`` (128) through
   the one loop (:func:`scintegrate.train.train_loop`), the KL weight ramping linearly over
   ``n_epochs_kl_warmup`` epochs, and scores the held-out cells' negative ELBO after every epoch;
3. sizes the run from the data: ``max_epochs = min(400, round(400 * 20,000 / n_cells))`` (scvi-tools' rule:
   8 million cells seen above 20,000 cells) unless given, and stops early once the held-out ELBO has not
   improved by ``rel_tol`` for ``patience`` epochs (default a tenth of ``max_epochs``, at least 5), but not
   before the KL warm-up has ended (with the default warm-up of 400 epochs the rule's epochs all run, as in
   scvi-tools; a shorter ``n_epochs_kl_warmup`` or a larger ``max_epochs`` lets the stopping rule end runs);
4. embeds every cell by the posterior mean.

Cells with no counts over the features are kept: their library size is 0, so their reconstruction term is 0
and their embedding is the encoder's output for an all-zero input (a warning says how many).

Example
-------
>>> import scintegrate as si
>>> from scintegrate.models import SCVI
>>> adata = si.datasets.simulate_counts(n_cells=300, n_genes=100, seed=0)
>>> SCVI(max_epochs=2, progress=False).fit(adata, batch_key="batch").embed().shape
(300, 10)
"""

from __future__ import annotations

import math
import warnings
import numpy as np
import scipy.sparse as sp

from .._device import seeded
from ._base import IntegrationModel

#: scvi-tools' epoch rule: 400 epochs up to 20,000 cells, then 8 million cells seen
EPOCH_CAP, EPOCH_DECAY_CELLS = 400, 20_000
#: Adam's epsilon (scvi-tools' and scArches' 0.01)
ADAM_EPS = 0.01


def default_max_epochs(n_cells: int) -> int:
    """scvi-tools' heuristic: ``min(400, round(400 * 20,000 / n_cells))``, at least 1.

    >>> default_max_epochs(2_000), default_max_epochs(100_000), default_max_epochs(5_000_000)
    (400, 80, 2)
    """
    return int(max(1, min(EPOCH_CAP, round(EPOCH_CAP * EPOCH_DECAY_CELLS / max(int(n_cells), 1)))))


def adam(parameters, *, lr: float, weight_decay: float):
    """Adam with scvi-tools' / scArches' epsilon 0.01, fused into one kernel per step (the same updates as the
    per-tensor loop, and faster: ``benchmarks/results/vae_design.md``)."""
    import torch

    return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay, eps=ADAM_EPS, fused=True)


def library_prior(X, codes, rows, n_conditions: int):
    """Mean and variance of log total counts per condition over ``rows`` (cells with counts), as scVI's prior of
    the learned library size (a condition without such cells gets mean 0, variance 1)."""
    totals = np.asarray(X[rows].sum(axis=1)).ravel()
    keep = totals > 0
    logs, c = np.log(totals[keep]), codes[rows][keep]
    mean, var = np.zeros(n_conditions), np.ones(n_conditions)
    for k in range(n_conditions):
        v = logs[c == k]
        if v.size:
            mean[k], var[k] = v.mean(), v.var() if v.size > 1 else 1.0
    return mean, var


def validation_split(n_cells: int, fraction: float, seed: int):
    """``(train, validation)`` cell indices: a seeded draw of ``round(fraction * n)`` cells held out (none when
    that is under 2 cells or would leave fewer than 2 for training)."""
    import torch

    from .._device import torch_generator

    n_val = int(round(float(fraction) * n_cells))
    if n_val < 2 or n_cells - n_val < 2:
        return np.arange(n_cells), np.arange(0)
    perm = torch.randperm(n_cells, generator=torch_generator(seed)).numpy()
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


class ConditionalVAEModel(IntegrationModel):
    """Base of the conditional VAE integrators (see the module docstring); not registered itself."""

    def _setup_vae(self, params: dict, *, seed, device, progress) -> None:
        for name in ("n_latent", "batch_size", "n_features"):
            if int(params[name]) < 1:
                raise ValueError(f"{name} must be a positive integer, got {params[name]}")
        if not 0.0 <= float(params["validation_fraction"]) < 1.0:
            raise ValueError(f"validation_fraction must lie in [0, 1), got {params['validation_fraction']}")
        if params["max_epochs"] is not None and int(params["max_epochs"]) < 1:
            raise ValueError(f"max_epochs must be a positive integer or None, got {params['max_epochs']}")
        self._setup(params, seed=seed, device=device, progress=progress)

    @property
    def embed_needs_batch(self) -> bool:  # the encoder reads the batch only where it is conditional
        return bool(self._module_kwargs().get("encode_conditions", False))

    def _module_kwargs(self) -> dict:
        """The :class:`~scintegrate.modules.vae.ConditionalVAE` arguments besides sizes of data, latent, likelihood."""
        raise NotImplementedError

    # ------------------------------------------------------------------ input
    def _values(self, data, features, normalized=None) -> sp.csr_matrix:
        """The values the network reads, as CSR float32: the counts of ``features`` (count likelihoods; the
        registry's input check has refused anything else), or their log-normalised values (Gaussian; counts are
        log-normalised unless ``normalized``, an AnnData of the same cells already log-normalised, is given)."""
        from .. import pp

        cols = data.columns(features)
        if self.params["likelihood"] == "gaussian" and data.is_counts:
            if normalized is None:
                normalized = data.to_anndata("batch")
                pp.log_normalize(normalized)
            return sp.csr_matrix(normalized.X[:, cols], dtype=np.float32)
        return sp.csr_matrix(data.X[:, cols] if sp.issparse(data.X) else np.asarray(data.X)[:, cols],
                             dtype=np.float32)

    def _fit(self, adata, data) -> None:
        from .. import pp

        p = self.params
        with self._stage("input"):
            work = data.to_anndata("batch")  # log-normalised in place (counts) for the feature selection
            features, how = pp.normalize_and_select(work, batch_key="batch", n_features=p["n_features"],
                                                    counts=data.is_counts)
            X = self._values(data, features, normalized=work)
            del work
        self.features_, self.feature_selection_ = [str(f) for f in features], how
        self.batches_ = [str(b) for b in data.batch_levels]
        if p["likelihood"] != "gaussian":
            empty = int(np.sum(np.diff(X.indptr) == 0))
            if empty:
                warnings.warn(f"{empty} cells have no counts over the {X.shape[1]} features; they are kept (library "
                              "size 0: no reconstruction term)", UserWarning, stacklevel=3)
        self.train_codes_ = data.batch.astype(np.int64)
        self._train_stages(X, self.train_codes_)
        with self._stage("embedding"):
            self.embedding_ = self._encode(X, self.train_codes_)

    # ------------------------------------------------------------------ training
    def _train_stages(self, X, codes) -> None:
        """Train the network on the prepared values (one stage; scANVI adds its semi-supervised stage)."""
        with self._stage("training"):
            self._train(X, codes)

    def _batches(self, X, codes, rows):
        import torch

        x = torch.from_numpy(X[rows].toarray()).to(self.device)
        return {"x": x, "condition": torch.from_numpy(codes[rows]).to(self.device)}

    def _train(self, X, codes) -> None:
        from ..nn import kl_warmup
        from ..train import PlateauStopper, UniformSampler, train_loop

        p = self.params
        n = X.shape[0]
        train, val = validation_split(n, p["validation_fraction"], self.seed)
        max_epochs = int(p["max_epochs"]) if p["max_epochs"] is not None else default_max_epochs(n)
        patience = int(p["patience"]) if p["patience"] is not None else max(5, math.ceil(max_epochs / 10))
        warmup = p["n_epochs_kl_warmup"]
        with seeded(self.seed):
            self.module = self._build_vae().to(self.device)
        if getattr(self.module, "library_encoder", None) is not None:  # the learned library's prior per batch
            self.module.set_library_prior(*library_prior(X, codes, train, len(self.batches_)))
        optimizer = adam(self.module.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        sampler = UniformSampler(train.size, batch_size=p["batch_size"], seed=self.seed)

        def make_batches(epoch):
            weight = kl_warmup(epoch, warmup)
            for idx in sampler.epoch(epoch):
                rows = train[idx.numpy()]
                if rows.size < 2 and train.size >= 2:  # batch norm needs two cells: a last minibatch of one cell
                    continue  # is skipped (a different random cell each epoch)
                yield {**self._batches(X, codes, rows), "kl_weight": weight}

        def validate(epoch):
            terms = {"reconstruction": 0.0, "kl": 0.0}
            for start in range(0, val.size, 4096):
                out = self.module.elbo_terms(self._batches(X, codes, val[start:start + 4096]))
                for key in terms:
                    terms[key] += float(out[key])
            return {"elbo": (terms["reconstruction"] + terms["kl"]) / val.size,
                    "reconstruction": terms["reconstruction"] / val.size}

        stopper = None
        if val.size:
            # only once the KL weight has reached 1: until then the objective changes every epoch, and a plateau
            # of the held-out ELBO is not convergence (stopping there cost 0.004-0.04 of the score, vae_design.md)
            min_epochs = int(math.ceil(warmup)) if warmup else 0
            stopper = PlateauStopper(patience=patience, rel_tol=p["rel_tol"], monitor="val_elbo",
                                     min_epochs=min_epochs)
        self.module.train()
        with seeded(self.seed + 1):  # the latent samples and dropout masks (global generator, restored after)
            self.history_ = train_loop(self.module, make_batches, optimizer, n_epochs=max_epochs, stopper=stopper,
                                       validate=validate if val.size else None, progress=self.progress,
                                       desc=type(self).__name__)
        self.module.eval()
        self.schedule_ = {"max_epochs": max_epochs, "epochs_used": self.history_.n_epochs, "patience": patience,
                          "n_train": int(train.size), "n_validation": int(val.size),
                          "steps_per_epoch": math.ceil(train.size / p["batch_size"])}

    def _encode(self, X, codes) -> np.ndarray:
        from ..train import map_chunks

        self.module.eval()

        def encode(rows):
            idx = np.arange(rows.start, rows.stop)
            b = self._batches(X, codes, idx)
            return self.module.encode(b["x"], b["condition"])
        return map_chunks(encode, X.shape[0]).cpu().numpy().astype(np.float32, copy=False)

    # ------------------------------------------------------------------ new cells, outputs
    def required_genes(self) -> list:
        return list(self.features_)

    def _embed_new(self, adata, data) -> np.ndarray:
        """The posterior mean of new cells of the training batches (a new batch needs scArches-style surgery)."""
        return self._encode(*self._new_values(data))

    def _new_values(self, data, *, need_batch: bool = False):
        """``(values, batch codes)`` of new cells; a batch not seen in training is refused where the network reads
        it (the encoder, or the decoder with ``need_batch``)."""
        X = self._values(data, self.features_)
        if data.batch is None:
            codes = np.zeros(X.shape[0], dtype=np.int64)  # the encoder does not read the batch
        else:
            names = np.asarray(data.batch_levels, dtype=str)[data.batch]
            unknown = sorted(set(names) - set(self.batches_))
            if unknown and (self.embed_needs_batch or need_batch):
                raise ValueError(f"batches {unknown[:5]} were not in training (known: {self.batches_[:5]}...); this "
                                 "model embeds cells of its training batches only")
            lookup = {b: i for i, b in enumerate(self.batches_)}
            codes = np.array([lookup.get(b, 0) for b in names], dtype=np.int64)
        return X, codes

    def _outputs(self) -> dict:
        return {"info": {"schedule": self.schedule_, "history": self.history_.to_dict(),
                         "features": np.asarray(self.features_, dtype=str)}}

    # ------------------------------------------------------------------ save / load
    def _fitted_state(self):
        state = {"schedule": self.schedule_, "history": self.history_.to_dict(),
                 "feature_selection": self.feature_selection_}
        return state, {"features": np.asarray(self.features_, dtype=str), "batches": np.asarray(self.batches_, dtype=str),
                       "train_codes": self.train_codes_}

    def _restore_state(self, state, arrays) -> None:
        from ..train import TrainingHistory

        self.features_, self.batches_ = arrays["features"].tolist(), arrays["batches"].tolist()
        self.train_codes_ = arrays["train_codes"]
        self.schedule_, self.feature_selection_ = state["schedule"], state["feature_selection"]
        h = state["history"]
        self.history_ = TrainingHistory(losses=h["losses"], stopped_early=h["stopped_early"],
                                        n_epochs=h["n_epochs"], reason=h["reason"])

    def _build_module(self):
        return self._build_vae()

    def _build_vae(self):
        """The untrained :class:`~scintegrate.modules.vae.ConditionalVAE` of these parameters and data sizes."""
        from ..modules.vae import ConditionalVAE

        p = self.params
        return ConditionalVAE(len(self.features_), len(self.batches_), n_latent=p["n_latent"],
                              likelihood=p["likelihood"], **self._module_kwargs())

