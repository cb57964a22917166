"""scANVI (Xu et al. 2021, Mol Syst Biol): scVI, then semi-supervised training with cell-type labels.

Two stages, as scvi-tools' ``SCANVI.from_scvi_model``:

1. scVI (:class:`scintegrate.models.SCVI`, its defaults and schedule) on the counts;
2. :class:`scintegrate.modules.scanvi.SCANVAE` on top of the trained scVI network: a classifier q(y | z1) and the
   z2 | z1, y layer; every training cell is in the ELBO (labelled cells with their label, unlabelled ones
   marginalised over q(y | z1)), and each step adds ``classification_ratio`` (50) times the classifier's
   cross-entropy on a minibatch of labelled cells. Epochs: ``min(10, max(2, round(m / 3)))`` with ``m`` scVI's
   epoch rule for the data (scvi-tools'), the KL weight ramping again from 0 over ``n_epochs_kl_warmup``.

Labels come from ``adata.obs[labels_key]``; cells whose label is ``unlabeled_category`` or missing, and every
cell outside ``labeled_batches`` (when given), are unlabelled. The classifier predicts the categories that have
labelled cells; a category seen only among unlabelled cells cannot be predicted (a warning names it).
Outputs: ``obsm["X_scanvi"]`` (z1's posterior mean), ``obs["scanvi_prediction"]`` and ``obs["scanvi_confidence"]``
(the largest class probability), ``obsm["scanvi_probabilities"]`` (cells x categories; their names in the run
record).

Example
-------
>>> import scintegrate as si
>>> from scintegrate.models import SCANVI
>>> adata = si.datasets.simulate_counts(n_cells=300, n_genes=100, seed=0)
>>> model = SCANVI(max_epochs=2, scanvi_max_epochs=2, progress=False).fit(adata, batch_key="batch")
>>> model.embed().shape, model.predict().shape[0]
((300, 10), 300)
"""

from __future__ import annotations

import warnings
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from .._device import seeded
from ._vae_base import adam, default_max_epochs, validation_split
from .scvi import SCVI

#: scvi-tools' epochs of the semi-supervised stage after a pre-trained scVI: min(10, max(2, round(m / 3)))
SCANVI_EPOCH_CAP = 10


def scanvi_max_epochs(n_cells: int) -> int:
    """Epochs of scANVI's stage after scVI (scvi-tools' rule for a pre-trained model).

    >>> scanvi_max_epochs(2_000), scanvi_max_epochs(100_000), scanvi_max_epochs(2_000_000)
    (10, 10, 2)
    """
    return int(min(SCANVI_EPOCH_CAP, max(2, round(default_max_epochs(n_cells) / 3.0))))


