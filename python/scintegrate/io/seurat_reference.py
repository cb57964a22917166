"""Run Seurat (R, through rpy2) on an AnnData to get reference results for ``scintegrate.pp``.

:func:`seurat_reference` runs Seurat's own chain on raw counts (NormalizeData, vst
FindVariableFeatures, ScaleData of Seurat's variable features, with and without ``split.by``,
SelectIntegrationFeatures over per-batch objects, RunPCA) and clusters a PCA that *we* pass in
(FindNeighbors with exact ``nn.method = "rann"`` + FindClusters), so the clustering is compared on
identical input. :func:`compare_with_seurat` runs ``scintegrate.pp`` on the same data and returns
the agreement numbers used by the conformance tests and ``benchmarks/pp_conformance.py``.

Needs ``pip install 'scintegrate[r]'`` and R with Seurat. Genes and cells are renamed on the R side
(Seurat rewrites names with underscores); the gene names keep the sort order of the real names so
that name-based tie-breaks agree.

Example
-------
>>> from scintegrate.io.seurat_reference import compare_with_seurat  # doctest: +SKIP
>>> numbers = compare_with_seurat(adata, batch_key="batch")  # doctest: +SKIP
>>> numbers["vst_top_overlap"] >= 0.95  # doctest: +SKIP
True
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np

from ._r import call_r_pipeline, from_dgcmatrix, numpy_converter, r_safe_counts, require_r, require_r_package, to_py

_R_PIPELINE = r"""
function(counts, batch, n_features, pca_emb, n_dims, resolution, n_pcs) {
  suppressPackageStartupMessages(library(Seurat))
  obj <- CreateSeuratObject(counts = counts, min.cells = 0, min.features = 0)
  obj$batch <- batch
  obj <- NormalizeData(obj, verbose = FALSE)
  obj <- FindVariableFeatures(obj, selection.method = "vst", nfeatures = n_features, verbose = FALSE)
  vf <- VariableFeatures(obj)
  hvf <- obj[["RNA"]][[]]
  obj <- ScaleData(obj, features = vf, verbose = FALSE)
  scaled <- GetAssayData(obj, slot = "scale.data")
  scaled_split <- ScaleData(GetAssayData(obj, slot = "data"), features = vf, split.by = obj$batch,
                            verbose = FALSE)[rownames(scaled), ]
  obj <- RunPCA(obj, features = vf, npcs = n_pcs, verbose = FALSE, seed.use = 42)
  seurat_pca <- Embeddings(obj, "pca")
  objs <- SplitObject(obj, split.by = "batch")
  objs <- lapply(objs, function(o) FindVariableFeatures(o, nfeatures = n_features, verbose = FALSE))
  batch_vf <- lapply(objs, VariableFeatures)
  int_feats <- SelectIntegrationFeatures(objs, nfeatures = n_features, verbose = FALSE)
  rownames(pca_emb) <- colnames(obj)
  colnames(pca_emb) <- paste0("mypc_", seq_len(ncol(pca_emb)))
  obj[["mypca"]] <- CreateDimReducObject(embeddings = pca_emb, key = "mypc_", assay = "RNA")
  obj <- FindNeighbors(obj, reduction = "mypca", dims = 1:n_dims, nn.method = "rann", verbose = FALSE)
  obj <- FindClusters(obj, resolution = resolution, verbose = FALSE)
  list(data = GetAssayData(obj, slot = "data"), vf = vf,
       hvf = as.matrix(hvf[, c("vst.mean", "vst.variance", "vst.variance.expected",
                                                 "vst.variance.standardized")]),
       scaled = scaled, scaled_features = rownames(scaled), scaled_split = scaled_split,
       seurat_pca = seurat_pca, batch_vf = batch_vf, batch_names = names(batch_vf),
       integration_features = int_feats, snn = obj@graphs$RNA_snn,
       clusters = as.character(obj$seurat_clusters))
}
"""


def seurat_reference(adata, pca_embedding: np.ndarray, *, batch_key: str = "batch", n_features: int = 2000,
                     n_dims: Optional[int] = None, resolution: float = 0.8, n_pcs: int = 30) -> dict:
    """Seurat 4.3's results on ``adata.X`` (raw counts); names mapped back to ``adata.var_names``.

    ``pca_embedding`` (cells x d) is what Seurat's FindNeighbors/FindClusters run on.
    """
    require_r_package("Seurat")
    ro = require_r()
    genes, cells, counts = r_safe_counts(adata)
    emb = np.ascontiguousarray(pca_embedding, dtype=np.float64)
    n_dims = emb.shape[1] if n_dims is None else int(n_dims)
    batch = ro.StrVector(adata.obs[batch_key].astype(str).tolist())
    r_emb = numpy_converter().py2rpy(emb)
    call = (f"pipeline(counts, batch, {int(n_features)}L, pca_emb, {int(n_dims)}L, {float(resolution)!r}, "
            f"{int(n_pcs)}L)")
    out = call_r_pipeline(_R_PIPELINE, call, {"counts": counts, "batch": batch, "pca_emb": r_emb})
    index = {g: i for i, g in enumerate(genes)}

    def names_back(v):
        return [str(adata.var_names[index[g]]) for g in to_py(v)]

    return {
        "data": from_dgcmatrix(out["data"]),
        "variable_features": names_back(out["vf"]),
        "hvf": np.asarray(to_py(out["hvf"])),
        "scaled": np.asarray(to_py(out["scaled"])).T,
        "scaled_features": names_back(out["scaled_features"]),
        "scaled_split": np.asarray(to_py(out["scaled_split"])).T,
        "seurat_pca": np.asarray(to_py(out["seurat_pca"])),
        "batch_variable_features": {str(b): names_back(v) for b, v in
                                    zip(to_py(out["batch_names"]), out["batch_vf"])},
        "integration_features": names_back(out["integration_features"]),
        "snn": from_dgcmatrix(out["snn"]),
        "clusters": np.asarray(to_py(out["clusters"]), dtype=str),
    }


def _max_rel_err(ours: np.ndarray, ref: np.ndarray, floor: float = 0.0) -> float:
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    denom = np.maximum(np.abs(ref), floor)
    mask = denom > 0
    return float(np.max(np.abs(ours - ref)[mask] / denom[mask])) if mask.any() else 0.0


def _overlap(a, b) -> float:
    return len(set(a) & set(b)) / max(len(b), 1)


def _python_chain(adata, batch_key: str, n_features: int, n_comps: int, n_dims, resolution: float, seed: int):
    import anndata as ad

    from .. import pp

    a = ad.AnnData(X=adata.X.copy(), obs=adata.obs[[batch_key]].copy(), var=adata.var[[]].copy())
    timings = {}
    t0 = time.perf_counter()
    pp.log_normalize(a)
    pp.find_variable_features(a, n_features=n_features)
    hvg = list(a.var_names[np.argsort(a.var["highly_variable_rank"].fillna(np.inf).to_numpy(), kind="stable")])
    hvg = hvg[: int(a.var["highly_variable"].sum())]
    integration = pp.select_integration_features(a, batch_key=batch_key, n_features=n_features)
    pp.scale_data(a)
    pp.run_pca(a, n_comps=n_comps, seed=seed)
    pp.find_neighbors(a, n_dims=n_dims)
    pp.find_clusters(a, resolution=resolution, seed=seed)
    timings["python_chain_s"] = time.perf_counter() - t0
    return a, hvg, integration, timings


def compare_with_seurat(adata, *, batch_key: str = "batch", n_features: int = 2000, n_comps: int = 30,
                        n_dims: Optional[int] = None, resolution: float = 0.8, seed: int = 0) -> dict:
    """Run ``scintegrate.pp`` and Seurat on the raw counts in ``adata.X``; return agreement numbers.

    Seurat's FindNeighbors + FindClusters run on *our* PCA (exact neighbours), so the ARI measures
    the graph and clustering steps alone; scaling is compared on Seurat's variable features.
    """
    from sklearn.metrics import adjusted_rand_score

    from .. import pp

    a, hvg, integration, timings = _python_chain(adata, batch_key, n_features, n_comps, n_dims, resolution, seed)
    t0 = time.perf_counter()
    ref = seurat_reference(adata, a.obsm["X_pca"], batch_key=batch_key, n_features=n_features, n_dims=n_dims,
                           resolution=resolution, n_pcs=n_comps)
    timings["seurat_s"] = time.perf_counter() - t0
    ours_data, ref_data = a.X.tocsr(), ref["data"].tocsr()
    rows, cols = ref_data.nonzero()
    ref_vals = np.asarray(ref_data[rows, cols]).ravel()
    ours_vals = np.asarray(ours_data[rows, cols]).ravel()
    same_pattern = bool((ours_data != 0).sum() == rows.size and np.all(ours_vals != 0))
    vst_cols = ["vst_mean", "vst_variance", "vst_variance_expected", "vst_variance_standardized"]
    hvf = ref["hvf"]
    vst_err = {c: _max_rel_err(a.var[c].to_numpy(), hvf[:, j], floor=1e-12) for j, c in enumerate(vst_cols)}
    s = a.copy()
    pp.scale_data(s, features=ref["scaled_features"], key_added="scaled_ref")
    pp.scale_data(s, features=ref["scaled_features"], batch_key=batch_key, key_added="scaled_split")
    pp.run_pca(s, n_comps=n_comps, scaled_key="scaled_ref", key_added="pca_ref")
    k = min(10, n_comps)
    pc_corr = [abs(np.corrcoef(s.obsm["pca_ref"][:, i], ref["seurat_pca"][:, i])[0, 1]) for i in range(k)]
    snn_diff = abs(a.obsp["snn"] - ref["snn"])
    ours_clusters = a.obs["seurat_clusters"].astype(str).to_numpy()
    return {
        "n_cells": int(adata.n_obs), "n_genes": int(adata.n_vars), "n_batches": int(adata.obs[batch_key].nunique()),
        "normalized_max_rel_err": _max_rel_err(ours_vals, ref_vals),
        "normalized_same_sparsity": same_pattern,
        "vst_max_rel_err": vst_err,
        "vst_top_overlap": _overlap(hvg, ref["variable_features"]),
        "integration_features_overlap": _overlap(integration, ref["integration_features"]),
        "integration_features_same_order": integration == ref["integration_features"],
        "per_batch_vst_overlap": {b: _overlap(_batch_hvg(a, b, n_features), v)
                                  for b, v in ref["batch_variable_features"].items()},
        "scaled_max_abs_err": float(np.max(np.abs(s.obsm["scaled_ref"] - ref["scaled"]))),
        "scaled_split_max_abs_err": float(np.max(np.abs(s.obsm["scaled_split"] - ref["scaled_split"]))),
        "pca_abs_corr_first10": [round(float(c), 6) for c in pc_corr],
        "snn_max_abs_diff": float(snn_diff.max()) if snn_diff.nnz else 0.0,
        "snn_frac_entries_equal": float(1 - (snn_diff > 1e-9).sum() / max(ref["snn"].nnz, 1)),
        "clustering_ari": float(adjusted_rand_score(ref["clusters"], ours_clusters)),
        "n_clusters_ours": int(len(set(ours_clusters))), "n_clusters_seurat": int(len(set(ref["clusters"]))),
        "clustering_input": "our PCA (our HVGs, scaling, n_comps PCs) given to both; Seurat nn.method='rann'",
        "timings": timings,
    }


def _batch_hvg(a, batch: str, n_features: int) -> list:
    ranks = a.varm["vst_rank_per_batch"][batch].to_numpy()
    top = np.flatnonzero(ranks < n_features)
    return list(a.var_names[top[np.argsort(ranks[top])]])
