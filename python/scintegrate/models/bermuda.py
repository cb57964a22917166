"""BERMUDA: batch correction by transferring information between similar cell clusters.

Wang, Johnson & Huang (2019) "BERMUDA: a novel deep transfer learning method for single-cell RNA
sequencing batch correction reveals hidden high-resolution cellular subtypes", Genome Biology 20:165.

Pipeline of :meth:`BERMUDA.fit` (defaults from the paper and its code, txWang/BERMUDA):

1. features: Seurat-style highly variable genes across batches (``pp.select_integration_features``,
   2,000 genes; all genes when there are fewer, or for data that is not counts);
2. input: counts -> CPM -> log2(x+1) -> per-batch standardisation -> per-batch [0, 1] scaling
   (``log_cpm`` + ``bermuda_scaling_fit`` of ``models._bermuda_input``, ``scaling_scope="batch"`` as in the reference
   code); the log-CPM matrix stays sparse and the affine scaling is applied to each minibatch;
3. clusters: each batch separately, Seurat-style (log-normalise, HVGs, scale, 20 PCs, SNN graph,
   Louvain at resolution 0.6 as in BERMUDA's R script) via ``pp.find_clusters(batch_key=...)``,
   with k capped at a tenth of the batch for batches under 300 cells (``pp.cluster.per_batch_neighbors``);
   a batch of more than ``cluster_max_cells`` (5,000) cells is clustered on a random subsample
   and its other cells join the cluster centroid they correlate with best (for speed);
4. cluster similarity: MetaNeighborUS AUROCs (:func:`scintegrate.tools.metaneighbor_us`; exact up
   to 3,000 cells, the linear-cost ``fast_version`` above) and Eqs. 3-5
   (:func:`scintegrate.tools.match_clusters`, S_thr = 0.90);
5. training: autoencoder ``genes-200-20-200-genes`` (:class:`scintegrate.modules.bermuda.BermudaAE`);
   every step draws ``n_mb = 50`` cells from *each* cluster (clusters smaller than that are
   oversampled, as the paper's random oversampling does); loss = sum of per-cluster MSE +
   lambda * sum over similar pairs of multi-kernel MMD of the codes; Adam (lr 1e-3, L2 decay 5e-5),
   learning rate halved every ``lr_step`` epochs; lambda ramps per Eq. 9.

Epochs. An epoch is the paper's: ``floor(largest cluster / n_mb)`` steps (at least 1), so the
largest cluster is seen once. The paper trains a fixed 2,000 epochs on a GPU (~80,000 steps on its
data); here the length is a step budget that follows the data (``models._bermuda_steps.data_sized_steps``):
every step shows ``K * n_mb`` cells (K clusters), and the budget is the number of steps that shows
``passes * n_cells`` cells, with ``passes = min(400, 8e6 / n_cells)`` (scvi-tools' rule for autoencoders on
single-cell data: 400 passes up to 20,000 cells, 8 million cells seen above), clipped to [200, 2000]
steps. A fixed 2,000 steps made a 350-cell set with 18 clusters see each cell ~5,000 times (minutes of
training); ``max_steps=`` sets a budget by hand. ``max_epochs = clip(ceil(max_steps / steps_per_epoch),
1, 2000)``. Lambda ramps over the whole budget as in the paper (Eq. 9 with ``n_p = max_epochs``); the
learning rate is halved every ``lr_step = 200`` epochs (the paper's value). Training stops early on a
plateau of the total loss (``train.PlateauStopper``, relative tolerance 1e-3, patience ~5% of the step
budget, ``ceil(0.05 * max_steps / steps_per_epoch)`` epochs) but never before ``min_epochs = max_epochs /
2``, where lambda has reached 0.987. The epochs used are recorded (``history_``, ``params["epochs_used"]``).

Code on a sphere (``code_norm="auto"``, a deliberate deviation from the published loss): every cell's code is
scaled to the norm ``sqrt(code_dim)`` before the decoder and the MMD. With the published fixed kernel widths
the MMD is lowered by shrinking every matched cluster's codes while unmatched clusters keep their scale, so
one small unmatched cluster ran 15x the cells' spread away on pbmc_10x_chemistries and broke k-means and every
other distance-based use of the code; on the sphere no shrinking pays, and unmatched clusters stay apart at the
scale of the rest (see :mod:`scintegrate.modules.bermuda`). ``"auto"`` is ``"sphere"`` for ``code_dim >= 3``
and the published ``"none"`` below (a circle cannot hold the 2-D toy's structure); ``"none"`` and
``"matched"`` can be chosen (``benchmarks/results/bermuda_design.md``).

Per-batch clusters come from ``pp.find_clusters`` (Seurat 4.3 flavour: vst HVGs); BERMUDA's R
script ran Seurat 2 (``FindVariableGenes``), whose k = 30 neighbours and resolution 0.6 are kept.

Scaling scope. The reference runs ``minmax_scale`` on each data set, which cancels the per-batch
standardisation exactly: with log data (minimum 0) each gene is only divided by its maximum in the
batch, with no shift. ``scaling_scope="global"`` keeps the standardisation and takes one [0, 1] range
over all cells: it removes more batch variance where batches hold the same types, but mixes
batch-specific types where compositions differ (BERMUDA's use case), so the reference's per-batch range
stays the default. Measurements behind this, and where BERMUDA trails Harmony (batches too small to
cluster; labels coarser than the clusters it keeps apart): ``benchmarks/results/bermuda_design.md``.

Deviations from the reference code, on purpose: Adam keeps its state across epochs (the reference
builds a new optimiser every epoch); minibatch indices come from the package's seeding rule (one
generator per epoch, :mod:`scintegrate.train.samplers`); all clusters go through the network in one
forward pass (the same loss as one pass per cluster).

Example
-------
>>> import scintegrate as si
>>> from scintegrate.models import BERMUDA
>>> adata = si.datasets.simulate_counts(n_cells=400, n_genes=200, seed=0)
>>> model = BERMUDA(max_steps=30, progress=False).fit(adata, batch_key="batch")  # doctest: +SKIP
>>> model.embed().shape  # doctest: +SKIP
(400, 20)
"""

