#' Score how well an embedding mixes batches and keeps cell types apart
#'
#' Computes scintegrate's integration metrics (BERMUDA's divergence, entropy and silhouette scores,
#' iLISI / cLISI, NMI / ARI, the scIB metrics and their aggregates `batch_score`, `bio_score` and
#' `overall`) with `scintegrate.metrics.compute_metrics` of the Python core.
#'
#' @param x A SingleCellExperiment, a Seurat object, or a cells x d embedding matrix.
#' @param embedding For a SingleCellExperiment, one or more `reducedDimNames(x)`; for a Seurat
#'   object, one or more reduction names. Ignored for a matrix.
#' @param batch,label Names of the `colData` / `meta.data` columns holding each cell's batch and cell
#'   type; for a matrix, vectors with one value per row.
#' @param metrics `NULL` or `"all"` for every metric, a preset (`"fast"` skips the UMAP and the
#'   clustering sweep, `"bermuda"`, `"scib"`), or a character vector of metric names.
#' @param unintegrated Optional: the name (or, for a matrix, the matrix) of an embedding before
#'   integration (e.g. `"PCA"`), which enables the `pcr_comparison` metric.
#' @param seed Integer seed of the random steps (UMAP, clustering, kBET subsampling).
#' @param ... Unused.
#'
#' @return A data.frame with one row per embedding: the column `embedding` and one column per metric
#'   (`NA` for metrics not requested or undefined). The reasons for undefined metrics are in
#'   `attr(, "warnings")`.
#' @examples
#' if (scintegrateAvailable()) {
#'   sce <- simulateBatches(nCells = 300, nGenes = 200, seed = 1)
#'   sce <- integrateBatches(sce, method = "pca")
#'   integrationMetrics(sce, "PCA_BASELINE", batch = "batch", label = "cell_type", metrics = "fast")
#' }
#' @export
integrationMetrics <- function(x, embedding, batch, label, ...) {
  UseMethod("integrationMetrics")
}

#' @rdname integrationMetrics
#' @export
integrationMetrics.SingleCellExperiment <- function(x, embedding, batch = "batch", label = "cell_type", ...,
                                                    metrics = NULL, unintegrated = NULL, seed = 0L) {
  getEmbedding <- function(nm) {
    .requireName(nm, SingleCellExperiment::reducedDimNames(x), "reducedDim")
    as.matrix(SingleCellExperiment::reducedDim(x, nm))
  }
  table <- SummarizedExperiment::colData(x)
  .metricsTable(embedding, getEmbedding, .getColumn(table, batch, "colData(x)"),
                .getColumn(table, label, "colData(x)", "label"), metrics, unintegrated, seed)
}

#' @rdname integrationMetrics
#' @export
integrationMetrics.Seurat <- function(x, embedding, batch = "batch", label = "cell_type", ...,
                                      metrics = NULL, unintegrated = NULL, seed = 0L) {
  getEmbedding <- function(nm) {
    .requireName(nm, SeuratObject::Reductions(x), "reduction")
    SeuratObject::Embeddings(x, reduction = nm)
  }
  table <- x@meta.data
  where <- "the Seurat object's meta.data"
  .metricsTable(embedding, getEmbedding, .getColumn(table, batch, where), .getColumn(table, label, where, "label"),
                metrics, unintegrated, seed)
}

#' @rdname integrationMetrics
#' @export
integrationMetrics.matrix <- function(x, embedding = NULL, batch, label, ..., metrics = NULL,
                                      unintegrated = NULL, seed = 0L) {
  unint <- if (is.null(unintegrated)) NULL else "unintegrated"
  getEmbedding <- function(nm) if (nm == "unintegrated") as.matrix(unintegrated) else x
  .metricsTable("embedding", getEmbedding, batch, label, metrics, unint, seed)
}

#' @export
integrationMetrics.default <- function(x, embedding, batch, label, ...) {
  stop(sprintf(paste("integrationMetrics() takes a SingleCellExperiment, a Seurat object or a cells x d",
                     "matrix, not an object of class '%s'"), class(x)[1]), call. = FALSE)
}

.metricsTable <- function(embeddings, getEmbedding, batch, label, metrics, unintegrated, seed) {
  seed <- .checkSeed(seed)
  force(batch)  # column look-ups fail here, before any embedding is read
  force(label)
  if (!is.character(embeddings) || !length(embeddings)) {
    stop("embedding must name one or more embeddings", call. = FALSE)
  }
  if (!is.null(metrics) && !is.character(metrics)) stop("metrics must be NULL or a character vector", call. = FALSE)
  metrics <- if (length(metrics) == 1L) metrics else as.list(metrics)
  unint <- if (is.null(unintegrated)) NULL else getEmbedding(unintegrated)
  rows <- lapply(embeddings, function(nm) {
    emb <- getEmbedding(nm)
    n <- nrow(emb)
    if (length(batch) != n || length(label) != n) {
      stop(sprintf("batch (%d values) and label (%d values) must have one value per cell (%d)",
                   length(batch), length(label), n), call. = FALSE)
    }
    if (anyNA(batch) || anyNA(label)) stop("batch and label must not contain missing values", call. = FALSE)
    storage.mode(emb) <- "double"
    .pyMetrics(emb, batch, label, unint, metrics, seed)
  })
  values <- lapply(rows, function(r) vapply(r$values, function(v) if (is.null(v)) NA_real_ else v, numeric(1)))
  out <- data.frame(embedding = embeddings, do.call(rbind, values), check.names = FALSE, row.names = NULL)
  attr(out, "warnings") <- unique(unlist(lapply(rows, `[[`, "warnings")))
  out
}
