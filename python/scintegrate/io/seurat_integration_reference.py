"""Run Seurat 4.3's standard anchor integration (R, through rpy2) to get reference results.

:func:`seurat_cca_reference` runs Seurat's chain on the raw counts in ``adata.X``: SplitObject by batch,
per batch NormalizeData + vst FindVariableFeatures, SelectIntegrationFeatures, FindIntegrationAnchors
(``reduction = "cca"``, or ``"rpca"`` after a per-batch ScaleData + RunPCA), IntegrateData, then
ScaleData + RunPCA of the "integrated" assay. It returns the features, the anchors (with the real cell
and batch names), the integrated matrix and its PCA, for conformance tests of ``scintegrate``'s own
Seurat v3 CCA anchors. A Seurat error in the anchoring or integration step (e.g. a batch with fewer
cells than ``k_filter``/``k_weight``) is returned as ``result["error"]``, not raised.

Needs ``pip install 'scintegrate[r]'`` and R with Seurat. Genes and cells are renamed on the R side
(Seurat rewrites names with underscores); the gene names keep the sort order of the real names so
that name-based tie-breaks agree, and every name is mapped back.

Example
-------
>>> from scintegrate.io.seurat_integration_reference import seurat_cca_reference  # doctest: +SKIP
>>> ref = seurat_cca_reference(adata, batch_key="batch", dims=30)  # doctest: +SKIP
>>> ref["error"] is None, ref["integrated"].shape == (adata.n_obs, len(ref["integrated_features"]))  # doctest: +SKIP
(True, True)
"""

from __future__ import annotations

import numpy as np

from ._r import call_r_pipeline, r_safe_counts, require_r, require_r_package, to_py

_R_PIPELINE = r"""
function(counts, batch, n_features, dims, k_anchor, k_filter, k_score, k_weight, reduction, n_pcs) {
  suppressPackageStartupMessages(library(Seurat))
  op <- pbapply::pboptions(type = "none")
  on.exit(pbapply::pboptions(op))
  obj <- CreateSeuratObject(counts = counts, min.cells = 0, min.features = 0)
  obj$batch <- batch
  cells <- colnames(obj)
  objs <- SplitObject(obj, split.by = "batch")
  objs <- lapply(objs, function(o) {
    o <- NormalizeData(o, verbose = FALSE)
    FindVariableFeatures(o, selection.method = "vst", nfeatures = n_features, verbose = FALSE)
  })
  features <- SelectIntegrationFeatures(objs, nfeatures = n_features, verbose = FALSE)
  if (reduction == "rpca") {
    objs <- lapply(objs, function(o) {
      o <- ScaleData(o, features = features, verbose = FALSE)
      RunPCA(o, features = features, verbose = FALSE)
    })
  }
  out <- list(features = features, batch_names = names(objs))
  t0 <- proc.time()[["elapsed"]]
  anchors <- tryCatch(
    FindIntegrationAnchors(objs, anchor.features = features, reduction = reduction, dims = 1:dims,
                           k.anchor = k_anchor, k.filter = k_filter, k.score = k_score, verbose = FALSE),
    error = function(e) conditionMessage(e))
  if (is.character(anchors)) {
    out$error <- paste0("FindIntegrationAnchors: ", anchors)
    out$seconds <- proc.time()[["elapsed"]] - t0
    return(out)
  }
  a <- anchors@anchors
  ol <- anchors@object.list
  out$cell1 <- mapply(function(i, d) colnames(ol[[d]])[i], a$cell1, a$dataset1)
  out$cell2 <- mapply(function(i, d) colnames(ol[[d]])[i], a$cell2, a$dataset2)
  out$score <- as.numeric(a$score)
  out$dataset1 <- names(objs)[a$dataset1]
  out$dataset2 <- names(objs)[a$dataset2]
  integrated <- tryCatch(IntegrateData(anchors, dims = 1:dims, k.weight = k_weight, verbose = FALSE),
                         error = function(e) conditionMessage(e))
  out$seconds <- proc.time()[["elapsed"]] - t0
  if (is.character(integrated)) {
    out$error <- paste0("IntegrateData: ", integrated)
    return(out)
  }
  DefaultAssay(integrated) <- "integrated"
  integrated <- ScaleData(integrated, verbose = FALSE)
  integrated <- RunPCA(integrated, npcs = n_pcs, verbose = FALSE, seed.use = 42)
  data <- GetAssayData(integrated, assay = "integrated", slot = "data")
  out$integrated <- as.matrix(data[, cells])
  out$integrated_features <- rownames(data)
  out$integrated_pcs <- Embeddings(integrated, "pca")[cells, , drop = FALSE]
  tool <- Tool(integrated, slot = "Integration")
  if (!is.null(tool) && length(tool@sample.tree) > 0) out$sample_tree <- tool@sample.tree
  out
}
"""