from __future__ import annotations

import math
import warnings
from typing import Optional, Sequence

import numpy as np

from .._device import seeded
from ..tools import rank_standardize
from ._base import IntegrationModel
from ..modules.bermuda import CODE_NORMS
from ._bermuda_input import SCOPES, BermudaScaling, input_for_new_data, prepare_input
from ._bermuda_steps import (OUTLIER_TIMES, cluster_batches, outlying_clusters, select_features,
                             similar_cluster_pairs, training_schedule)


class BERMUDA(IntegrationModel):
    """BERMUDA batch correction (see the module docstring for the pipeline and defaults).

    Parameters
    ----------
    n_features
        Highly variable genes to use (paper: union of Seurat's per-batch HVGs).
    features
        Explicit gene names to use instead of HVG selection.
    resolution, n_neighbors, n_pcs
        Per-batch Seurat clustering (paper: resolution 0.6, 20 PCs; Seurat 2's k = 30, capped at a
        tenth of the cells in small batches).
    cluster_key
        ``obs`` column with given clusters (used per batch instead of clustering).
    cluster_max_cells
        Batches larger than this are clustered on a random subsample of this size and the other
        cells assigned to the best-correlated cluster centroid (``None``: always all cells). For
        speed on large data: Seurat's chain is the costliest stage after training, and Louvain
        splits big batches into more clusters, each adding ``n_mb`` cells to every step.
    similarity_threshold
        S_thr in [0, 1] (paper: 0.90; recommends 0.85-0.90). A type that Louvain splits in one batch
        scores a lower AUROC against its match in another (each half's rest holds the other half) and
        may then stay unaligned at 0.90 (``benchmarks/results/bermuda_design.md``). Lower S_thr to
        0.85 when ``cluster_pairs_`` misses a pair you expect.
    metaneighbor_method
        ``"auto"``, ``"exact"`` or ``"fast"`` (see :func:`scintegrate.tools.metaneighbor_us`).
    scaling_scope
        ``"batch"`` (the reference: each gene scaled to [0, 1] within each batch) or ``"global"``
        (per-batch standardisation, then one [0, 1] range; only for batches of similar composition).
    hidden, code_dim
        Autoencoder sizes (200, 20; the 2-D Gaussian toy uses 20, 2).
    n_mb
        Cells drawn from each cluster per step (50).
    lr, l2_decay, lam
        Adam learning rate (1e-3), weight decay (5e-5) and the MMD weight's maximum (gamma = 1).
    code_norm
        ``"auto"`` (default: ``"sphere"`` for ``code_dim >= 3``, else ``"none"``), ``"sphere"`` (every code
        scaled to norm sqrt(code_dim): unmatched clusters stay at the scale of the rest), ``"none"`` (the
        paper's network) or ``"matched"`` (codes standardised by the matched clusters' statistics; mixes
        batch-specific types more on the removal simulations; ``benchmarks/results/bermuda_design.md``).
    max_steps, max_epochs, min_epochs, lr_step, patience, rel_tol
        Schedule; ``max_steps=None`` sizes the step budget from the data, ``None`` derives ``max_epochs`` /
        ``min_epochs`` from ``max_steps`` (module docstring); ``lr_step=None`` is the paper's 200 epochs;
        ``patience`` and ``rel_tol`` configure the plateau stop (``patience=None``: ``ceil(0.05 * max_steps / steps_per_epoch)`` epochs).
    seed, device, progress
        Seed of clustering, initialisation and sampling; ``"auto" | "cpu" | "cuda"``; tqdm bar.

    Fitted attributes: ``embedding_``, ``features_``, ``batches_``, ``scaling_``, ``cluster_names_``,
    ``cluster_labels_``, ``similarity_``, ``matches_``, ``cluster_pairs_``, ``schedule_``, ``history_``,
    ``timings_``.
    """

    method = "bermuda"
    embed_needs_batch = True

    def __init__(
        self,
        *,
        n_features: int = 2000,
        features: Optional[Sequence[str]] = None,
        resolution: float = 0.6,
        n_neighbors: int = 30,
        n_pcs: int = 20,
        cluster_key: Optional[str] = None,
        cluster_max_cells: Optional[int] = 5000,
        similarity_threshold: float = 0.90,
        metaneighbor_method: str = "auto",
        scaling_scope: str = "batch",
        hidden: int = 200,
        code_dim: int = 20,
        n_mb: int = 50,
        lr: float = 1e-3,
        l2_decay: float = 5e-5,
        lam: float = 1.0,
        code_norm: str = "auto",
        max_steps: Optional[int] = None,
        max_epochs: Optional[int] = None,
        min_epochs: Optional[int] = None,
        lr_step: Optional[float] = None,
        patience: Optional[int] = None,
        rel_tol: float = 1e-3,
        seed: int = 0,
        device: str = "auto",
        progress: bool = True,
    ):
        if code_norm not in ("auto",) + CODE_NORMS:
            raise ValueError(f"code_norm must be one of {('auto',) + CODE_NORMS}, got {code_norm!r}")
        if code_norm == "auto":  # a circle cannot hold the 2-D toy's structure: the published network there
            code_norm = "sphere" if int(code_dim) >= 3 else "none"
        if scaling_scope not in SCOPES:
            raise ValueError(f"scaling_scope must be one of {SCOPES}, got {scaling_scope!r}")
        if not 0.0 <= float(similarity_threshold) <= 1.0:
            raise ValueError(f"similarity_threshold (S_thr) must lie in [0, 1], got {similarity_threshold}")
        for name, value in (("n_mb", n_mb), ("hidden", hidden), ("code_dim", code_dim), ("max_steps", max_steps)):
            if value is not None and int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        params = dict(
            n_features=int(n_features), features=None if features is None else [str(f) for f in features],
            resolution=float(resolution), n_neighbors=int(n_neighbors), n_pcs=int(n_pcs), cluster_key=cluster_key,
            cluster_max_cells=None if cluster_max_cells is None else int(cluster_max_cells),
            similarity_threshold=float(similarity_threshold), metaneighbor_method=metaneighbor_method,
            scaling_scope=scaling_scope,
            hidden=int(hidden), code_dim=int(code_dim), n_mb=int(n_mb), lr=float(lr), l2_decay=float(l2_decay),
            lam=float(lam), code_norm=code_norm, max_steps=None if max_steps is None else int(max_steps),
            max_epochs=max_epochs, min_epochs=min_epochs,
            lr_step=lr_step, patience=patience, rel_tol=float(rel_tol),
        )
        self._setup(params, seed=seed, device=device, progress=progress)

    # ------------------------------------------------------------------ fit
    def _fit(self, adata, data) -> None:
        """Cluster each batch, match clusters across batches, train the autoencoder."""
        p, batch_key = self.params, self.batch_key_
        counts = data.is_counts
        with self._stage("preprocessing"):
            features = select_features(adata, data, batch_key=batch_key, n_features=p["n_features"],
                                       features=p["features"])
            X_log, scaling = prepare_input(data, features, p["scaling_scope"])
            ranked = rank_standardize(X_log)  # gene ranks per cell: MetaNeighbor and cluster assignment
        with self._stage("clustering"):
            clusters = cluster_batches(adata, data, batch_key=batch_key, params=p, ranked=ranked)
        with self._stage("metaneighbor"):
            batch_names = np.asarray(data.batch_levels, dtype=object)[data.batch].astype(str)
            names, cluster_codes, similarity, matches, pairs = similar_cluster_pairs(
                X_log, batch_names, clusters, p["similarity_threshold"], p["metaneighbor_method"], ranked=ranked)
            del ranked
        self.features_, self.batches_, self.scaling_ = list(features), list(data.batch_levels), scaling
        self.cluster_names_, self.similarity_, self.matches_ = names, similarity, matches
        self.cluster_pairs_ = [(names[i], names[j]) for i, j in pairs]
        self.cluster_labels_ = np.asarray(names, dtype=object)[cluster_codes]
        self.input_was_counts_ = bool(counts)
        with self._stage("training"):
            self._train(X_log, data.batch, cluster_codes, len(names), pairs)
        self.embedding_ = self._encode(X_log, data.batch)
        self.outlying_clusters_ = outlying_clusters(self.embedding_, self.cluster_labels_)
        if self.outlying_clusters_:
            matched = {c for pair in self.cluster_pairs_ for c in pair}
            worst = max(self.outlying_clusters_, key=self.outlying_clusters_.get)
            advice = ("" if self.params["code_norm"] == "sphere"
                      else "; code_norm='sphere' keeps unmatched clusters at the scale of the rest")
            warnings.warn(
                f"BERMUDA's code puts cluster {worst!r} ({'matched' if worst in matched else 'matched to no other'}"
                f") {self.outlying_clusters_[worst]:.0f}x the cells' median spread from the median code "
                f"({len(self.outlying_clusters_)} cluster(s) beyond {OUTLIER_TIMES:g}x): neighbour graphs and UMAP "
                "are fine, but distance-based uses (k-means, PCA of the code, radius searches) are dominated by "
                f"it{advice} "
                "(benchmarks/results/bermuda_design.md)", UserWarning, stacklevel=3)

    def _train(self, X_log, batch_codes, cluster_codes, n_clusters, pairs) -> None:
        import torch

        from ..modules.bermuda import BermudaAE, lambda_ramp
        from ..train import ClusterBalancedSampler, PlateauStopper, train_loop

        p = self.params
        sizes = np.bincount(cluster_codes, minlength=n_clusters)
        sched = training_schedule(int(sizes.max()), p, n_cells=int(sizes.sum()), n_clusters=n_clusters)
        with seeded(self.seed):
            self.module = BermudaAE(X_log.shape[1], p["hidden"], p["code_dim"], p["code_norm"]).to(self.device)
        self.module.set_cluster_pairs(n_clusters, torch.as_tensor(np.asarray(pairs, dtype=np.int64).reshape(-1, 2)))
        optimizer = torch.optim.Adam(self.module.parameters(), lr=p["lr"], weight_decay=p["l2_decay"])
        lr_step = sched["lr_step"]
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda t: 0.5 ** math.floor((t + 1) / lr_step))  # paper: epochs count from 1
        sampler = ClusterBalancedSampler(cluster_codes, n_clusters, p["n_mb"], sched["steps_per_epoch"], self.seed)

        def make_batches(epoch):
            lam = lambda_ramp(epoch + 1, sched["max_epochs"], p["lam"])
            for idx in sampler.epoch(epoch):
                x = self.scaling_.apply(X_log[idx], batch_codes[idx])
                yield {"x": torch.from_numpy(x).to(self.device), "lam": lam}

        self.module.train()
        stopper = PlateauStopper(patience=sched["patience"], rel_tol=p["rel_tol"], min_epochs=sched["min_epochs"])
        self.history_ = train_loop(self.module, make_batches, optimizer, n_epochs=sched["max_epochs"],
                                   scheduler=scheduler, stopper=stopper, progress=self.progress, desc="BERMUDA")
        self.module.eval()
        self.schedule_ = sched

    # ------------------------------------------------------------------ embed
    def required_genes(self) -> list:
        return list(self.features_)

    def _embed_new(self, adata, data) -> np.ndarray:
        """Codes of new cells: the training genes and a batch column are needed; a batch seen in training is
        scaled with that batch's fitted coefficients, a new batch with coefficients fitted on its own cells
        (BERMUDA scales every data set separately)."""
        X_log, codes, scaling = input_for_new_data(data, self.features_, self.scaling_)
        return self._encode(X_log, codes, scaling)

    def _encode(self, X_log, codes, scaling=None) -> np.ndarray:
        import torch

        from ..train import map_chunks

        scaling = self.scaling_ if scaling is None else scaling
        self.module.eval()

        def encode(rows):
            return self.module.encode(torch.from_numpy(scaling.apply(X_log[rows], codes[rows])).to(self.device))
        return map_chunks(encode, X_log.shape[0]).cpu().numpy().astype(np.float32, copy=False)

    def _outputs(self) -> dict:
        import pandas as pd

        return {"obs": {"bermuda_cluster": pd.Categorical(self.cluster_labels_.astype(str))},
                "info": {"cluster_names": np.asarray(self.cluster_names_, dtype=str), "similarity": self.similarity_,
                         "matches": self.matches_,
                         "cluster_pairs": np.asarray(self.cluster_pairs_, dtype=str).reshape(-1, 2),
                         "schedule": self.schedule_, "history": self.history_.to_dict(),
                         "epochs_used": int(self.history_.n_epochs),
                         "outlying_clusters": np.asarray(list(self.outlying_clusters_), dtype=str),
                         "outlying_distances": np.asarray(list(self.outlying_clusters_.values()), dtype=float)}}

    # ------------------------------------------------------------------ save / load
    def _fitted_state(self):
        s = self.scaling_
        state = {"schedule": self.schedule_, "history": self.history_.to_dict() if self.history_ else None,
                 "input_was_counts": self.input_was_counts_, "outlying_clusters": self.outlying_clusters_}
        arrays = {"features": np.asarray(self.features_, dtype=str), "batches": np.asarray(self.batches_, dtype=str),
                  "scaling_mean": s.mean, "scaling_sd": s.sd, "scaling_zmin": s.zmin, "scaling_zmax": s.zmax,
                  "cluster_names": np.asarray(self.cluster_names_, dtype=str), "similarity": self.similarity_,
                  "matches": self.matches_, "cluster_labels": np.asarray(self.cluster_labels_, dtype=str)}
        return state, arrays

    def _build_module(self):
        from ..modules.bermuda import BermudaAE

        # models saved before code_norm existed were trained with the published network
        return BermudaAE(len(self.features_), self.params["hidden"], self.params["code_dim"],
                         self.params.get("code_norm", "none"))

    def _restore_state(self, state, arrays) -> None:
        from ..train import TrainingHistory

        a = arrays
        self.features_, self.batches_ = a["features"].tolist(), a["batches"].tolist()
        self.scaling_ = BermudaScaling(batches=self.batches_, mean=a["scaling_mean"], sd=a["scaling_sd"],
                                       zmin=a["scaling_zmin"], zmax=a["scaling_zmax"],
                                       scope=self.params.get("scaling_scope", "batch"))
        self.cluster_names_ = a["cluster_names"].tolist()
        self.similarity_, self.matches_ = a["similarity"], a["matches"]
        i, j = np.nonzero(np.triu(self.matches_, k=1))
        self.cluster_pairs_ = [(self.cluster_names_[x], self.cluster_names_[y]) for x, y in zip(i, j)]
        self.cluster_labels_ = a["cluster_labels"].astype(object)
        self.schedule_, self.input_was_counts_ = state["schedule"], state["input_was_counts"]
        self.outlying_clusters_ = dict(state.get("outlying_clusters", {}))
        self.history_ = TrainingHistory(**state["history"]) if state.get("history") else None
