"""DeepBID: NB autoencoder + robust deep fuzzy k-means + two KL losses (Qin, Zhang et al., Adv. Sci. 2024).

Input (``_deepbid_data``): the paper's scanpy recipe per batch (genes in >= 3 cells, 1e4 normalisation, log1p,
top 1,000 HVGs per batch, union); the network sees the log values z-scored per gene; the NB term sees the raw
counts of the same genes. Library size: mu_ij = s_i exp(W_mu D)_ij with s_i = total count of cell i / median
(DCA / scDeepCluster, which the authors credit; their script passes no size factor). Non-count input
(``likelihood="auto"`` on log-normalised values, or ``"gaussian"``) swaps the NB term for 1/2 squared error on
the z-scored values; ``likelihood="nb"`` on non-counts is an error (values are never rounded).

Training, every phase through :func:`scintegrate.train.train_loop`:

1. layer-wise pretraining with MSE, Adam, minibatch 128, ``pretrain_epochs`` (20) each: f-500-f, then
   500-300-500 on the frozen first layer; then the NB (or Gaussian) output heads alone on the frozen
   autoencoder (so the likelihood term starts from a fitted decoder, not random heads);
2. K: ``n_clusters`` if given, else Leiden on the pretrained latent space (rule in :func:`estimate_n_clusters`);
   centres from k-means (``n_init=10``) on the latent space, refined by the fuzzy updates (Eqs. 13-14);
3. clustering phase, SGD, ``cluster_epochs`` (20): per minibatch of m cells
   L = L_rec + lam1 L_A + lam2 L_O / m + kappa1 KL1 + kappa2 KL2     (Eq. 11)
   with L_rec the NB negative log-likelihood (mean per entry, as the script's NBLoss), L_A the adaptive fuzzy
   k-means loss with P and C held fixed, L_O the squared weights, KL1 the within-batch Student-t self-training
   term (summed over cells), KL2 the batch-proportion term (differentiable through P(z); the proportions are
   the data set's, with the minibatch's cells live and every other cell at its last-epoch membership); after
   each epoch C and P are updated in closed form (Eqs. 13-14) on the whole latent space. Stops early once fewer than
   ``tol`` of the cells changed cluster for 3 epochs running (``tol=0`` runs every epoch).

Defaults follow the paper: lam1 = 5 and lam2 = 0.01 below 10,000 cells, lam1 = 1 and lam2 = 1e-4 at or above;
lr = 1e-3 at every size. The paper lowers lr to 1e-5 at >= 10,000 cells; with 20 pretraining epochs Adam at
1e-5 leaves the autoencoder nearly untrained (a larger data set already gets more steps per epoch at the same
rate), and K and the clusters come out wrong. Measured on a 10,000-cell, 5-type simulation
(``benchmarks/deepbid_speed.py`` data): lr 1e-5 gave automatic K = 9 and ARI 0.336 (0.498 with K = 5 given);
lr 1e-3 gave K = 5 and ARI 0.997; at 20,000 cells ARI 0.559 (K = 10) -> 0.583 (K = 6). ``lr=1e-5`` restores
the paper's rate. The clustering phase's plain SGD runs at ``cluster_lr = 10 * lr`` unless given: the paper's
rates are Adam-scale, and plain SGD at 1e-3 for 20 epochs barely moves the network -- measured on the demo data,
the latent stayed near-isotropic (top principal component 1% of the variance; Leiden NMI on it 0.36), so L_A
never compacted the clusters. At 10 * lr the scIB overall score of the latent rose on DC 0.717 -> 0.840, mixology
0.813 -> 0.913 and 10x chemistries 0.684 -> 0.866, while the cluster ARI moved 0.843 -> 0.825, 0.970 -> 0.957
and 0.409 -> 0.587. kappa1 = 0.01, kappa2 = 100.

sigma (the adaptive loss's switch from quadratic to linear, a distance in latent units) is "auto": the median
distance of a cell to its nearest k-means centre at initialisation, like Huber's delta set from a robust scale
(see :func:`initial_centers`). The public script's sigma = 1 puts nearly every cell of the 300-d tanh latent
(median distance ~9) in the linear regime, where L_A pulls every cell with the same force and boundary cells
drift across clusters: DC's ARI fell 0.87 -> 0.825 over the 20 epochs. Measured with sigma = 1 -> "auto"
(seed 0, cluster ARI / scIB overall of the latent): DC 0.833 -> 0.863 / 0.822 -> 0.845 (seeds 1, 2: 0.870,
0.846; flat over the last 15 epochs), mixology 0.957 -> 0.964 / 0.903 -> 0.909, demo 0.957 -> 0.983 /
0.843 -> 0.869, Kang 0.652 -> 0.655 / 0.846 -> 0.891, pancreas 0.359 -> 0.363 / 0.654 -> 0.585, 10x
0.587 -> 0.519 / 0.866 -> 0.794 (the stronger pull keeps more of the pretrained batch structure there).
``sigma=1`` restores the script's value. gamma (entropy weight of P) is "auto": the public script's gamma = 1
merges all centres into one on our latent scale (entropic fuzzy k-means above its critical temperature), so
gamma is set from the latent distances at initialisation (see :func:`initial_centers`).

Deliberate departures from the public script (github shaoqiangzhang/DeepBID): KL2 is a differentiable tensor
(the script's ``cul_batch_kl`` returns ``.item()``, so KL2 never trained anything), and each cluster's KL is
weighted by its share of the cells, which makes KL2 the batch-cluster mutual information (unweighted, the
cheapest way to lower a *working* KL2 is to dissolve small batch-specific clusters: demo-data ARI fell from
0.96 to 0.35; weighted it stays at 0.96, see ``modules.deepbid.batch_proportion_kl``); the NB heads sit on the same
autoencoder and use the raw counts with library-size factors (the script fits a separate network to z-scored
values without size factors); the reconstruction term is kept (the script overwrites it); KL1 compares cells of
the same batch in the latent space (as the paper states; the script uses all cells' reconstructions); K is
estimated instead of read from the true labels; the IRLS weight d_jk keeps the square of Eq. 3's denominator.

Caveat (measured, see ``benchmarks/results/deepbid_paper.md``): KL2 asks every cluster to hold the batches in
their global proportions. Where a cell type exists in one batch only (DC: types 1 and 4), a working KL2 at
kappa2 = 100 mixes those types; ``kappa2=0`` keeps them apart.

Example
-------
>>> import scintegrate as si
>>> from scintegrate.models import DeepBID
>>> adata = si.datasets.simulate_counts(n_cells=200, n_genes=100, seed=0)   # doctest: +SKIP
>>> model = DeepBID(n_clusters=3, pretrain_epochs=2, cluster_epochs=2, progress=False).fit(adata)  # doctest: +SKIP
>>> model.embed().shape, model.cluster().shape   # doctest: +SKIP
((200, 300), (200,))
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ._base import SavableModel
from ._deepbid_data import prepare_inputs, transform_new
from ._deepbid_train import estimate_n_clusters, fit_clusters, pretrain

LARGE_N = 10_000


class DeepBID(SavableModel):
    """DeepBID model (AnnData in; latent space, fuzzy clusters and denoised expression out).

    Parameters left ``None`` take the paper's size-dependent defaults at ``fit`` time (see module docstring).
    """

    def __init__(self, n_clusters: Optional[int] = None, *, hidden: Sequence[int] = (500, 300),
                 lam1: Optional[float] = None, lam2: Optional[float] = None, kappa1: float = 0.01,
                 kappa2: float = 100.0, sigma="auto", gamma="auto", alpha: float = 1.0,
                 pretrain_epochs: int = 20, cluster_epochs: int = 20, batch_size: int = 128,
                 lr: Optional[float] = None, cluster_lr: Optional[float] = None, likelihood: str = "auto",
                 n_top_genes: int = 1000, min_cells: int = 3, resolution: float = 0.5, tol: float = 1e-3,
                 seed: int = 0, device: str = "auto", progress: bool = True):
        if n_clusters is not None and int(n_clusters) < 2:
            raise ValueError(f"n_clusters must be >= 2 (or None to estimate it), got {n_clusters}")
        if batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {batch_size}")
        if not (sigma is None or sigma == "auto" or (isinstance(sigma, (int, float)) and sigma > 0)):
            raise ValueError(f"sigma must be 'auto', None or a positive number, got {sigma!r}")
        if not (gamma == "auto" or (isinstance(gamma, (int, float)) and gamma > 0)):
            raise ValueError(f"gamma must be 'auto' or a positive number, got {gamma!r}")
        self.params = dict(n_clusters=n_clusters, hidden=list(hidden), lam1=lam1, lam2=lam2, kappa1=kappa1,
                           kappa2=kappa2, sigma=sigma, gamma=gamma, alpha=alpha, pretrain_epochs=pretrain_epochs,
                           cluster_epochs=cluster_epochs, batch_size=batch_size, lr=lr, cluster_lr=cluster_lr,
                           likelihood=likelihood, n_top_genes=n_top_genes, min_cells=min_cells,
                           resolution=resolution, tol=tol, seed=seed)
        self.device_name, self.progress = device, progress
        self.module, self.extras, self.history = None, {}, {}

    # ------------------------------------------------------------------ fitting
    def fit(self, adata, batch_key: str = "batch", layer: Optional[str] = None) -> "DeepBID":
        """Preprocess, pretrain, choose K, train the clustering phase. Phase times: ``history["timing_s"]``."""
        from .._device import resolve_device, seeded
        from .._validation import check_adata
        from ..modules.deepbid import DeepBIDNet

        check_adata(adata, batch_key, layer=layer, min_batches=1)
        p, clock = self.params, _Clock()
        k = p["n_clusters"]
        if k is not None and k > adata.n_obs:
            raise ValueError(f"n_clusters={k} is larger than the number of cells ({adata.n_obs})")
        inputs = prepare_inputs(adata, batch_key, layer=layer, n_top_genes=p["n_top_genes"],
                                min_cells=p["min_cells"], likelihood=p["likelihood"])
        clock.lap("prepare")
        settings = self._resolved_settings(adata.n_obs)
        self.device = resolve_device(self.device_name)
        with seeded(p["seed"]):
            self.module = DeepBIDNet(len(inputs.genes), p["hidden"]).to(self.device)
        data = _to_tensors(inputs, self.device)
        self.history = {"pretrain": pretrain(self.module, data, settings, progress=self.progress)}
        clock.lap("pretrain")
        rule = "given"
        if k is None:
            k, rule = estimate_n_clusters(_encode(self.module, data["x"]).cpu().numpy(),
                                          resolution=p["resolution"], seed=p["seed"])
        clock.lap("choose_k")
        result = fit_clusters(self.module, data, int(k), settings, progress=self.progress)
        clock.lap("cluster")
        self.history.update(cluster=result["history"], label_trace=result["label_trace"], timing_s=clock.laps)
        self.params.update(n_input=len(inputs.genes), genes=inputs.genes, batch_levels=inputs.batch_levels,
                           batch_key=batch_key, likelihood_=inputs.likelihood, n_clusters_=int(k), k_rule=rule,
                           sigma_=result["sigma"], gamma_=result["gamma"], settings_=settings)
        self.extras = {"centers": result["centers"].cpu().numpy(), "gene_mean": inputs.gene_mean,
                       "gene_std": inputs.gene_std, "soft": result["p"].cpu().numpy(),
                       "latent": _encode(self.module, data["x"]).cpu().numpy()}
        self._train_x = data["x"]
        return self

    def _resolved_settings(self, n_cells: int) -> dict:
        p, large = self.params, n_cells >= LARGE_N
        lr = p["lr"] if p["lr"] is not None else 1e-3  # the paper's 1e-5 at >= 10k under-trains (docstring)
        return dict(lam1=p["lam1"] if p["lam1"] is not None else (1.0 if large else 5.0),
                    lam2=p["lam2"] if p["lam2"] is not None else (1e-4 if large else 0.01),
                    lr=lr, cluster_lr=p["cluster_lr"] if p["cluster_lr"] is not None else 10 * lr,
                    kappa1=p["kappa1"], kappa2=p["kappa2"], sigma=p["sigma"], gamma=p["gamma"],
                    alpha=p["alpha"], pretrain_epochs=p["pretrain_epochs"], cluster_epochs=p["cluster_epochs"],
                    batch_size=p["batch_size"], tol=p["tol"], seed=p["seed"])

    # ------------------------------------------------------------------ outputs
    def _check_fitted(self):
        if self.module is None:
            raise RuntimeError("the model is not fitted; call fit() first")

    def _input(self, adata, layer):
        import torch

        self._check_fitted()
        if adata is None:
            return None
        x = transform_new(adata, self.params["genes"], self.extras["gene_mean"], self.extras["gene_std"],
                          self.params["likelihood_"], layer)
        return torch.as_tensor(x, device=self.device)

    def embed(self, adata=None, layer: Optional[str] = None) -> np.ndarray:
        """Latent coordinates (cells x 300) of the training cells (``adata=None``) or of new cells."""
        x = self._input(adata, layer)
        return self.extras["latent"].copy() if x is None else _encode(self.module, x).cpu().numpy()

    def soft_assignments(self, adata=None, layer: Optional[str] = None) -> np.ndarray:
        """Fuzzy memberships P (cells x K, Eq. 14)."""
        import torch

        from ..nn.fuzzy import memberships

        x = self._input(adata, layer)
        if x is None:
            return self.extras["soft"].copy()
        centers = torch.as_tensor(self.extras["centers"], device=self.device)
        with torch.no_grad():
            return memberships(_encode(self.module, x), centers, self.params.get("sigma_", self.params["sigma"]),
                               self.params["gamma_"]).cpu().numpy()

    def cluster(self, adata=None, layer: Optional[str] = None) -> np.ndarray:
        """Hard cluster labels (argmax of P), integers 0..K-1."""
        return self.soft_assignments(adata, layer).argmax(1)

    def denoise(self, adata=None, layer: Optional[str] = None) -> np.ndarray:
        """Denoised expression of the model's genes (cells x genes): NB mean at the median library size
        (``likelihood="nb"``), or the reconstruction on the input's log scale (``"gaussian"``)."""
        import torch

        x = self._input(adata, layer)
        if x is None and self._train_x is None:
            raise ValueError("a loaded model keeps no training matrix: pass the cells to denoise (adata=...)")
        x = self._train_x if x is None else x
        out = []
        with torch.no_grad():
            for chunk in torch.split(x, 4096):
                hidden = self.module.decode(self.module.encode(chunk))
                if self.params["likelihood_"] == "nb":
                    out.append(self.module.nb_params(hidden, torch.ones(len(chunk), device=x.device))[0])
                else:
                    std = torch.as_tensor(self.extras["gene_std"], device=x.device)
                    mean = torch.as_tensor(self.extras["gene_mean"], device=x.device)
                    out.append(self.module.reconstruct(hidden) * std + mean)
        return torch.cat(out).cpu().numpy()

    # ------------------------------------------------------------------ save / load
    def _build_module(self):
        from ..modules.deepbid import DeepBIDNet

        return DeepBIDNet(self.params["n_input"], self.params["hidden"])

    def _after_load(self) -> None:
        self.device_name, self.progress, self.history = str(self.device), False, {}
        self._train_x = None