class SCANVI(SCVI):
    """scANVI integrator and label transfer (counts and a labels column in; see the module docstring).

    Parameters
    ----------
    labels_key
        ``obs`` column of cell-type labels (``"cell_type"``).
    unlabeled_category
        The label of unlabelled cells (``"Unknown"``); missing values are unlabelled too.
    labeled_batches
        Batches whose labels are used (``None``: all); the labels of other batches are ignored.
    classification_ratio
        Weight of the classifier's cross-entropy (50, scvi-tools' default).
    scanvi_max_epochs
        Epochs of the semi-supervised stage (``None``: scvi-tools' rule, at most 10).
    marginalize_labelled
        Marginalise the label of labelled cells too in the ELBO (scvi-tools 1.4's loss; default ``False``: the
        paper's, with the observed label).
    Others
        As :class:`scintegrate.models.SCVI` (its stage uses them unchanged).
    """

    method = "scanvi"

    def __init__(self, *, labels_key: str = "cell_type", unlabeled_category: str = "Unknown",
                 labeled_batches: Optional[Sequence[str]] = None, classification_ratio: float = 50.0,
                 scanvi_max_epochs: Optional[int] = None, marginalize_labelled: bool = False, **scvi_params):
        super().__init__(**scvi_params)
        if not isinstance(labels_key, str) or not labels_key:
            raise ValueError(f"labels_key must name an obs column, got {labels_key!r}")
        if float(classification_ratio) < 0:
            raise ValueError(f"classification_ratio must be >= 0, got {classification_ratio}")
        if scanvi_max_epochs is not None and int(scanvi_max_epochs) < 1:
            raise ValueError(f"scanvi_max_epochs must be a positive integer or None, got {scanvi_max_epochs}")
        if isinstance(labeled_batches, str):
            labeled_batches = [labeled_batches]
        self.params.update(labels_key=labels_key, unlabeled_category=str(unlabeled_category),
                           labeled_batches=None if labeled_batches is None else [str(b) for b in labeled_batches],
                           classification_ratio=float(classification_ratio),
                           scanvi_max_epochs=None if scanvi_max_epochs is None else int(scanvi_max_epochs),
                           marginalize_labelled=bool(marginalize_labelled))

    # ------------------------------------------------------------------ labels
    def _label_codes(self, adata, data) -> np.ndarray:
        """Integer label per cell (-1: unlabelled); sets ``labels_`` (the categories the classifier predicts)."""
        p = self.params
        key = p["labels_key"]
        if key not in adata.obs.columns:
            raise KeyError(f"labels column {key!r} not found in adata.obs (scANVI needs cell-type labels; pass "
                           "labels_key=, with unlabelled cells marked by unlabeled_category)")
        column = adata.obs[key]
        values = column.astype(object).to_numpy()
        missing = pd.isna(values)
        names = np.where(missing, p["unlabeled_category"], values).astype(str)
        unlabelled = missing | (names == p["unlabeled_category"])
        if p["labeled_batches"] is not None:
            levels = [str(b) for b in data.batch_levels]
            unknown = sorted(set(p["labeled_batches"]) - set(levels))
            if unknown:
                raise ValueError(f"labeled_batches {unknown[:5]} are not batches of the data (batches: {levels[:5]}"
                                 f"{'...' if len(levels) > 5 else ''})")
            batch_names = np.asarray(levels, dtype=str)[data.batch]
            hidden = ~np.isin(batch_names, p["labeled_batches"])
        else:
            hidden = np.zeros(names.size, dtype=bool)
        labelled = ~unlabelled & ~hidden
        if not labelled.any():
            raise ValueError(f"no cell has a label in {key!r} (every label is {p['unlabeled_category']!r}, missing "
                             "or outside labeled_batches); scANVI needs some labelled cells (method='scvi' needs none)")
        if hasattr(column, "cat"):
            order = [str(c) for c in column.cat.categories]
        else:
            order = sorted(set(names[~unlabelled]))
        seen, hidden_only = set(names[labelled]), set(names[~unlabelled & hidden])
        self.labels_ = [c for c in order if c in seen]
        unseen = [c for c in order if c in hidden_only and c not in seen]
        if unseen:
            warnings.warn(f"label categories {unseen[:5]} occur only among unlabelled cells (outside "
                          "labeled_batches); scANVI cannot predict them", UserWarning, stacklevel=4)
        codes = pd.Categorical(names, categories=self.labels_).codes.astype(np.int64)
        codes[~labelled] = -1
        return codes

    def _fit(self, adata, data) -> None:
        self.label_codes_ = self._label_codes(adata, data)  # before any training: a bad column fails at once
        super()._fit(adata, data)
        self.probabilities_ = self._probabilities(self.embedding_)  # the classifier on the embedding just made

    # ------------------------------------------------------------------ training
    def _train_stages(self, X, codes) -> None:
        super()._train_stages(X, codes)  # scVI
        with self._stage("scanvi"):
            self._train_scanvi(X, codes, self.label_codes_)

    def _train_scanvi(self, X, codes, labels) -> None:
        import torch

        from ..nn import kl_warmup
        from ..train import UniformSampler, train_loop

        p = self.params
        n = X.shape[0]
        train, val = validation_split(n, p["validation_fraction"], self.seed)  # scVI's split
        epochs = p["scanvi_max_epochs"] or scanvi_max_epochs(n)
        with seeded(self.seed + 2):
            self.module = self._wrap(self.module).to(self.device)
        optimizer = adam(self.module.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        labelled = train[labels[train] >= 0]
        if labelled.size == 0:  # every labelled cell was held out: train on them all
            labelled = np.flatnonzero(labels >= 0)
        sampler = UniformSampler(train.size, batch_size=p["batch_size"], seed=self.seed + 2)
        label_sampler = UniformSampler(labelled.size, batch_size=p["batch_size"], seed=self.seed + 3)
        label_t = torch.from_numpy(labels)

        def with_labels(rows):
            return {**self._batches(X, codes, rows), "label": label_t[rows].to(self.device)}

        def make_batches(epoch):
            weight = kl_warmup(epoch, p["n_epochs_kl_warmup"])
            main = sampler.epoch(epoch)
            stream = []  # labelled minibatches, cycled to the number of main ones (scvi-tools' loader)
            while len(stream) < len(main):
                stream += label_sampler.epoch(epoch * 1000 + len(stream))
            for idx, lab in zip(main, stream):
                rows = train[idx.numpy()]
                if rows.size < 2 and train.size >= 2:  # batch norm needs two cells (see the scVI stage)
                    continue
                lab_rows = labelled[lab.numpy()]
                if lab_rows.size < 2:  # a last labelled minibatch of one cell: pair it with another labelled cell
                    lab_rows = np.append(lab_rows, labelled[(np.searchsorted(labelled, lab_rows[0]) + 1)
                                                            % labelled.size])
                yield {**with_labels(rows), "kl_weight": weight, "labelled": with_labels(lab_rows),
                       "classification_ratio": p["classification_ratio"]}

        val_labelled = val[labels[val] >= 0] if val.size else val

        def validate(epoch):
            out = {}
            if val_labelled.size:
                pred = self._probabilities(self._encode(X[val_labelled], codes[val_labelled])).argmax(1)
                out["accuracy"] = float(np.mean(pred == labels[val_labelled]))
            return out

        self.module.train()
        with seeded(self.seed + 4):
            self.scanvi_history_ = train_loop(self.module, make_batches, optimizer, n_epochs=epochs,
                                              validate=validate if val_labelled.size else None,
                                              progress=self.progress, desc="scANVI")
        self.module.eval()
        self.schedule_["scanvi_epochs"] = int(epochs)
        self.n_labelled_ = int(np.sum(labels >= 0))

    def _wrap(self, vae):
        from ..modules.scanvi import SCANVAE

        p = self.params
        return SCANVAE(vae, len(self.labels_), hidden=[p["n_hidden"]] * p["n_layers"], dropout=p["dropout"],
                       norm="batch", marginalize_labelled=p["marginalize_labelled"])

    # ------------------------------------------------------------------ predictions
    def _probabilities(self, Z) -> np.ndarray:
        """q(y | z1) at the posterior means ``Z`` (cells x n_latent): float32, one column per category."""
        import torch

        from ..train import map_chunks

        self.module.eval()
        z = torch.as_tensor(Z, device=self.device)
        out = map_chunks(lambda rows: torch.softmax(self.module.classifier(z[rows]), dim=-1), z.shape[0])
        return out.cpu().numpy().astype(np.float32)

    def predict(self, adata=None, *, soft: bool = False, batch_key: Optional[str] = None,
                layer: Optional[str] = None):
        """Predicted labels (a ``pd.Series`` per cell) or, with ``soft=True``, class probabilities (a DataFrame,
        one column per category) of the training cells (``adata=None``) or of new cells of the same genes."""
        self._check_fitted()
        if adata is None:
            probs = self.probabilities_
        else:
            adata, data = self._new_cells(adata, batch_key=batch_key, layer=layer)
            probs = self._probabilities(self._encode(*self._new_values(data)))
        index = None if adata is None else adata.obs_names
        frame = pd.DataFrame(probs, columns=self.labels_, index=index)
        if soft:
            return frame
        return pd.Series(pd.Categorical(np.asarray(self.labels_)[probs.argmax(1)], categories=self.labels_),
                         index=index, name="scanvi_prediction")

    def _outputs(self) -> dict:
        out = super()._outputs()
        probs = self.probabilities_
        best = probs.argmax(1)
        out["obs"] = {"scanvi_prediction": pd.Categorical(np.asarray(self.labels_)[best], categories=self.labels_),
                      "scanvi_confidence": probs[np.arange(probs.shape[0]), best].astype(np.float32)}
        out["obsm"] = {"scanvi_probabilities": probs}
        out["info"].update(labels=np.asarray(self.labels_, dtype=str), n_labelled=self.n_labelled_,
                           scanvi_history=self.scanvi_history_.to_dict())
        return out

    # ------------------------------------------------------------------ save / load
    def _fitted_state(self):
        state, arrays = super()._fitted_state()
        state = {**state, "scanvi_history": self.scanvi_history_.to_dict(), "n_labelled": self.n_labelled_}
        return state, {**arrays, "labels": np.asarray(self.labels_, dtype=str), "label_codes": self.label_codes_,
                       "probabilities": self.probabilities_}

    def _restore_state(self, state, arrays) -> None:
        from ..train import TrainingHistory

        super()._restore_state(state, arrays)
        self.labels_, self.label_codes_ = arrays["labels"].tolist(), arrays["label_codes"]
        self.probabilities_, self.n_labelled_ = arrays["probabilities"], int(state["n_labelled"])
        h = state["scanvi_history"]
        self.scanvi_history_ = TrainingHistory(losses=h["losses"], stopped_early=h["stopped_early"],
                                               n_epochs=h["n_epochs"], reason=h["reason"])

    def _build_module(self):
        return self._wrap(self._build_vae())