def seurat_cca_reference(adata, *, batch_key: str = "batch", n_features: int = 2000, dims: int = 30,
                         k_anchor: int = 5, k_filter: int = 200, k_score: int = 30, k_weight: int = 100,
                         reduction: str = "cca", n_pcs: int = 30) -> dict:
    """Seurat 4.3's anchors + IntegrateData on ``adata.X`` (raw counts); names mapped back to ``adata``'s.

    ``anchors`` holds one row per anchor and direction, as in Seurat's ``anchors@anchors`` (each pair
    appears as (a, b) and (b, a)); ``n_anchors_per_pair`` counts them per ordered ``(dataset1, dataset2)``.
    ``integrated`` (cells x ``integrated_features``) and ``integrated_pcs`` are in ``adata``'s cell order.
    ``sample_tree`` is Seurat's merge matrix: ``-i`` is batch ``batch_names[i - 1]``, ``j > 0`` row j's merge. On a
    Seurat error, ``error`` holds its message and the results of the failed steps are None.
    """
    import pandas as pd

    if reduction not in ("cca", "rpca"):
        raise ValueError(f"reduction must be 'cca' or 'rpca', not {reduction!r}")
    require_r_package("Seurat")
    ro = require_r()
    genes, cells, counts = r_safe_counts(adata)
    batch = ro.StrVector(adata.obs[batch_key].astype(str).tolist())
    call = (f"pipeline(counts, batch, {int(n_features)}L, {int(dims)}L, {int(k_anchor)}L, {int(k_filter)}L, "
            f"{int(k_score)}L, {int(k_weight)}L, '{reduction}', {int(n_pcs)}L)")
    out = call_r_pipeline(_R_PIPELINE, call, {"counts": counts, "batch": batch})
    gene_index = {g: i for i, g in enumerate(genes)}
    obs_names = np.asarray(adata.obs_names, dtype=object)

    def genes_back(v):
        return [str(adata.var_names[gene_index[g]]) for g in np.atleast_1d(to_py(v))]

    def cells_back(v):
        return obs_names[[int(str(c)[1:]) for c in np.atleast_1d(to_py(v))]]

    def strings(name):
        return [str(s) for s in np.atleast_1d(to_py(out[name]))]

    def scalar(name):
        return float(np.atleast_1d(to_py(out[name]))[0])

    result = {"features": genes_back(out["features"]), "batch_names": strings("batch_names"), "anchors": None,
              "n_anchors_per_pair": None, "integrated": None, "integrated_features": None,
              "integrated_pcs": None, "sample_tree": None, "seconds": scalar("seconds"),
              "error": strings("error")[0] if "error" in out else None}
    if "cell1" in out:
        anchors = pd.DataFrame({"cell1": cells_back(out["cell1"]), "cell2": cells_back(out["cell2"]),
                                "score": np.atleast_1d(np.asarray(to_py(out["score"]), dtype=np.float64)),
                                "dataset1": strings("dataset1"), "dataset2": strings("dataset2")})
        result["anchors"] = anchors
        result["n_anchors_per_pair"] = {(str(a), str(b)): int(n) for (a, b), n in
                                        anchors.groupby(["dataset1", "dataset2"], sort=False).size().items()}
    if "integrated" in out:
        result["integrated"] = np.asarray(to_py(out["integrated"]), dtype=np.float64).T
        result["integrated_features"] = genes_back(out["integrated_features"])
        result["integrated_pcs"] = np.asarray(to_py(out["integrated_pcs"]), dtype=np.float64)
    if "sample_tree" in out:
        result["sample_tree"] = np.asarray(to_py(out["sample_tree"]), dtype=np.int64)
    return result
