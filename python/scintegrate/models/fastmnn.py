"""fastMNN: mutual nearest neighbours in a multi-batch PCA, merged batch by batch (registry name ``"fastmnn"``).

Haghverdi, Lun, Morgan & Marioni (2018) "Batch effects in single-cell RNA-sequencing data are corrected by
matching mutual nearest neighbors", Nature Biotechnology 36:421, in the form of Bioconductor batchelor's
``fastMNN`` (Lun), with its defaults (``k`` 20, ``d`` 50, ``ndist`` 3, ``cos.norm=TRUE``):

1. input: raw counts are log-normalised, and the integration features chosen, as for the uncorrected baseline
   (:mod:`scintegrate.pp`); other values are taken as they are; each cell is scaled to unit length (cosine
   normalisation);
2. a PCA to ``d`` dimensions in which each batch weighs the same (batchelor's ``multiBatchPCA``);
3. the batches merged one at a time onto everything merged before them: MNN pairs (``k`` each way), the
   correction vectors averaged per paired cell, the variation along the average batch vector removed within
   each side, the corrections smoothed over every cell of the merged batch by a tricube kernel of bandwidth
   ``ndist`` times the distance to its middle paired neighbour (:mod:`scintegrate.models._fastmnn_core`).

The merge order: by default the largest batch is the reference (the paper's advice: the largest, most
heterogeneous batch) and the others follow by decreasing size (ties by name), so nothing depends on the order
of the cells or of the batch categories; ``merge_order="auto"`` is batchelor's ``auto.merge`` (the two groups
with the most MNN pairs first, recounted after each merge: more searches); a list of batch names gives the
order. The MNN pairs, the merge order and the share of each batch's variance lost at each merge (batchelor's
``lost.var``) are kept on the model. Batches smaller than ``k`` cap ``k`` for their merges, with a warning; a
merge in which few cells find a mutual neighbour is warned about.

Example
-------
>>> import scintegrate as si
>>> from scintegrate.models import FastMNN
>>> adata = si.datasets.simulate_counts(n_cells=300, n_genes=200, seed=0)
>>> FastMNN(d=20).fit(adata, batch_key="batch").embed().shape
(300, 20)
"""

from __future__ import annotations

import warnings

import numpy as np

from ._base import IntegrationModel

#: a merge in which fewer than this share of the merged batch's cells are in an MNN pair is warned about
FEW_PAIRED = 0.02


