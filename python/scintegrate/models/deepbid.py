"""DeepBID: NB autoencoder + robust deep fuzzy k-means + two KL losses (Qin, Zhang et al., Adv. Sci. 2024).

Input (``_deepbid_data``): the paper's scanpy recipe per batch (genes in >= 3 cells, 1e4 normalisation, log1p,
top 1,000 HVGs per batch, union); the network sees the log values z-scored per gene; the NB term sees the raw
counts of the same genes. Library size: mu_ij = s_i exp(W_mu D)_ij with s_i = total count of cell i / median
(DCA / scDeepCluster, which the authors credit; their script passes no size factor). Non-count input
(``likelihood="auto"`` on log-normalised values or on any input declared ``input="log"``, or ``"gaussian"``)
swaps the NB term for 1/2 squared error on the z-scored values; ``likelihood="nb"`` on non-counts is an error
(values are never rounded).

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
kappa1 = 0.01, kappa2 = 100. Where they depart from it, on purpose: lr = 1e-3 at every size (the paper's 1e-5
at >= 10,000 cells leaves a 20-epoch pretraining nearly untrained; ``lr=1e-5`` restores it); the clustering
phase's plain SGD runs at ``cluster_lr = 10 * lr`` (the paper's rates are Adam-scale; at 1e-3 plain SGD barely
moves the network in 20 epochs); sigma (the adaptive loss's switch from quadratic to linear, a distance in
latent units) is "auto", the median distance of a cell to its nearest k-means centre at initialisation, like
Huber's delta from a robust scale (the public script's sigma = 1 puts nearly every cell of the 300-d tanh
latent in the linear regime, where boundary cells drift across clusters; ``sigma=1`` restores it); gamma (the
entropy weight of P) is "auto", set from the latent distances (the script's gamma = 1 merges all centres on our
latent scale). See :func:`~scintegrate.models._deepbid_train.initial_centers`.

Deliberate departures from the public script (github shaoqiangzhang/DeepBID): KL2 is a differentiable tensor
(the script's ``cul_batch_kl`` returns ``.item()``, so KL2 never trained anything), and each cluster's KL is
weighted by its share of the cells, which makes KL2 the batch-cluster mutual information (unweighted, the
cheapest way to lower a *working* KL2 is to dissolve small batch-specific clusters; see
``modules.deepbid.batch_proportion_kl``); the NB heads sit on the same autoencoder and use the raw counts with
library-size factors (the script fits a separate network to z-scored values without size factors); the
reconstruction term is kept (the script overwrites it); KL1 compares cells of the same batch in the latent
space (as the paper states; the script uses all cells' reconstructions); K is estimated instead of read from
the true labels; the IRLS weight d_jk keeps the square of Eq. 3's denominator.

Caveat: KL2 asks every cluster to hold the batches in their global proportions. Where a cell type exists in
one batch only, a working KL2 at kappa2 = 100 mixes those types; ``kappa2=0`` keeps them apart.

The measurements behind every choice above: ``benchmarks/results/deepbid_design.md`` and
``benchmarks/results/deepbid_paper.md``.

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

from ._base import IntegrationModel
from ._deepbid_data import prepare_inputs, standardize, transform_new
from ._deepbid_train import encode_all, estimate_n_clusters, fit_clusters, pretrain

LARGE_N = 10_000


class DeepBID(IntegrationModel):
    """DeepBID model (AnnData in; latent space, fuzzy clusters and denoised expression out).

    Parameters
    ----------
    n_clusters
        K, the number of fuzzy clusters; ``None`` estimates it from the pretrained latent space
        (:func:`~scintegrate.models._deepbid_train.estimate_n_clusters`, Leiden at ``resolution``).
    hidden
        Sizes of the two encoder layers (500, 300; the latent space is the second).
    lam1, lam2
        Weights of the fuzzy k-means loss L_A and of the weight penalty L_O (``None``: the paper's
        size-dependent values, 5 / 0.01 below 10,000 cells and 1 / 1e-4 from there on).
    kappa1, kappa2
        Weights of KL1 (within-batch self-training, 0.01) and KL2 (batch proportions, 100).
    sigma, gamma
        The adaptive loss's scale and the memberships' entropy weight; ``"auto"`` sets both from the latent
        distances at initialisation (module docstring); ``sigma=None`` is plain squared-distance fuzzy k-means.
    alpha
        Degrees of freedom of KL1's Student-t kernel (1).
    pretrain_epochs, cluster_epochs
        Epochs of each pretraining phase and of the clustering phase (20 each).
    batch_size
        Minibatch size (128).
    lr, cluster_lr
        Adam rate of pretraining (``None``: 1e-3) and plain-SGD rate of the clustering phase (``None``: 10 x lr).
    likelihood
        ``"auto"`` (NB for integer counts, Gaussian otherwise), ``"nb"`` or ``"gaussian"``.
    n_top_genes, min_cells
        HVGs per batch (1,000; union over batches) and the minimum number of a batch's cells expressing a
        gene for it to be a candidate (3).
    resolution
        Leiden resolution of the automatic K (0.5).
    tol
        The clustering phase stops once fewer than ``tol`` of the cells changed cluster for 3 epochs (0: never).
    denoised_layer
        Whether :meth:`to_result` (and so ``integrate``) writes the denoised expression as a layer.
    seed, device, progress
        Seed of initialisation, k-means and minibatch order; ``"auto" | "cpu" | "cuda"``; tqdm bars.

    Fitted attributes: ``embedding_`` (the latent space), ``n_clusters_``, ``k_rule_``, ``likelihood_``,
    ``genes_``, ``batch_levels_``, ``sigma_``, ``gamma_``, ``settings_``, ``centers_``, ``soft_``,
    ``gene_mean_``, ``gene_std_``, ``history_``, ``label_trace_``, ``timings_``.
    """

    method = "deepbid"

    def __init__(self, n_clusters: Optional[int] = None, *, hidden: Sequence[int] = (500, 300),
                 lam1: Optional[float] = None, lam2: Optional[float] = None, kappa1: float = 0.01,
                 kappa2: float = 100.0, sigma="auto", gamma="auto", alpha: float = 1.0,
                 pretrain_epochs: int = 20, cluster_epochs: int = 20, batch_size: int = 128,
                 lr: Optional[float] = None, cluster_lr: Optional[float] = None, likelihood: str = "auto",
                 n_top_genes: int = 1000, min_cells: int = 3, resolution: float = 0.5, tol: float = 1e-3,
                 denoised_layer: bool = True, seed: int = 0, device: str = "auto", progress: bool = True):
        if n_clusters is not None and int(n_clusters) < 2:
            raise ValueError(f"n_clusters must be >= 2 (or None to estimate it), got {n_clusters}")
        if batch_size < 2:
            raise ValueError(f"batch_size must be >= 2, got {batch_size}")
        if not (sigma is None or sigma == "auto" or (isinstance(sigma, (int, float)) and sigma > 0)):
            raise ValueError(f"sigma must be 'auto', None or a positive number, got {sigma!r}")
        if not (gamma == "auto" or (isinstance(gamma, (int, float)) and gamma > 0)):
            raise ValueError(f"gamma must be 'auto' or a positive number, got {gamma!r}")
        params = dict(n_clusters=n_clusters, hidden=list(hidden), lam1=lam1, lam2=lam2, kappa1=kappa1,
                      kappa2=kappa2, sigma=sigma, gamma=gamma, alpha=alpha, pretrain_epochs=pretrain_epochs,
                      cluster_epochs=cluster_epochs, batch_size=batch_size, lr=lr, cluster_lr=cluster_lr,
                      likelihood=likelihood, n_top_genes=n_top_genes, min_cells=min_cells,
                      resolution=resolution, tol=tol, denoised_layer=bool(denoised_layer))
        self._setup(params, seed=seed, device=device, progress=progress)
        self._inputs = None

    # ------------------------------------------------------------------ fitting
    def _fit(self, adata, data) -> None:
        """Preprocess, pretrain, choose K, train the clustering phase (stage times in ``timings_``)."""
        from .._device import seeded
        from ..modules.deepbid import DeepBIDNet

        p, k = self.params, self.params["n_clusters"]
        if k is not None and k > adata.n_obs:
            raise ValueError(f"n_clusters={k} is larger than the number of cells ({adata.n_obs})")
        with self._stage("prepare"):
            inputs = prepare_inputs(data, n_top_genes=p["n_top_genes"], min_cells=p["min_cells"],
                                    likelihood=p["likelihood"])
        settings = self._resolved_settings(adata.n_obs)
        with seeded(self.seed):
            self.module = DeepBIDNet(len(inputs.genes), p["hidden"], likelihood=inputs.likelihood).to(self.device)
        train = _training_data(inputs, self.device)
        with self._stage("pretrain"):
            self.history_ = {"pretrain": pretrain(self.module, train, settings, progress=self.progress)}
        rule = "given"
        with self._stage("choose_k"):
            if k is None:
                k, rule = estimate_n_clusters(encode_all(self.module, train).cpu().numpy(),
                                              resolution=p["resolution"], seed=self.seed)
        with self._stage("cluster"):
            result = fit_clusters(self.module, train, int(k), settings, progress=self.progress)
        self.history_["cluster"] = result["history"]
        self.label_trace_ = result["label_trace"]
        self.genes_, self.batch_levels_, self.likelihood_ = inputs.genes, inputs.batch_levels, inputs.likelihood
        self.n_clusters_, self.k_rule_, self.settings_ = int(k), rule, settings
        self.sigma_, self.gamma_ = result["sigma"], result["gamma"]
        self.centers_, self.soft_ = result["centers"].cpu().numpy(), result["p"].cpu().numpy()
        self.gene_mean_, self.gene_std_ = inputs.gene_mean, inputs.gene_std
        self.embedding_ = encode_all(self.module, train).cpu().numpy()
        self._inputs = inputs

    def _resolved_settings(self, n_cells: int) -> dict:
        p, large = self.params, n_cells >= LARGE_N
        lr = p["lr"] if p["lr"] is not None else 1e-3  # the paper's 1e-5 at >= 10k under-trains (docstring)
        return dict(lam1=p["lam1"] if p["lam1"] is not None else (1.0 if large else 5.0),
                    lam2=p["lam2"] if p["lam2"] is not None else (1e-4 if large else 0.01),
                    lr=lr, cluster_lr=p["cluster_lr"] if p["cluster_lr"] is not None else 10 * lr,
                    kappa1=p["kappa1"], kappa2=p["kappa2"], sigma=p["sigma"], gamma=p["gamma"],
                    alpha=p["alpha"], pretrain_epochs=p["pretrain_epochs"], cluster_epochs=p["cluster_epochs"],
                    batch_size=p["batch_size"], tol=p["tol"], seed=self.seed)

    # ------------------------------------------------------------------ outputs
    def _logx(self, adata, layer):
        """Log values of the model's genes: the training cells' (``adata=None``) or new cells'."""
        self._check_fitted()
        if adata is None:
            if self._inputs is None:
                raise ValueError("a loaded model keeps no training matrix: pass the cells (adata=...)")
            return self._inputs.logx
        from .._validation import get_matrix

        return transform_new(get_matrix(adata, layer), adata.var_names, self.genes_, self.likelihood_,
                             self._normalizes())

    def _map(self, logx, fn) -> np.ndarray:
        import torch

        from ..train import map_chunks

        def block(rows):
            x = torch.from_numpy(standardize(logx[rows], self.gene_mean_, self.gene_std_)).to(self.device)
            return fn(x)
        self.module.eval()
        return map_chunks(block, logx.shape[0]).cpu().numpy()

    def _normalizes(self) -> bool:
        """Whether training normalised the values as counts (its input kind, recorded by fit and saved)."""
        return self.input_kind_ in ("counts", "noninteger_counts")

    def required_genes(self) -> list:
        return list(self.genes_)

    def _embed_new(self, adata, data) -> np.ndarray:
        logx = transform_new(data.X, data.genes, self.genes_, self.likelihood_, self._normalizes())
        return self._map(logx, self.module.encode)

    def soft_assignments(self, adata=None, layer: Optional[str] = None) -> np.ndarray:
        """Fuzzy memberships P (cells x K, Eq. 14)."""
        import torch

        from ..nn.fuzzy import memberships

        if adata is None:
            return self.soft_.copy()
        centers = torch.as_tensor(self.centers_, device=self.device)
        return self._map(self._logx(adata, layer),
                         lambda x: memberships(self.module.encode(x), centers, self.sigma_, self.gamma_))

    def cluster(self, adata=None, layer: Optional[str] = None) -> np.ndarray:
        """Hard cluster labels (argmax of P), integers 0..K-1."""
        return self.soft_assignments(adata, layer).argmax(1)

    def denoise(self, adata=None, layer: Optional[str] = None) -> np.ndarray:
        """Denoised expression of the model's genes (cells x genes): NB mean at the median library size
        (``likelihood="nb"``), or the reconstruction on the input's log scale (``"gaussian"``)."""
        import torch

        module = self.module

        def block(x):
            hidden = module.decode(module.encode(x))
            if self.likelihood_ == "nb":
                return module.nb_params(hidden, torch.ones(len(x), device=x.device))[0]
            std, mean = (torch.as_tensor(a, device=x.device) for a in (self.gene_std_, self.gene_mean_))
            return module.reconstruct(hidden) * std + mean
        return self._map(self._logx(adata, layer), block)

    def _outputs(self) -> dict:
        import pandas as pd
        import scipy.sparse as sp

        labels = self.cluster()
        out = {"obs": {"deepbid_cluster": pd.Categorical(labels.astype(str),
                                                         categories=[str(i) for i in range(self.n_clusters_)])},
               "obsm": {"deepbid_soft": self.soft_assignments().astype(np.float32)},
               "info": {"n_clusters": self.n_clusters_, "k_rule": self.k_rule_, "likelihood": self.likelihood_,
                        "genes": list(self.genes_), "settings": self.settings_, "history": self._history_dict()}}
        if self.params["denoised_layer"]:
            cols = pd.Index(self.var_names_).get_indexer(self.genes_)
            dense = sp.coo_matrix(self.denoise())
            out["layers"] = {"deepbid_denoised": sp.csr_matrix(
                (dense.data, (dense.row, cols[dense.col])), shape=(self.n_cells_, len(self.var_names_)),
                dtype=np.float32)}
        return out

    def _history_dict(self) -> dict:
        h = self.history_ or {}
        if "pretrain" not in h:
            return dict(h)
        return {"pretrain": {k: v.to_dict() for k, v in h["pretrain"].items()}, "cluster": h["cluster"].to_dict()}

    # ------------------------------------------------------------------ save / load
    def _fitted_state(self):
        state = {"n_clusters": self.n_clusters_, "k_rule": self.k_rule_, "likelihood": self.likelihood_,
                 "genes": list(self.genes_), "batch_levels": list(self.batch_levels_), "sigma": self.sigma_,
                 "gamma": self.gamma_, "settings": self.settings_, "history": self._history_dict()}
        arrays = {"centers": self.centers_, "soft": self.soft_, "gene_mean": self.gene_mean_,
                  "gene_std": self.gene_std_, "label_trace": self.label_trace_}
        return state, arrays

    def _restore_state(self, state, arrays) -> None:
        self.n_clusters_, self.k_rule_, self.likelihood_ = state["n_clusters"], state["k_rule"], state["likelihood"]
        self.genes_, self.batch_levels_ = state["genes"], state["batch_levels"]
        self.sigma_, self.gamma_, self.settings_ = state["sigma"], state["gamma"], state["settings"]
        self.history_ = state.get("history", {})
        self.centers_, self.soft_ = arrays["centers"], arrays["soft"]
        self.gene_mean_, self.gene_std_, self.label_trace_ = arrays["gene_mean"], arrays["gene_std"], arrays["label_trace"]
        self._inputs = None

    def _build_module(self):
        from ..modules.deepbid import DeepBIDNet

        return DeepBIDNet(len(self.genes_), self.params["hidden"], likelihood=self.likelihood_)


def _training_data(inputs, device) -> dict:
    import torch

    return {"inputs": inputs, "device": device, "n_batches": len(inputs.batch_levels),
            "size_factors": torch.as_tensor(inputs.size_factors, device=device),
            "batch": torch.as_tensor(inputs.batch, device=device)}
