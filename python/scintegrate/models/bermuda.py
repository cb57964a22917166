"""BERMUDA: batch correction by transferring information between similar cell clusters.

Wang, Johnson & Huang (2019) "BERMUDA: a novel deep transfer learning method for single-cell RNA
sequencing batch correction reveals hidden high-resolution cellular subtypes", Genome Biology 20:165.

Pipeline of :meth:`BERMUDA.fit` (defaults from the paper and its code, txWang/BERMUDA):

1. features: Seurat-style highly variable genes across batches (``pp.select_integration_features``,
   2,000 genes; all genes when there are fewer, or for data that is not counts);
2. input: counts -> CPM -> log2(x+1) -> per-batch standardisation -> per-batch [0, 1] scaling
   (``pp.log_cpm`` + ``pp.bermuda_scaling_fit``, ``scaling_scope="batch"`` as in the reference
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
data); here the length is set by a step budget instead: ``max_epochs = clip(ceil(max_steps /
steps_per_epoch), 1, 2000)`` with ``max_steps = 2,000``. Lambda ramps over the whole budget as in
the paper (Eq. 9 with ``n_p = max_epochs``); the learning rate is halved every ``lr_step = 200``
epochs (the paper's value: on large data the budget ends before the first halving, on data with
one step per epoch the schedule is exactly the paper's). Training stops early on a plateau of the
total loss (``train.PlateauStopper``, relative tolerance 1e-3, patience ~5% of the step budget,
``ceil(0.05 * max_steps / steps_per_epoch)`` epochs) but never before ``min_epochs = max_epochs /
2``, where lambda has reached 0.987. The epochs used are recorded (``history_``,
``params["epochs_used"]``). Compressing the paper's *proportional* learning-rate decay
(``max_epochs / 10``) into this budget was tried and rejected: the rate decays before the
autoencoder has learned its codes, which then shrink under the MMD term.

Per-batch clusters come from ``pp.find_clusters`` (Seurat 4.3 flavour: vst HVGs); BERMUDA's R
script ran Seurat 2 (``FindVariableGenes``), whose k = 30 neighbours and resolution 0.6 are kept.

Scaling scope. The reference runs ``minmax_scale`` on each data set, which cancels the per-batch
standardisation exactly: with log data (minimum 0) each gene is only divided by its maximum in the
batch, with no shift. ``scaling_scope="global"`` keeps the standardisation (per-batch centring) and
takes one [0, 1] range over all cells. It removes more batch variance where batches hold the same
types (scIB PCR comparison on the shared pancreas set 0.000 -> 0.804, Kang 0.000 -> 0.246; overall
pancreas 0.576 -> 0.652, Kang 0.828 -> 0.833, 10x 0.794 -> 0.817), but centring a batch on its own
mean shifts cells whenever the batches' compositions differ, which is BERMUDA's use case: on the
removal2 count simulation the batch-specific types then mixed with the others (entropy score 0.69
instead of < 0.1). So the reference's per-batch range stays the default.

Where it trails Harmony (``benchmarks/bermuda_paper.py``, scIB overall on the shared real sets).
BERMUDA leans on per-batch clusters, so it needs batches large enough to cluster: on the pancreas
subsample (6 donors of 23-116 cells) the per-batch clusters are impure (even k-means with the true
number of types on a batch's PCs gives ARI ~0.4 on the 116-cell donor), impure clusters match
nothing or the wrong thing, and Harmony, which needs no clusters, wins (0.666 vs 0.576). On the 10x
chemistries set BERMUDA keeps cytotoxic NK/CD8 cells (GZMB, FCGR3A) apart from CD4 T cells and a
platelet population (PF4; present in two of the three batches) apart from both, where the labels
say "T/NK cells"; scIB's NMI/ARI count that as lost biology (NMI 0.745 vs Harmony's 0.902).

Deviations from the reference code, on purpose: Adam keeps its state across epochs (the reference
builds a new optimiser every epoch); minibatch indices come from a seeded ``torch.Generator``; all
clusters go through the network in one forward pass (the same loss as one pass per cluster).

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
import time
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._device import resolve_device, seeded, torch_generator
from .._validation import check_adata, get_matrix, is_count_matrix
from ..tools import rank_standardize
from ._base import SavableModel
from ._bermuda_steps import cluster_batches, select_features, similar_cluster_pairs, training_schedule



class BERMUDA(SavableModel):
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
        scores a lower AUROC against its match in another (each half's rest holds the other half):
        0.88 on one of 10 removal2 count simulations, which then stays unaligned at 0.90. Lower S_thr
        to 0.85 when ``cluster_pairs_`` misses a pair you expect.
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
    max_steps, max_epochs, min_epochs, lr_step, patience, rel_tol
        Schedule; ``None`` derives ``max_epochs`` / ``min_epochs`` from ``max_steps`` (module
        docstring); ``lr_step=None`` is the paper's 200 epochs; ``patience`` and ``rel_tol`` configure
        the plateau stop (``patience=None``: ``ceil(0.05 * max_steps / steps_per_epoch)`` epochs).
    seed, device, progress
        Seed of clustering, initialisation and sampling; ``"auto" | "cpu" | "cuda"``; tqdm bar.
    """

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
        max_steps: int = 2000,
        max_epochs: Optional[int] = None,
        min_epochs: Optional[int] = None,
        lr_step: Optional[float] = None,
        patience: Optional[int] = None,
        rel_tol: float = 1e-3,
        seed: int = 0,
        device: str = "auto",
        progress: bool = True,
    ):
        from ..pp.bermuda import SCOPES

        if scaling_scope not in SCOPES:
            raise ValueError(f"scaling_scope must be one of {SCOPES}, got {scaling_scope!r}")
        if not 0.0 <= float(similarity_threshold) <= 1.0:
            raise ValueError(f"similarity_threshold (S_thr) must lie in [0, 1], got {similarity_threshold}")
        for name, value in (("n_mb", n_mb), ("hidden", hidden), ("code_dim", code_dim), ("max_steps", max_steps)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value}")
        self.params = dict(
            n_features=int(n_features), features=None if features is None else [str(f) for f in features],
            resolution=float(resolution), n_neighbors=int(n_neighbors), n_pcs=int(n_pcs), cluster_key=cluster_key,
            cluster_max_cells=None if cluster_max_cells is None else int(cluster_max_cells),
            similarity_threshold=float(similarity_threshold), metaneighbor_method=metaneighbor_method,
            scaling_scope=scaling_scope,
            hidden=int(hidden), code_dim=int(code_dim), n_mb=int(n_mb), lr=float(lr), l2_decay=float(l2_decay),
            lam=float(lam), max_steps=int(max_steps), max_epochs=max_epochs, min_epochs=min_epochs,
            lr_step=lr_step, patience=patience, rel_tol=float(rel_tol), seed=int(seed),
        )
        self.device = resolve_device(device)
        self.progress = bool(progress)
        self.module = None
        self.extras = {}

    # ------------------------------------------------------------------ fit
    def fit(self, adata, batch_key: str = "batch", layer: Optional[str] = None) -> "BERMUDA":
        """Cluster each batch, match clusters across batches, train the autoencoder; returns ``self``."""
        X = get_matrix(adata, layer)
        counts = is_count_matrix(X)
        check_adata(adata, batch_key, layer=layer, allow_negative=not counts)
        p = self.params
        timings = {}
        t0 = time.perf_counter()
        features = select_features(adata, batch_key=batch_key, layer=layer, counts=counts,
                                   n_features=p["n_features"], features=p["features"])
        X_log, codes, batches, scaling = _prepare_input(adata, batch_key, layer, features, counts,
                                                        p["scaling_scope"])
        ranked = rank_standardize(X_log)  # gene ranks per cell: MetaNeighbor and cluster assignment
        timings["preprocessing"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        clusters = cluster_batches(adata, batch_key=batch_key, layer=layer, counts=counts, params=p,
                                   ranked=ranked)
        timings["clustering"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        names, cluster_codes, similarity, matches, pairs = similar_cluster_pairs(
            X_log, adata.obs[batch_key].astype(str).to_numpy(), clusters, p["similarity_threshold"],
            p["metaneighbor_method"], ranked=ranked)
        del ranked
        timings["metaneighbor"] = time.perf_counter() - t0

        self.features_, self.batches_, self.scaling_ = list(features), list(batches), scaling
        self.cluster_names_, self.similarity_, self.matches_ = names, similarity, matches
        self.cluster_pairs_ = [(names[i], names[j]) for i, j in pairs]
        self.cluster_labels_ = np.asarray(names, dtype=object)[cluster_codes]

        t0 = time.perf_counter()
        self._train(X_log, codes, cluster_codes, len(names), pairs)
        timings["training"] = time.perf_counter() - t0
        self.embedding_ = self._encode(X_log, codes)
        self.timings_ = timings
        self._store_extras()
        return self

    def _train(self, X_log, batch_codes, cluster_codes, n_clusters, pairs) -> None:
        import torch

        from ..modules.bermuda import BermudaAE, lambda_ramp
        from ..train import PlateauStopper, train_loop

        p = self.params
        sizes = np.bincount(cluster_codes, minlength=n_clusters)
        sched = training_schedule(int(sizes.max()), p)
        with seeded(p["seed"]):
            self.module = BermudaAE(X_log.shape[1], p["hidden"], p["code_dim"]).to(self.device)
        optimizer = torch.optim.Adam(self.module.parameters(), lr=p["lr"], weight_decay=p["l2_decay"])
        lr_step = sched["lr_step"]
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda t: 0.5 ** math.floor((t + 1) / lr_step))  # paper: epochs count from 1
        sampler = _ClusterSampler(cluster_codes, n_clusters, p["n_mb"], sched["steps_per_epoch"],
                                  torch_generator(p["seed"]))
        pairs_t = torch.as_tensor(np.asarray(pairs, dtype=np.int64).reshape(-1, 2))

        def make_batches(epoch):
            for idx in sampler.epoch():
                x = self.scaling_.apply(X_log[idx], batch_codes[idx])
                yield torch.from_numpy(x).to(self.device)

        def step(x, epoch):
            lam = lambda_ramp(epoch + 1, sched["max_epochs"], p["lam"])
            out = self.module.loss(x, n_clusters, pairs_t, lam)
            out["lambda"] = torch.tensor(lam)
            return out

        self.module.train()
        stopper = PlateauStopper(patience=sched["patience"], rel_tol=p["rel_tol"], min_epochs=sched["min_epochs"])
        history = train_loop(make_batches, step, optimizer, n_epochs=sched["max_epochs"], scheduler=scheduler,
                             stopper=stopper, progress=self.progress, desc="BERMUDA")
        self.module.eval()
        self.history_ = history
        self.schedule_ = sched

    # ------------------------------------------------------------------ embed
    def embed(self, adata=None, batch_key: str = "batch", layer: Optional[str] = None) -> np.ndarray:
        """Codes (``n_cells x code_dim``) of the training data (``adata=None``) or of new data.

        New data needs the training genes and a batch column; a batch seen in training is scaled
        with that batch's fitted coefficients, a new batch with coefficients fitted on its own cells
        (BERMUDA scales every data set separately).
        """
        if self.module is None:
            raise RuntimeError("the model is not fitted; call fit() first")
        if adata is None:
            if getattr(self, "embedding_", None) is None:
                raise ValueError("this model holds no training embedding; pass adata")
            return self.embedding_.copy()
        missing = pd.Index(self.features_).difference(adata.var_names)
        if len(missing):
            raise KeyError(f"{len(missing)} training genes are missing from adata, e.g. {list(missing[:3])}")
        X = get_matrix(adata, layer)
        counts = is_count_matrix(X)
        check_adata(adata, batch_key, layer=layer, min_batches=1, allow_negative=not counts)
        X_log, codes, scaling = _input_for_new_data(adata, batch_key, layer, self.features_, counts,
                                                    self.scaling_)
        return self._encode(X_log, codes, scaling)

    def _encode(self, X_log, codes, scaling=None, chunk: int = 4096) -> np.ndarray:
        import torch

        scaling = self.scaling_ if scaling is None else scaling
        out = np.zeros((X_log.shape[0], self.params["code_dim"]), dtype=np.float32)
        self.module.eval()
        with torch.no_grad():
            for start in range(0, X_log.shape[0], chunk):
                rows = slice(start, start + chunk)
                x = torch.from_numpy(scaling.apply(X_log[rows], codes[rows])).to(self.device)
                out[rows] = self.module.encode(x).cpu().numpy()
        return out

    # ------------------------------------------------------------------ save / load
    def _store_extras(self) -> None:
        s = self.scaling_
        self.extras = {
            "features": np.asarray(self.features_, dtype=str), "batches": np.asarray(self.batches_, dtype=str),
            "scaling_mean": s.mean, "scaling_sd": s.sd, "scaling_zmin": s.zmin, "scaling_zmax": s.zmax,
            "cluster_names": np.asarray(self.cluster_names_, dtype=str), "similarity": self.similarity_,
            "matches": self.matches_, "cluster_labels": np.asarray(self.cluster_labels_, dtype=str),
            "embedding": self.embedding_,
            "history_loss": np.asarray(self.history_.losses.get("loss", []), dtype=np.float64),
        }
        self.params["n_genes"] = len(self.features_)
        self.params["epochs_used"] = int(self.history_.n_epochs)

    def _build_module(self):
        from ..modules.bermuda import BermudaAE

        p = self.params
        return BermudaAE(p["n_genes"], p["hidden"], p["code_dim"])

    def _after_load(self) -> None:
        from ..pp.bermuda import BermudaScaling

        e = self.extras
        self.progress = False
        self.features_, self.batches_ = e["features"].tolist(), e["batches"].tolist()
        self.scaling_ = BermudaScaling(batches=self.batches_, mean=e["scaling_mean"], sd=e["scaling_sd"],
                                       zmin=e["scaling_zmin"], zmax=e["scaling_zmax"],
                                       scope=self.params.get("scaling_scope", "batch"))
        self.cluster_names_ = e["cluster_names"].tolist()
        self.similarity_, self.matches_ = e["similarity"], e["matches"]
        i, j = np.nonzero(np.triu(self.matches_, k=1))
        self.cluster_pairs_ = [(self.cluster_names_[a], self.cluster_names_[b]) for a, b in zip(i, j)]
        self.cluster_labels_ = e["cluster_labels"].astype(object)
        self.embedding_ = e["embedding"]
        self.history_ = None


# ---------------------------------------------------------------------- data helpers
def _log_matrix(X, cols, counts: bool):
    """Sparse float32 log2(CPM+1) (counts) or the values as they are (log data), on ``cols``."""
    from ..pp.bermuda import log_cpm

    if counts:
        return sp.csr_matrix(log_cpm(X)[:, cols], dtype=np.float32)
    X = X[:, cols]
    return sp.csr_matrix(X, dtype=np.float32) if sp.issparse(X) else np.asarray(X, dtype=np.float32)


def _prepare_input(adata, batch_key, layer, features, counts, scope: str = "batch"):
    from ..pp.bermuda import bermuda_scaling_fit

    cols = adata.var_names.get_indexer(pd.Index(features))
    X_log = _log_matrix(get_matrix(adata, layer), cols, counts)
    batch = pd.Categorical(adata.obs[batch_key].astype(str))
    codes = batch.codes.astype(np.int64)
    scaling = bermuda_scaling_fit(X_log, codes, batches=list(batch.categories), scope=scope)
    return X_log, codes, list(batch.categories), scaling


def _input_for_new_data(adata, batch_key, layer, features, counts, fitted):
    """Log input and batch codes for new data: the fitted scaling for known batches; a new batch gets its own
    standardisation and, with ``scope="global"``, the fitted common [0, 1] range (else its own range)."""
    from ..pp.bermuda import BermudaScaling, bermuda_scaling_fit

    cols = adata.var_names.get_indexer(pd.Index(features))
    X_log = _log_matrix(get_matrix(adata, layer), cols, counts)
    batch = pd.Categorical(adata.obs[batch_key].astype(str))
    known = {b: i for i, b in enumerate(fitted.batches)}
    own = bermuda_scaling_fit(X_log, batch.codes.astype(np.int64), batches=list(batch.categories))
    if fitted.scope == "global":  # every fitted row holds the common range
        own.zmin[:], own.zmax[:] = fitted.zmin[0], fitted.zmax[0]

    def row(name, array, k):
        return getattr(fitted, array)[known[name]] if name in known else getattr(own, array)[k]
    arrays = {a: np.vstack([row(b, a, k) for k, b in enumerate(batch.categories)])
              for a in ("mean", "sd", "zmin", "zmax")}
    scaling = BermudaScaling(batches=list(batch.categories), scope=fitted.scope, **arrays)
    return X_log, batch.codes.astype(np.int64), scaling


class _ClusterSampler:
    """Per step, ``n_mb`` cell indices from every cluster, stacked cluster by cluster.

    Each cluster's indices run through fresh random permutations of its cells (concatenated as
    needed), which oversamples small clusters exactly as random oversampling + shuffling does.
    """

    def __init__(self, cluster_codes, n_clusters, n_mb, steps, generator):
        self.members = [np.flatnonzero(cluster_codes == k) for k in range(n_clusters)]
        self.n_mb, self.steps, self.gen = n_mb, steps, generator

    def _stream(self, members):
        import torch

        need = self.n_mb * self.steps
        reps = -(-need // members.size)
        perm = torch.cat([torch.randperm(members.size, generator=self.gen) for _ in range(reps)])[:need]
        return members[perm.numpy()].reshape(self.steps, self.n_mb)

    def epoch(self):
        streams = [self._stream(m) for m in self.members]
        for s in range(self.steps):
            yield np.concatenate([st[s] for st in streams])


def integrate_bermuda(adata, *, batch_key: str = "batch", seed: int = 0, device: str = "auto",
                      progress: bool = True, **params):
    """``scintegrate.integrate(adata, method="bermuda", ...)``: the code and run details.

    Returns the 20-d code and ``info`` with ``obs["bermuda_cluster"]``, the cluster names, the
    MetaNeighbor similarity, the binary match matrix, the cluster pairs, the schedule, the
    training history (epochs used) and stage timings.
    """
    model = BERMUDA(seed=seed, device=device, progress=progress, **params).fit(adata, batch_key=batch_key)
    info = {
        "obs": {"bermuda_cluster": pd.Categorical(model.cluster_labels_.astype(str))},
        "cluster_names": np.asarray(model.cluster_names_, dtype=str),
        "similarity": model.similarity_, "matches": model.matches_,
        "cluster_pairs": np.asarray(model.cluster_pairs_, dtype=str).reshape(-1, 2),
        "schedule": model.schedule_, "history": model.history_.to_dict(),
        "epochs_used": int(model.history_.n_epochs), "timings": model.timings_,
    }
    return model.embedding_, info
