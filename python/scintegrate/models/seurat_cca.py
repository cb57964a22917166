"""Seurat v3 integration with CCA anchors (registry name ``"seurat_cca"``).

Stuart, Butler et al. (2019) "Comprehensive integration of single-cell data", Cell 177:1888, as Seurat 4.3's
``FindIntegrationAnchors(reduction = "cca")`` + ``IntegrateData`` with their defaults (2,000 integration
features, ``dims`` 30, ``k.anchor`` 5, ``k.filter`` 200, ``k.score`` 30, ``k.weight`` 100, ``sd.weight`` 1), then
the standard ``ScaleData`` + ``RunPCA`` (30 components) of the integrated values:

1. input: raw counts are log-normalised and the integration features chosen by ``SelectIntegrationFeatures``
   over per-batch vst (:mod:`scintegrate.pp`); other values are taken as they are; each batch scaled on its own;
2. anchors between every pair of batches, filtered and scored (:mod:`scintegrate.models._seurat_core`);
3. the batches merged along the guide tree (complete linkage on ``min(n_i, n_j) / anchors``), the larger group
   the reference, each query corrected by its anchor-weighted differences.

Where Seurat stops or crashes (a batch with fewer cells than ``dims``, fewer anchor cells than ``k.weight``),
ours caps the neighbourhood sizes, warns and integrates. Outputs: ``obsm["X_seurat_cca"]`` and, with
``return_corrected`` (on), ``layers["seurat_cca_corrected"]`` (the integrated values in the feature columns,
zero elsewhere); the anchors, the guide tree and the merges are kept on the model.

Example
-------
>>> import scintegrate as si
>>> from scintegrate.models import SeuratCCA
>>> adata = si.datasets.simulate_counts(n_cells=300, n_genes=200, seed=0)
>>> SeuratCCA(n_features=150).fit(adata, batch_key="batch").embed().shape
(300, 30)
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from ._base import IntegrationModel


class SeuratCCA(IntegrationModel):
    """Seurat v3 CCA anchor integration.

    Parameters
    ----------
    n_features
        Integration features (2,000).
    dims
        Canonical vectors for the anchors and principal components for the weights (30; capped, with a
        warning, below the smallest batch).
    k_anchor, k_filter, k_score, k_weight
        Neighbours for finding (5), filtering (200), scoring (30) and weighting (100) anchors.
    sd_weight
        Bandwidth of the Gaussian weights of the anchors (1).
    n_pcs
        Components of the PCA of the scaled integrated values (the embedding; 30).
    reduction
        ``"cca"`` (Seurat's default) or ``"rpca"``: reciprocal PCA, each batch's own PCA (``dims`` components) with
        the other batch projected onto it; faster on large data, no anchor filtering (as Seurat).
    return_corrected
        Also return the integrated values as ``layers["seurat_cca_corrected"]`` (on).
    seed, device, progress
        Seed of the PCAs; "auto" | "cpu" | "cuda" (the neighbour searches); a bar over the pairs and merges.
    """

    method = "seurat_cca"

    def __init__(self, *, n_features: int = 2000, dims: int = 30, k_anchor: int = 5, k_filter: int = 200,
                 k_score: int = 30, k_weight: int = 100, sd_weight: float = 1.0, n_pcs: int = 30,
                 reduction: str = "cca", return_corrected: bool = True, seed: int = 0, device: str = "auto",
                 progress: bool = False):
        ints = {"n_features": n_features, "dims": dims, "k_anchor": k_anchor, "k_filter": k_filter,
                "k_score": k_score, "k_weight": k_weight, "n_pcs": n_pcs}
        bad = {k: v for k, v in ints.items() if int(v) < 1}
        if reduction not in ("cca", "rpca"):
            raise ValueError(f"reduction must be 'cca' or 'rpca', got {reduction!r}")
        if bad or int(n_features) < 2 or not float(sd_weight) > 0:
            raise ValueError(f"n_features must be >= 2, sd_weight > 0 and the others >= 1, got "
                             f"{bad or {'n_features': n_features, 'sd_weight': sd_weight}}")
        self._setup({**{k: int(v) for k, v in ints.items()}, "sd_weight": float(sd_weight), "reduction": reduction,
                     "return_corrected": bool(return_corrected)}, seed=seed, device=device, progress=progress)

    def _fit(self, adata, data) -> None:
        from ..pp.pca import pca
        from ..pp.scale import scale_matrix
        from . import _seurat_core as core
        from ._mnn_common import features_layer, unit_length_features

        p = self.params
        with self._stage("input"):
            X, features, how = unit_length_features(data, p["n_features"], scale=False)
            X = sp.csr_matrix(X, dtype=np.float32)
        names = sorted(str(b) for b in data.batch_levels)
        codes = np.searchsorted(names, np.asarray(data.batch_levels).astype(str)[data.batch])
        cells = [np.flatnonzero(codes == b) for b in range(len(names))]
        dims = self._capped_dims(names, cells, X.shape[1])
        bar = self._bar(len(names) * (len(names) - 1) // 2 + len(names) - 1)
        with self._stage("anchors"):
            scaled = [scale_matrix(X[c].toarray(), max_value=10.0) for c in cells]
            rpca = p["reduction"] == "rpca"
            if rpca:  # each batch's own PCA (Seurat: RunPCA per object before FindIntegrationAnchors)
                own = [pca(z, dims, seed=self.seed)[:2] for z in scaled]
            else:
                dtype = np.float64 if X.shape[0] * X.shape[1] <= 4e7 else np.float32  # QR factors above 20k x 2k
                factors = [core.cca_factor(z, dtype) for z in scaled]
            anchors, small = {}, []
            for i in range(len(names)):
                for j in range(i + 1, len(names)):
                    if rpca:
                        found = core.find_anchors_rpca(own[i], own[j], scaled[i], scaled[j], k_anchor=p["k_anchor"],
                                                       k_score=p["k_score"], device=self.device)
                    else:
                        found = core.find_anchors(scaled[i], scaled[j], X[cells[i]], X[cells[j]], dims=dims,
                                                  k_anchor=p["k_anchor"], k_filter=p["k_filter"],
                                                  k_score=p["k_score"], factors=(factors[i], factors[j]),
                                                  device=self.device)
                    anchors[(i, j)] = found
                    if not found["filtered"]:
                        small.append(f"{names[i]}/{names[j]}")
                    bar.update(1)
        if small:
            warnings.warn(f"{len(small)} pair(s) of batches hold fewer than k_filter={p['k_filter']} cells "
                          f"({', '.join(small[:3])}{' ...' if len(small) > 3 else ''}): their anchors are kept "
                          "unfiltered, as Seurat does", UserWarning, stacklevel=3)
        similarity = np.zeros((len(names), len(names)))
        for (i, j), found in anchors.items():
            similarity[i, j] = similarity[j, i] = 2 * found["cell1"].size / min(len(cells[i]), len(cells[j]))
        tree = core.guide_tree(similarity)
        values = X.toarray()
        merges = []
        with self._stage("integration"):
            for left, right in tree:  # the larger group is the reference (Seurat: ties keep the first)
                n_left, n_right = (sum(len(cells[b]) for b in group) for group in (left, right))
                ref, query = (right, left) if n_right > n_left else (left, right)
                merges.append(self._merge(values, cells, names, anchors, ref, query, dims))
                bar.update(1)
        bar.close()
        with self._stage("integrated_pca"):
            n_pcs = int(min(p["n_pcs"], values.shape[0] - 1, values.shape[1] - 1))
            embedding, _, _ = pca(scale_matrix(values, max_value=10.0), n_pcs, seed=self.seed)
        self.embedding_ = np.asarray(embedding, dtype=np.float32)
        self.corrected_ = features_layer(values, adata.n_vars, data.genes, features) if p[
            "return_corrected"] else None
        self.features_, self.feature_selection_ = [str(f) for f in features], how
        self.batches_ = np.asarray(names, dtype=str)
        self.anchors_ = self._anchor_table(anchors, cells)
        self.merges_ = np.asarray([m["label"] for m in merges], dtype=str)
        self.merge_info_ = [{k: v for k, v in m.items() if k != "label"} for m in merges]
        self.dims_ = dims

    def _merge(self, values, cells, names, anchors, ref, query, dims) -> dict:
        from . import _seurat_core as core

        p = self.params
        ref_cells, query_cells, score = [], [], []
        for i in ref:
            for j in query:
                found = anchors[(min(i, j), max(i, j))]
                first, second = (found["cell1"], found["cell2"]) if i < j else (found["cell2"], found["cell1"])
                ref_cells.append(cells[i][first])
                query_cells.append(cells[j][second])
                score.append(found["score"])
        ref_cells, query_cells, score = (np.concatenate(v) for v in (ref_cells, query_cells, score))
        label = f"{'+'.join(names[b] for b in ref)} <- {'+'.join(names[b] for b in query)}"
        if ref_cells.size == 0:
            warnings.warn(f"no anchors between {label.replace(' <- ', ' and ')}: the batches may share no cell "
                          "type; the query is left uncorrected", UserWarning, stacklevel=4)
            return {"label": label, "n_anchors": 0, "k_weight": 0, "unweighted_cells": 0}
        if ref_cells.size < p["k_weight"]:
            warnings.warn(f"few anchors when merging {label}: {ref_cells.size} < k_weight={p['k_weight']}; the "
                          "batches may share few cell types, and k_weight is lowered to them, as Seurat does",
                          UserWarning, stacklevel=4)
        ref_rows = np.concatenate([cells[b] for b in ref])
        query_rows = np.concatenate([cells[b] for b in query])
        corrected, info = core.integrate_pair(values, ref_rows, query_rows, ref_cells, query_cells, score,
                                              dims=dims, k_weight=p["k_weight"], sd_weight=p["sd_weight"],
                                              seed=self.seed, device=self.device)
        values[query_rows] = corrected
        return {"label": label, **info}

    def _capped_dims(self, names, cells, n_features) -> int:
        dims = self.params["dims"]
        smallest = min(len(c) for c in cells)
        cap = int(min(dims, smallest - 1, n_features - 1))
        if cap < 1:
            raise ValueError(f"batch {names[int(np.argmin([len(c) for c in cells]))]!r} holds {smallest} cell(s); "
                             "Seurat CCA needs at least 2 cells per batch")
        if cap < dims:
            warnings.warn(f"dims={dims} capped at {cap}: the smallest batch holds {smallest} cells (Seurat stops: "
                          "'Max dimension too large')", UserWarning, stacklevel=4)
        return cap

    def _bar(self, total: int):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc="Seurat CCA", disable=not self.progress)

    @staticmethod
    def _anchor_table(anchors, cells) -> np.ndarray:
        """Anchors as rows ``(cell 1, cell 2, score)`` over the data's rows, each pair of batches once."""
        rows = [np.column_stack([cells[i][f["cell1"]], cells[j][f["cell2"]], f["score"]])
                for (i, j), f in anchors.items() if f["cell1"].size]
        return np.concatenate(rows) if rows else np.zeros((0, 3))

    def _outputs(self) -> dict:
        out = {"info": {"features": np.asarray(self.features_, dtype=str),
                        "feature_selection": self.feature_selection_, "dims": int(self.dims_),
                        "merges": self.merges_, "n_anchors": int(self.anchors_.shape[0]),
                        "merge_anchors": np.asarray([m["n_anchors"] for m in self.merge_info_]),
                        "batches": self.batches_}}
        if getattr(self, "corrected_", None) is not None:
            out["layers"] = {f"{self.method}_corrected": self.corrected_}
        return out

    def _fitted_state(self):
        return ({"feature_selection": self.feature_selection_, "dims": int(self.dims_),
                 "merge_info": self.merge_info_},
                {"features": np.asarray(self.features_, dtype=str), "batches": self.batches_,
                 "merges": self.merges_, "anchors": self.anchors_})

    def _restore_state(self, state, arrays) -> None:
        self.feature_selection_, self.dims_ = state["feature_selection"], int(state["dims"])
        self.merge_info_ = state["merge_info"]
        self.features_ = arrays["features"].tolist()
        self.batches_, self.merges_, self.anchors_ = arrays["batches"], arrays["merges"], arrays["anchors"]
        self.corrected_ = None
