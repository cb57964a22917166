"""Scanorama: panoramic stitching of batches along mutual nearest neighbours (registry name ``"scanorama"``).

Hie, Bryson & Berger (2019) "Efficient integration of heterogeneous single-cell transcriptomes using
Scanorama", Nature Biotechnology 37:685. Our implementation in torch/numpy of the package's ``integrate``
(brianhie/scanorama 1.7), with its defaults (``dimred`` 100, ``knn`` 20, ``alpha`` 0.10, ``sigma`` 15,
``batch_size`` 5,000):

1. input: raw counts are log-normalised, and the integration features chosen, as for the uncorrected
   baseline (:mod:`scintegrate.pp`); other values are taken as they are; each cell is scaled to unit length;
2. a centred randomized SVD of all cells together to ``dimred`` dimensions (the embedding);
3. mutual nearest neighbours between every pair of batches on the embedding scaled to unit length: each
   cell's ``knn`` neighbours among the cells of all other batches, with the package's Manhattan distance
   (exact blocked torch search up to 20,000 cells on the CPU, inverted lists in torch above; pynndescent as
   an option; the package's Annoy is not used: it crashes on some CPUs, scanorama issue 153);
4. the panorama graph: edge weight ``max(n_i^M / n_i, n_j^M / n_j)``, edges above ``alpha``, heaviest first;
5. merges along the edges: a batch (or panorama) moves by the Gaussian-smoothed translation vectors of its
   matches, ``exp(-sigma / 2 * d^2)`` weights as the package's kernel (so a larger ``sigma`` is narrower).

The numeric core is :mod:`scintegrate.models._scanorama_core`. Unlike the package (scanorama issue 149,
scib issue 292) the result does not depend on the order of the cells or of the batches: neighbours are
searched among all other batches at once (the package: the batches before, then after, each one), batches
are numbered in the order of their names and ties of the merge order are broken by the data. A batch whose
cells find few mutual neighbours (it shares no cell type with the others) is left where it is, with a
warning; with only two batches mutual neighbours always exist, and MNN cannot tell that the batches share
nothing (as in the package). The package's ``sketch`` option is not offered. Measured against the
package: ``benchmarks/results/scanorama_conformance.md`` and ``scanorama_speed.json``.

Example
-------
>>> import scintegrate as si
>>> from scintegrate.models import Scanorama
>>> adata = si.datasets.simulate_counts(n_cells=300, n_genes=200, seed=0)
>>> Scanorama(dimred=20, progress=False).fit(adata, batch_key="batch").embed().shape
(300, 20)
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from ._base import IntegrationModel


class Scanorama(IntegrationModel):
    """Scanorama's integrated embedding (and, optionally, its corrected expression).

    Parameters
    ----------
    dimred
        Dimensions of the SVD and of the embedding (100, the package's; capped, with a warning, at
        ``min(n_cells - 1, n_features)``).
    knn
        Neighbours of each cell among the cells of the other batches, for the mutual nearest neighbours (20).
    alpha
        Edges of the panorama graph with weight at most ``alpha`` are not merged (0.10).
    sigma
        Width parameter of the Gaussian kernel ``exp(-sigma / 2 * d^2)`` that smooths the translation
        vectors (15; larger is narrower, as in the package).
    batch_size
        Matches per block of the kernel computation (5,000; memory only, the result is the same).
    n_features
        Integration features of count data (2,000, as the uncorrected baseline).
    metric
        Distance of the neighbour search: ``"manhattan"`` (the package's) or ``"euclidean"`` (faster).
    knn_method
        ``"auto"`` (exact on CUDA or up to 20,000 cells, else ``"ivf"``), ``"exact"``, ``"ivf"`` (torch
        k-means lists, the nearest 10% of lists searched exactly: most, not all, of the exact neighbours, and
        more than the package's Annoy finds) or ``"nndescent"`` (pynndescent).
    return_corrected
        Also return the corrected expression as ``layers["scanorama_corrected"]`` (off): a sparse matrix of
        the data's shape, the unit-length expression of the integration features after the same merges
        (kernel distances in gene space, as the package) in their columns, zero in the other genes'.
    seed, device, progress
        Seed of the randomized SVD, the inverted lists and pynndescent; "auto" | "cpu" | "cuda"; accepted, no bar is shown.
    """

    method = "scanorama"

    def __init__(self, *, dimred: int = 100, knn: int = 20, alpha: float = 0.10, sigma: float = 15.0,
                 batch_size: int = 5000, n_features: int = 2000, metric: str = "manhattan",
                 knn_method: str = "auto", return_corrected: bool = False, seed: int = 0, device: str = "auto",
                 progress: bool = False):
        if int(dimred) < 1 or int(knn) < 1 or int(batch_size) < 1 or int(n_features) < 2:
            raise ValueError(f"dimred, knn and batch_size must be >= 1 and n_features >= 2, got {dimred}, {knn}, "
                             f"{batch_size}, {n_features}")
        if not (0.0 <= float(alpha) < 1.0) or not float(sigma) > 0:
            raise ValueError(f"alpha must be in [0, 1) and sigma > 0, got {alpha}, {sigma}")
        if metric not in ("manhattan", "euclidean"):
            raise ValueError(f"metric must be 'manhattan' or 'euclidean', got {metric!r}")
        if knn_method not in ("auto", "exact", "ivf", "nndescent"):
            raise ValueError(f"knn_method must be 'auto', 'exact', 'ivf' or 'nndescent', got {knn_method!r}")
        self._setup({"dimred": int(dimred), "knn": int(knn), "alpha": float(alpha), "sigma": float(sigma),
                     "batch_size": int(batch_size), "n_features": int(n_features), "metric": metric,
                     "knn_method": knn_method, "return_corrected": bool(return_corrected)},
                    seed=seed, device=device, progress=progress)

    def _fit(self, adata, data) -> None:
        from . import _scanorama_core as core
        from ._mnn_common import unit_length_features

        p = self.params
        with self._stage("input"):
            X, features, how = unit_length_features(data, p["n_features"])
        names = sorted(data.batch_levels)  # batches in the order of their names: nothing depends on input order
        codes = np.searchsorted(names, np.asarray(data.batch_levels)[data.batch])
        cells = [np.flatnonzero(codes == b) for b in range(len(names))]
        dimred = int(min(p["dimred"], X.shape[0] - 1, X.shape[1]))
        if dimred < p["dimred"]:
            warnings.warn(f"dimred={p['dimred']} capped at {dimred} (min(n_cells - 1, n_features) = "
                          f"min({X.shape[0] - 1}, {X.shape[1]}))", UserWarning, stacklevel=3)
        with self._stage("svd"):
            E = core.randomized_pca(X, dimred, seed=self.seed, device=self.device)
        with self._stage("matching"):
            matches = core.find_matches(E, cells, knn=p["knn"], metric=p["metric"], method=p["knn_method"],
                                        device=self.device, seed=self.seed)
            scores = core.alignment_scores(matches, [len(c) for c in cells])
            order = core.merge_order(scores, matches, alpha=p["alpha"])
        self._warn_unmatched(names, scores, order)
        with self._stage("merging"):
            steps = core.assemble(E, cells, matches, order, sigma=p["sigma"], batch_size=p["batch_size"])
        self.embedding_ = E.cpu().numpy().astype(np.float32)
        self.corrected_ = None
        if p["return_corrected"]:
            with self._stage("corrected"):
                self.corrected_ = self._corrected(X, steps, adata.n_vars, data.genes, features)
        self.features_, self.feature_selection_ = [str(f) for f in features], how
        self.merges_ = np.asarray([f"{names[i]} <-> {names[j]}" for i, j, *_ in steps], dtype=str)
        self.edges_ = np.asarray([f"{names[i]} <-> {names[j]}" for i, j in order], dtype=str)
        self.edge_scores_ = np.asarray([scores[e] for e in order], dtype=float)
        self.n_matches_ = int(sum(len(a) for a, _ in matches.values()))

    def _warn_unmatched(self, names, scores, order) -> None:
        alpha = self.params["alpha"]
        if not order:
            best = max(scores.values(), default=0.0)
            warnings.warn(f"few mutual nearest neighbour pairs: no pair of batches has an alignment score above "
                          f"alpha {alpha} (best {best:.3f}); nothing merged, the embedding is the uncorrected SVD",
                          UserWarning, stacklevel=3)
            return
        linked = {b for e in order for b in e}
        alone = [b for b in range(len(names)) if b not in linked]
        if alone:
            best = max([s for e, s in scores.items() if alone[0] in e], default=0.0)
            more = f" (and {len(alone) - 1} more)" if len(alone) > 1 else ""
            warnings.warn(f"few mutual nearest neighbour pairs: batch {names[alone[0]]!r}{more} shares too few with "
                          f"the others (best alignment score {best:.3f} <= alpha {alpha}); left uncorrected",
                          UserWarning, stacklevel=3)

    def _corrected(self, X, steps, n_vars, genes, features):
        """The unit-length expression of the features after the merges, as a CSR matrix of the data's shape."""
        import torch

        from . import _scanorama_core as core

        dense = X.toarray() if sp.issparse(X) else np.asarray(X)
        T = torch.as_tensor(dense, dtype=torch.float32, device=self.device)
        out = core.replay(T, steps, sigma=self.params["sigma"], batch_size=self.params["batch_size"])
        from ._mnn_common import features_layer

        return features_layer(out.cpu().numpy(), n_vars, genes, features)

    def _outputs(self) -> dict:
        out = {"info": {"features": np.asarray(self.features_, dtype=str), "feature_selection": self.feature_selection_,
                        "dimred": int(self.embedding_.shape[1]), "edges": self.edges_, "edge_scores": self.edge_scores_,
                        "merges": self.merges_, "n_matches": self.n_matches_}}
        if getattr(self, "corrected_", None) is not None:
            out["layers"] = {f"{self.method}_corrected": self.corrected_}
        return out

    def _fitted_state(self):
        return ({"feature_selection": self.feature_selection_, "n_matches": self.n_matches_},
                {"features": np.asarray(self.features_, dtype=str), "edges": self.edges_,
                 "edge_scores": self.edge_scores_, "merges": self.merges_})

    def _restore_state(self, state, arrays) -> None:
        self.feature_selection_, self.n_matches_ = state["feature_selection"], int(state["n_matches"])
        self.features_ = arrays["features"].tolist()
        self.edges_, self.edge_scores_, self.merges_ = arrays["edges"], arrays["edge_scores"], arrays["merges"]
        self.corrected_ = None