class FastMNN(IntegrationModel):
    """fastMNN's corrected low-dimensional coordinates (batchelor's ``reducedDim(, "corrected")``).

    Parameters
    ----------
    k
        Nearest neighbours of each cell in the other group, for the mutual pairs and for the smoothing (20).
    d
        Dimensions of the multi-batch PCA and of the embedding (50; capped, with a warning, at
        ``min(n_cells - 1, n_features)``).
    ndist
        Bandwidth of the tricube kernel, in multiples of the distance to the middle paired neighbour (3).
    cos_norm
        Scale each cell's expression to unit length before the PCA (on, as batchelor).
    merge_order
        ``None`` (the largest batch first, then by decreasing size), ``"auto"`` (batchelor's ``auto.merge``) or
        the batch names in merge order.
    n_features
        Integration features of count data (2,000, as the uncorrected baseline).
    pca_weighting
        ``"batch"`` (default, batchelor's: each batch weighs the same in the PCA) or ``"cell"`` (each cell weighs
        the same: a plain PCA). With a batch much smaller than the others, equal batch weights give its own noise
        most of the trailing components, and its cells stay apart after the merges (``fastmnn_design.md``);
        ``"cell"`` avoids that.
    knn_method
        ``"exact"``, ``"ivf"`` (inverted lists for a side of more than 20,000 cells, exact below: the merges onto
        a large reference cost a tenth of the exact search and most pairs are the same, see
        ``benchmarks/results/fastmnn_design.md``) or ``"auto"`` (default: ``"ivf"`` on the CPU, ``"exact"`` on
        CUDA, where the exact search is fast).
    seed, device, progress
        Seed of the randomized SVD and the inverted lists; "auto" | "cpu" | "cuda"; a bar over the merges.
    """

    method = "fastmnn"

    def __init__(self, *, k: int = 20, d: int = 50, ndist: float = 3.0, cos_norm: bool = True, merge_order=None,
                 n_features: int = 2000, pca_weighting: str = "batch", knn_method: str = "auto", seed: int = 0,
                 device: str = "auto", progress: bool = False):
        if pca_weighting not in ("batch", "cell"):
            raise ValueError(f"pca_weighting must be 'batch' or 'cell', got {pca_weighting!r}")
        if knn_method not in ("auto", "exact", "ivf"):
            raise ValueError(f"knn_method must be 'auto', 'exact' or 'ivf', got {knn_method!r}")
        if int(k) < 1 or int(d) < 1 or int(n_features) < 2 or not float(ndist) > 0:
            raise ValueError(f"k and d must be >= 1, n_features >= 2 and ndist > 0, got {k}, {d}, {n_features}, "
                             f"{ndist}")
        if merge_order is not None and merge_order != "auto":
            if isinstance(merge_order, str) or not all(isinstance(b, str) for b in merge_order):
                raise ValueError(f"merge_order must be None, 'auto' or a list of batch names, got {merge_order!r}")
            merge_order = [str(b) for b in merge_order]
        self._setup({"k": int(k), "d": int(d), "ndist": float(ndist), "cos_norm": bool(cos_norm),
                     "merge_order": merge_order, "n_features": int(n_features), "pca_weighting": pca_weighting,
                     "knn_method": knn_method},
                    seed=seed, device=device, progress=progress)

    def _fit(self, adata, data) -> None:
        from . import _fastmnn_core as core
        from ._mnn_common import unit_length_features

        p = self.params
        with self._stage("input"):
            X, features, how = unit_length_features(data, p["n_features"], scale=p["cos_norm"])
        names = sorted(str(b) for b in data.batch_levels)
        codes = np.searchsorted(names, np.asarray(data.batch_levels).astype(str)[data.batch])
        cells = [np.flatnonzero(codes == b) for b in range(len(names))]
        order = self._merge_order(names, cells)
        self._warn_small(names, cells)
        d = int(min(p["d"], X.shape[0] - 1, X.shape[1]))
        if d < p["d"]:
            warnings.warn(f"d={p['d']} capped at {d} (min(n_cells - 1, n_features) = min({X.shape[0] - 1}, "
                          f"{X.shape[1]}))", UserWarning, stacklevel=3)
        with self._stage("multibatch_pca"):
            if p["pca_weighting"] == "batch":
                E, _, _ = core.multibatch_pca(X, codes, len(names), d, seed=self.seed, device=self.device)
            else:  # one group: every cell weighs the same, centred on the mean cell
                E, _, _ = core.multibatch_pca(X, np.zeros_like(codes), 1, d, seed=self.seed, device=self.device)
        with self._stage("merging"):
            bar = None
            if self.progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(names) - 1, desc="fastMNN merges")
            try:
                knn_method = p["knn_method"]
                if knn_method == "auto":
                    knn_method = "exact" if self.device.type == "cuda" else "ivf"
                out = core.merge_all(E, cells, order, k=p["k"], ndist=p["ndist"], knn_method=knn_method,
                                     seed=self.seed,
                                     progress=None if bar is None else (lambda step: bar.update(1)))
            finally:
                if bar is not None:
                    bar.close()
        self._warn_few_pairs(names, out)
        corrected = out.corrected.cpu().numpy().astype(np.float32)
        if not np.isfinite(corrected).all():  # pragma: no cover - guarded by the clamps of the core
            raise FloatingPointError("fastMNN produced non-finite coordinates")
        self.embedding_ = corrected
        self.features_, self.feature_selection_ = [str(f) for f in features], how
        self.batches_ = np.asarray(names, dtype=str)
        self.merges_ = np.asarray([f"{'+'.join(names[b] for b in l)} <- {'+'.join(names[b] for b in r)}"
                                   for l, r in zip(out.left, out.right)], dtype=str)
        self.merge_order_ = [names[b] for b in out.left[-1] + out.right[-1]]  # the order batches joined in
        self.pairs_ = np.concatenate([np.column_stack([np.full(len(pr), s), pr]) for s, pr in enumerate(out.pairs)]
                                     ).astype(np.int64) if out.pairs else np.zeros((0, 3), np.int64)
        self.lost_variance_ = np.asarray(out.lost_variance, dtype=float)
        self.paired_share_ = np.asarray(out.paired_share, dtype=float)
        self.batch_magnitude_ = np.asarray(out.magnitude, dtype=float)

    # ------------------------------------------------------------------ merge order and warnings
    def _merge_order(self, names, cells):
        given = self.params["merge_order"]
        if given == "auto":
            return None
        if given is None:  # the largest batch first; ties by name
            return sorted(range(len(names)), key=lambda b: (-len(cells[b]), names[b]))
        missing, unknown = sorted(set(names) - set(given)), sorted(set(given) - set(names))
        if missing or unknown or len(given) != len(set(given)):
            raise ValueError(f"merge_order must name every batch once; missing {missing}, unknown {unknown}, "
                             f"given {given}")
        return [names.index(b) for b in given]

    def _warn_small(self, names, cells) -> None:
        k = self.params["k"]
        small = [(names[b], len(c)) for b, c in enumerate(cells) if len(c) < k]
        if small:
            listed = ", ".join(f"{b!r}: {n}" for b, n in small[:3]) + (" ..." if len(small) > 3 else "")
            warnings.warn(f"{len(small)} batch(es) hold fewer than k={k} cells ({listed}); k is capped at their "
                          f"size for the merges they take part in", UserWarning, stacklevel=4)

    def _warn_few_pairs(self, names, out) -> None:
        for left, right, share, pairs in zip(out.left, out.right, out.paired_share, out.pairs):
            if share < FEW_PAIRED:
                warnings.warn(f"few mutual nearest neighbour pairs when merging {'+'.join(names[b] for b in right)} "
                              f"onto {'+'.join(names[b] for b in left)}: {len(pairs)} pairs, {share:.1%} of its "
                              f"cells; the batches may share no cell type, and the correction rests on few cells",
                              UserWarning, stacklevel=4)

    # ------------------------------------------------------------------ outputs and saving
    def _outputs(self) -> dict:
        n_pairs = np.bincount(self.pairs_[:, 0], minlength=len(self.merges_))
        return {"info": {"features": np.asarray(self.features_, dtype=str),
                         "feature_selection": self.feature_selection_, "d": int(self.embedding_.shape[1]),
                         "merge_order": np.asarray(self.merge_order_, dtype=str), "merges": self.merges_,
                         "n_pairs": n_pairs, "paired_share": self.paired_share_,
                         "batch_magnitude": self.batch_magnitude_, "lost_variance": self.lost_variance_,
                         "batches": self.batches_}}

    def _fitted_state(self):
        return ({"feature_selection": self.feature_selection_, "merge_order": list(self.merge_order_)},
                {"features": np.asarray(self.features_, dtype=str), "batches": self.batches_, "merges": self.merges_,
                 "pairs": self.pairs_, "lost_variance": self.lost_variance_, "paired_share": self.paired_share_,
                 "batch_magnitude": self.batch_magnitude_})

    def _restore_state(self, state, arrays) -> None:
        self.feature_selection_, self.merge_order_ = state["feature_selection"], list(state["merge_order"])
        self.features_ = arrays["features"].tolist()
        self.batches_, self.merges_, self.pairs_ = arrays["batches"], arrays["merges"], arrays["pairs"]
        self.lost_variance_, self.paired_share_ = arrays["lost_variance"], arrays["paired_share"]
        self.batch_magnitude_ = arrays["batch_magnitude"]
