"""Harmony (Korsunsky et al., Nat Methods 2019) on an existing embedding or on Seurat-style PCs.

Input is ``adata.obsm[use_rep]`` (by default ``"X_pca"`` when present, as Seurat's ``RunHarmony`` uses the
PCA), or counts / log values that first go through :mod:`scintegrate.pp` (log-normalise, integration
features, scale, PCA). One or several covariates: ``batch_key`` may be a list, each with its own ``theta``.
The numeric core is :mod:`scintegrate.models._harmony_core` (torch, float32 on the model's device; no
cells x cells matrix). Measured speed and agreement with R harmony: ``benchmarks/results/harmony_speed.md``.

Example
-------
>>> import scintegrate as si
>>> adata = si.datasets.simulate_counts(n_cells=300, n_genes=200, seed=0)
>>> si.integrate(adata, method="harmony", n_comps=10, progress=False).obsm["X_harmony"].shape
(300, 10)
"""

from __future__ import annotations

import warnings
from typing import List, Optional, Union

import numpy as np

from ._base import IntegrationModel

#: the obsm key of the soft cluster assignments when ``store_assignments=True``
SOFT_KEY = "harmony_soft"


class Harmony(IntegrationModel):
    """Harmony: soft k-means with a batch-diversity penalty alternating with a ridge correction of the PCs.

    Each outer iteration clusters the cosine-normalised corrected embedding (K-means start, then soft k-means
    with entropy regularisation ``sigma`` and the penalty ``theta * log((O + E) / E)`` per covariate, cells
    updated in random blocks) and then corrects the ORIGINAL embedding by a mixture of per-cluster ridge
    regressions on the covariates. It stops when the objective's absolute relative change falls below
    ``epsilon_harmony`` (R harmony's test is signed and calls a rising objective converged); stopping at
    ``max_iter`` first gives a warning. With several covariates a cell's penalties multiply (their logs add,
    as the objective implies; R harmony adds the factors).

    Parameters
    ----------
    theta
        Diversity penalty, one number or one per covariate (2; 0 switches a covariate's clustering penalty off).
    sigma
        Width of the soft k-means kernel (entropy weight; 0.1).
    lamb
        Ridge penalty of the batch coefficients, one number > 0 or one per covariate (1); ``None`` estimates it
        per cluster as ``alpha`` times the cluster's expected batch counts (Harmony 2).
    alpha
        Factor of the estimated ridge penalty when ``lamb=None`` (0.2).
    n_clusters
        Clusters K; ``None``: ``min(100, round(N / 30))`` (at least 1). More than the cells is an error.
    tau
        Discount of ``theta`` for small batches, ``theta * (1 - exp(-(N_b / (K tau))^2))``; 0 switches it off.
    block_size
        Fraction of the cells whose assignments are updated together (0.05).
    max_iter, max_iter_cluster
        Outer iterations (10) and soft k-means iterations per outer iteration (20).
    epsilon_cluster, epsilon_harmony
        Convergence thresholds of the clustering (1e-5) and of the outer loop (1e-4).
    use_rep
        ``adata.obsm`` key of the embedding to correct; ``"auto"``: ``"X_pca"`` when present (and no ``layer`` or
        declared ``input``), else the PCA of the expression values; ``None``: always the expression values.
    n_comps, n_features
        PCs (30) and integration features (2,000) of that PCA; more PCs than cells or features is an error.
    store_assignments
        Also write the soft assignments (cells x K) to ``obsm["harmony_soft"]`` (they are always kept in
        ``assignments_``).
    seed, device, progress
        Seed of the K-means start and of the block order; "auto" | "cpu" | "cuda"; progress messages.

    Example
    -------
    >>> model = Harmony(theta=[2.0, 1.0]).fit(adata, batch_key=["donor", "chemistry"])  # doctest: +SKIP
    >>> model.objective_, model.assignments_.shape  # doctest: +SKIP
    """

    method = "harmony"

    def __init__(self, *, theta: Union[float, List[float]] = 2.0, sigma: float = 0.1,
                 lamb: Optional[Union[float, List[float]]] = 1.0, alpha: float = 0.2,
                 n_clusters: Optional[int] = None, tau: float = 0.0, block_size: float = 0.05,
                 max_iter: int = 10, max_iter_cluster: int = 20, epsilon_cluster: float = 1e-5,
                 epsilon_harmony: float = 1e-4, use_rep: Optional[str] = "auto", n_comps: int = 30,
                 n_features: int = 2000, store_assignments: bool = False, seed: int = 0, device: str = "auto",
                 progress: bool = False):
        # lamb = 0 leaves [1, Phi] singular (the batch columns of a covariate sum to the intercept)
        theta, lamb = _numbers(theta, "theta", 0.0), None if lamb is None else _numbers(lamb, "lamb", 0.0, True)
        for name, value in (("sigma", sigma), ("alpha", alpha)):
            if not float(value) > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if not 0 < float(block_size) <= 1:
            raise ValueError(f"block_size must be in (0, 1], got {block_size!r}")
        if n_clusters is not None and int(n_clusters) < 1:
            raise ValueError(f"n_clusters must be >= 1 or None, got {n_clusters!r}")
        if float(tau) < 0 or float(epsilon_cluster) < 0 or float(epsilon_harmony) < 0:
            raise ValueError("tau, epsilon_cluster and epsilon_harmony must be >= 0")
        if int(max_iter) < 1 or int(max_iter_cluster) < 1 or int(n_comps) < 1 or int(n_features) < 2:
            raise ValueError(f"max_iter, max_iter_cluster and n_comps must be >= 1 and n_features >= 2, got "
                             f"{max_iter}, {max_iter_cluster}, {n_comps}, {n_features}")
        if use_rep is not None and not isinstance(use_rep, str):
            raise ValueError(f"use_rep must be an obsm key, 'auto' or None, got {use_rep!r}")
        self._setup({"theta": theta, "sigma": float(sigma), "lamb": lamb, "alpha": float(alpha),
                     "n_clusters": None if n_clusters is None else int(n_clusters), "tau": float(tau),
                     "block_size": float(block_size), "max_iter": int(max_iter),
                     "max_iter_cluster": int(max_iter_cluster), "epsilon_cluster": float(epsilon_cluster),
                     "epsilon_harmony": float(epsilon_harmony), "use_rep": use_rep, "n_comps": int(n_comps),
                     "n_features": int(n_features), "store_assignments": bool(store_assignments)},
                    seed=seed, device=device, progress=progress)

    def _input_rep(self, adata, *, layer, input) -> Optional[str]:
        rep = self.params["use_rep"]
        if rep == "auto":
            return "X_pca" if layer is None and input == "auto" and "X_pca" in adata.obsm else None
        return rep

    # ------------------------------------------------------------------ fit
    def _fit(self, adata, data) -> None:
        import torch

        from ._harmony_core import run_harmony

        Z = self._embedding_in(data)
        n = Z.shape[0]
        keys = list(data.covariates)
        n_levels = [len(levels) for _, levels in data.covariates.values()]
        for name in ("theta", "lamb"):
            value = self.params[name]
            if isinstance(value, list) and len(value) != len(keys):
                raise ValueError(f"{name} has {len(value)} values for {len(keys)} batch column(s) {keys}")
        K = self.params["n_clusters"] or max(1, min(100, int(round(n / 30.0))))
        if K > n:
            raise ValueError(f"n_clusters={K} is more than the {n} cells; pass n_clusters <= {n} (or None)")
        codes = torch.as_tensor(np.stack([c for c, _ in data.covariates.values()], axis=1))
        p = self.params

        def report(it, fit):
            if self.progress:
                print(f"harmony {it + 1}/{p['max_iter']}: objective {fit.objective_harmony[-1]:.6g}", flush=True)

        with self._stage("harmony"):
            fit = run_harmony(torch.as_tensor(Z, device=self.device), codes, n_levels, theta=p["theta"],
                              sigma=p["sigma"], lamb=p["lamb"], alpha=p["alpha"], n_clusters=K, tau=p["tau"],
                              block_size=p["block_size"], max_iter=p["max_iter"],
                              max_iter_cluster=p["max_iter_cluster"], epsilon_cluster=p["epsilon_cluster"],
                              epsilon_harmony=p["epsilon_harmony"], generator=_generator(self.seed), callback=report)
        self.embedding_ = fit.Z_corr.detach().cpu().numpy().astype(np.float32, copy=False)
        self.assignments_ = fit.R.detach().cpu().numpy().astype(np.float32, copy=False)
        self.centroids_ = fit.Y.detach().cpu().numpy().astype(np.float32, copy=False)
        self.objective_ = [float(v) for v in fit.objective_harmony]
        self.kmeans_rounds_ = [int(v) for v in fit.kmeans_rounds]
        self.n_iter_, self.converged_, self.n_clusters_ = int(fit.n_iter), bool(fit.converged), int(K)
        if not self.converged_:
            last = abs(self.objective_[-2] - self.objective_[-1]) / max(abs(self.objective_[-2]), 1e-12)
            warnings.warn(f"Harmony stopped after max_iter={p['max_iter']} iterations before converging (relative "
                          f"change of the objective {last:.2g} > epsilon_harmony={p['epsilon_harmony']:g}); "
                          "raise max_iter for a converged result", UserWarning, stacklevel=3)

    def _embedding_in(self, data) -> np.ndarray:
        """The embedding to correct: ``obsm[use_rep]`` as given, or the Seurat-style PCA of the values."""
        self.normalized_, self.feature_selection_ = False, "none (embedding input)"
        if data.kind == "embedding":
            return np.ascontiguousarray(data.X, dtype=np.float32)
        from .. import pp

        sizes = np.bincount(data.batch, minlength=len(data.batch_levels))
        if sizes.min() < 2:  # features are chosen per batch (of the first column), and vst needs 2 cells
            raise ValueError(f"batch {data.batch_levels[int(sizes.argmin())]!r} has 1 cell: the PCA of expression "
                             "values needs >= 2 cells per batch; merge it into another batch, or pass an embedding "
                             "(use_rep), where single-cell batches are fine")
        work = data.to_anndata("batch")
        with self._stage("input_pcs"):
            features, how = pp.normalize_and_select(work, batch_key="batch", n_features=self.params["n_features"],
                                                    counts=data.is_counts)
            n_comps = self.params["n_comps"]
            if n_comps > min(work.n_obs, len(features)) - 1:
                raise ValueError(f"n_comps={n_comps} PCs need more than {n_comps} cells and features; this data has "
                                 f"{work.n_obs} cells and {len(features)} features: lower n_comps")
            pp.scale_data(work, features=features)
            pp.run_pca(work, n_comps=n_comps, seed=self.seed)
        self.normalized_, self.feature_selection_ = bool(data.is_counts), how
        return np.asarray(work.obsm["X_pca"], dtype=np.float32)

    # ------------------------------------------------------------------ outputs and state
    def _info(self) -> dict:
        return {"objective": np.asarray(self.objective_, dtype=float), "kmeans_rounds": list(self.kmeans_rounds_),
                "n_iter": self.n_iter_, "converged": self.converged_, "n_clusters": self.n_clusters_,
                "normalized": self.normalized_, "feature_selection": self.feature_selection_}

    def _outputs(self) -> dict:
        out = {"info": self._info()}
        if self.params["store_assignments"]:
            out["obsm"] = {SOFT_KEY: self.assignments_}
        return out

    def _fitted_state(self):
        state = {k: v for k, v in self._info().items() if k != "objective"}
        return state, {"objective": np.asarray(self.objective_, dtype=float), "assignments": self.assignments_,
                       "centroids": self.centroids_}

    def _restore_state(self, state, arrays) -> None:
        self.objective_ = arrays["objective"].tolist()
        self.assignments_, self.centroids_ = arrays["assignments"], arrays["centroids"]
        self.kmeans_rounds_ = [int(v) for v in state["kmeans_rounds"]]
        self.n_iter_, self.converged_, self.n_clusters_ = state["n_iter"], state["converged"], state["n_clusters"]
        self.normalized_, self.feature_selection_ = state["normalized"], state["feature_selection"]


def _numbers(value, name: str, low: float, strict: bool = False):
    """A float, or a list of floats (one per covariate), each >= ``low`` (> ``low`` when ``strict``)."""
    vals = list(value) if isinstance(value, (list, tuple)) else [value]
    try:
        out = [float(v) for v in vals]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or a list of numbers, got {value!r}") from None
    if not out or any(not np.isfinite(v) or v < low or (strict and v == low) for v in out):
        raise ValueError(f"{name} must be finite and {'>' if strict else '>='} {low:g}, got {value!r}")
    return out if isinstance(value, (list, tuple)) else out[0]


def _generator(seed: int):
    from .._device import torch_generator

    return torch_generator(seed)