class _Clock:
    """Wall-clock seconds of consecutive phases."""

    def __init__(self):
        import time

        self._time, self.laps = time.perf_counter, {}
        self._last = self._time()

    def lap(self, name: str) -> None:
        now = self._time()
        self.laps[name] = round(now - self._last, 3)
        self._last = now


def _to_tensors(inputs, device) -> dict:
    import torch

    out = {"x": torch.as_tensor(inputs.x, device=device),
           "size_factors": torch.as_tensor(inputs.size_factors, device=device),
           "batch": torch.as_tensor(inputs.batch, device=device),
           "n_batches": len(inputs.batch_levels), "likelihood": inputs.likelihood}
    out["counts"] = None if inputs.counts is None else torch.as_tensor(inputs.counts, device=device)
    return out


def _encode(module, x):
    import torch

    with torch.no_grad():
        return torch.cat([module.encode(chunk) for chunk in torch.split(x, 4096)])


def integrate_deepbid(adata, *, batch_key: str = "batch", seed: int = 0, device: str = "auto",
                      progress: bool = True, layer: Optional[str] = None, denoised_layer: bool = True,
                      **params):
    """``scintegrate.integrate(adata, method="deepbid", ...)``: fit :class:`DeepBID`, return the latent space.

    ``info`` carries ``obs["deepbid_cluster"]``, ``obsm["deepbid_soft"]`` and (``denoised_layer=True``)
    ``layers["deepbid_denoised"]`` -- a sparse matrix of the data's shape holding the denoised values of the
    model's genes (listed in ``uns``) and nothing elsewhere.
    """
    import pandas as pd
    import scipy.sparse as sp

    model = DeepBID(seed=seed, device=device, progress=progress, **params).fit(adata, batch_key, layer=layer)
    labels = model.cluster()
    info = {"obs": {"deepbid_cluster": pd.Categorical(labels.astype(str),
                                                      categories=[str(i) for i in range(model.params["n_clusters_"])])},
            "obsm": {"deepbid_soft": model.soft_assignments().astype(np.float32)},
            "n_clusters": model.params["n_clusters_"], "k_rule": model.params["k_rule"],
            "likelihood": model.params["likelihood_"], "genes": list(model.params["genes"]),
            "settings": model.params["settings_"],
            "history": {"pretrain": {k: v.to_dict() for k, v in model.history["pretrain"].items()},
                        "cluster": model.history["cluster"].to_dict()},
            "timing_s": model.history["timing_s"]}
    if denoised_layer:
        cols = pd.Index(adata.var_names.astype(str)).get_indexer(model.params["genes"])
        dense = sp.coo_matrix(model.denoise())
        info["layers"] = {"deepbid_denoised": sp.csr_matrix(
            (dense.data, (dense.row, cols[dense.col])), shape=adata.shape, dtype=np.float32)}
    return model.embed(), info
