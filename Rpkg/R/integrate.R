#' Integrate the batches of a single-cell data set
#'
#' Runs one of the batch-integration methods registered in scintegrate's Python core (BERMUDA, DeepBID,
#' the PCA baseline, and methods of plugins; see [scintegrateMethods()]) on the raw counts of `x` and
#' returns `x` with the batch-corrected low-dimensional embedding added.
#'
#' The counts are handed to the Python core without densifying them: the slots of the genes x cells
#' `dgCMatrix` (`x`, `i`, `p`, `Dim`) become a scipy CSC matrix whose arrays Python reads in place
#' (read-only), and its transpose -- free, no copy -- is the cells x genes CSR matrix the Python side
#' works on. The only copy is the one reticulate makes of the three slot vectors when wrapping them
#' (about 1x the size of the dgCMatrix, released after the call). A dense matrix is wrapped without a
#' copy. Cell order and names are kept.
#'
#' Speed: the Python side runs in the R process. It imports torch so that torch uses the BLAS it ships
#' with rather than the one R is linked to (usually the single-threaded reference BLAS, which made
#' training from R an order of magnitude slower than from Python); import nothing that loads torch
#' through reticulate before scintegrate's first call. `options(scintegrate.threads = n)` sets the
#' number of torch CPU threads of each run (default `NULL`: torch's choice, `OMP_NUM_THREADS` or the
#' number of cores); on a machine shared with other busy processes one thread is often fastest.
#'
#' @param x A [SingleCellExperiment::SingleCellExperiment], a `Seurat` object, or a genes x cells
#'   count matrix (base `matrix` or `dgCMatrix`).
#' @param method Name of a registered method (case-insensitive), e.g. `"bermuda"`, `"deepbid"` or
#'   `"pca"` (a baseline that does not correct batches); [scintegrateMethods()] lists them. `NULL`
#'   (default): the registry's default method (`registry.DEFAULT_METHOD` of the Python package,
#'   BERMUDA).
#' @param batch For a SingleCellExperiment, the name of the `colData(x)` column holding each cell's
#'   batch; for a Seurat object, the name of the `meta.data` column; for a matrix, a vector with one
#'   batch label per cell (column).
#' @param ... Method parameters passed to the Python method, e.g. `max_steps = 500` or
#'   `n_features = 1000` for BERMUDA (see the Python documentation of `scintegrate.integrate`).
#'   Whole numbers are sent as integers. `progress = TRUE` shows the Python progress bar.
#' @param labels Cell-type labels, for the semi-supervised methods (`"scanvi"`; the `labels` column of
#'   [scintegrateMethods()]): for a SingleCellExperiment or a Seurat object, the name of the
#'   `colData(x)` / `meta.data` column; for a matrix, one label per cell. `NA` and `"Unknown"` mark
#'   unlabelled cells, whose labels the method predicts (e.g. scANVI's `scanvi_prediction` and
#'   `scanvi_confidence` columns). Other methods take no labels.
#' @param name Name of the result: the `reducedDim` (SingleCellExperiment) or the DimReduc (Seurat).
#'   Default: the method's registered embedding key without `"X_"`, upper-case for a
#'   SingleCellExperiment and lower-case for Seurat (columns `reducedDim` / `reduction` of
#'   [scintegrateMethods()]): `"BERMUDA"` / `"bermuda"`, and `"PCA_BASELINE"` / `"pca_baseline"` for
#'   the PCA baseline so that it never overwrites an existing `"PCA"` / `"pca"`.
#' @param seed Integer seed of every random step (clustering, initialisation, sampling).
#' @param device `"auto"` (GPU when available), `"cpu"` or `"cuda"`.
#' @param assay For a SingleCellExperiment, the assay holding raw counts (default `"counts"`); for a
#'   Seurat object, the assay whose `counts` slot is used (default: the default assay).
#'
#' @return `x` with the embedding added:
#'   * SingleCellExperiment: `reducedDim(x, name)`; per-cell outputs (e.g. BERMUDA's or DeepBID's
#'     clusters) as `colData` columns, other per-cell matrices (e.g. DeepBID's soft assignments) as
#'     further `reducedDims`, extra gene-level matrices as assays; the run record (method,
#'     parameters, seed, device, package versions, training history) in `metadata(x)$scintegrate[[name]]`.
#'   * Seurat: a DimReduc `x[[name]]` with key `paste0(method, "_")` (or `paste0(name, "_")` when
#'     another reduction has that key already); per-cell outputs as `meta.data` columns, other
#'     per-cell matrices in the DimReduc's `misc$obsm`, extra gene-level matrices as new assays (e.g.
#'     DeepBID's `"deepbid_denoised"`, in the `data` slot); the run record in
#'     `x@misc$scintegrate[[name]]` and in the DimReduc's `misc$scintegrate`.
#'   * matrix: a cells x d matrix (row names = cell names) with the record in
#'     `attr(, "scintegrate")`, per-cell outputs in `attr(, "cellData")` (a data.frame) and other
#'     per-cell / gene-level matrices in `attr(, "obsm")` / `attr(, "layers")`.
#'
#' @seealso [scintegrateMethods()] for the methods, [integrationMetrics()] to score the result,
#'   [simulateBatches()] for example data,
#'   [installPython()] to set up the Python side.
#' @examples
#' if (scintegrateAvailable()) {
#'   sce <- simulateBatches(nCells = 300, nGenes = 200, seed = 1)
#'   sce <- integrateBatches(sce, method = "pca", batch = "batch")
#'   dim(SingleCellExperiment::reducedDim(sce, "PCA_BASELINE"))
#'
#'   # a plain genes x cells matrix and a batch vector
#'   counts <- SummarizedExperiment::assay(sce, "counts")
#'   emb <- integrateBatches(counts, method = "pca", batch = sce$batch)
#'   head(rownames(emb))
#' }
#' @export
integrateBatches <- function(x, method = NULL, batch = "batch", ..., labels = NULL, name = NULL, seed = 0L,
                             device = "auto") {
  UseMethod("integrateBatches")
}

#' @rdname integrateBatches
#' @export
integrateBatches.SingleCellExperiment <- function(x, method = NULL, batch = "batch", ..., labels = NULL,
                                                  name = NULL, seed = 0L, device = "auto", assay = "counts") {
  if (!assay %in% SummarizedExperiment::assayNames(x)) {
    stop(sprintf("assay '%s' not found; available assays: %s", assay,
                 paste(SummarizedExperiment::assayNames(x), collapse = ", ")), call. = FALSE)
  }
  batchValues <- .getColumn(SummarizedExperiment::colData(x), batch, "colData(x)")
  labelValues <- if (is.null(labels)) NULL else .getColumn(SummarizedExperiment::colData(x), labels, "colData(x)",
                                                           what = "labels")
  res <- .integrateCounts(SummarizedExperiment::assay(x, assay, withDimnames = TRUE), batchValues, method,
                          seed, device, list(...), name, upper = TRUE, batchName = batch, labels = labelValues)
  cellNames <- colnames(x)
  SingleCellExperiment::reducedDim(x, res$name) <- `rownames<-`(res$embedding, cellNames)
  for (column in names(res$obs)) SummarizedExperiment::colData(x)[[column]] <- res$obs[[column]]
  for (extra in names(res$obsm)) {
    SingleCellExperiment::reducedDim(x, toupper(extra)) <- `rownames<-`(res$obsm[[extra]], cellNames)
  }
  for (layer in names(res$layers)) {
    SummarizedExperiment::assay(x, layer, withDimnames = FALSE) <- res$layers[[layer]]
  }
  S4Vectors::metadata(x)$scintegrate[[res$name]] <- res$record
  x
}

#' @rdname integrateBatches
#' @export
integrateBatches.Seurat <- function(x, method = NULL, batch = "batch", ..., labels = NULL, name = NULL,
                                    seed = 0L, device = "auto", assay = NULL) {
  if (!requireNamespace("SeuratObject", quietly = TRUE)) {
    stop("the SeuratObject package is needed for Seurat input", call. = FALSE)
  }
  assay <- if (is.null(assay)) SeuratObject::DefaultAssay(x) else assay
  counts <- SeuratObject::GetAssayData(x, slot = "counts", assay = assay)
  if (prod(dim(counts)) == 0) {
    stop(sprintf("the counts slot of assay '%s' is empty; scintegrate needs raw counts", assay), call. = FALSE)
  }
  batchValues <- .getColumn(x@meta.data, batch, "the Seurat object's meta.data")
  labelValues <- if (is.null(labels)) NULL else .getColumn(x@meta.data, labels, "the Seurat object's meta.data",
                                                           what = "labels")
  res <- .integrateCounts(counts, batchValues, method, seed, device, list(...), name, upper = FALSE,
                          batchName = batch, labels = labelValues)
  key <- .seuratKey(x, res$method, res$name)
  embedding <- res$embedding
  colnames(embedding) <- paste0(key, seq_len(ncol(embedding)))
  misc <- list(scintegrate = res$record)
  if (length(res$obsm)) misc$obsm <- res$obsm
  x[[res$name]] <- SeuratObject::CreateDimReducObject(embeddings = embedding, key = key, assay = assay,
                                                      misc = misc)
  if (length(res$obs)) x <- SeuratObject::AddMetaData(x, as.data.frame(res$obs))
  for (layer in names(res$layers)) {
    extra <- SeuratObject::CreateAssayObject(data = res$layers[[layer]])
    SeuratObject::Key(extra) <- paste0(gsub("[^[:alnum:]]", "", layer), "_")
    x[[layer]] <- extra
  }
  x@misc$scintegrate[[res$name]] <- res$record
  x
}

# paste0(method, "_"), unless another reduction (not the one being replaced) uses it: then the name's.
.seuratKey <- function(x, method, name) {
  key <- paste0(gsub("[^[:alnum:]]", "", method), "_")
  others <- setdiff(SeuratObject::Reductions(x), name)
  used <- vapply(others, function(r) SeuratObject::Key(x[[r]]), character(1))
  if (key %in% used) key <- paste0(gsub("[^[:alnum:]]", "", name), "_")
  key
}

#' @rdname integrateBatches
#' @export
integrateBatches.matrix <- function(x, method = NULL, batch, ..., labels = NULL, name = NULL, seed = 0L,
                                    device = "auto") {
  .integrateMatrix(x, method, batch, list(...), name, seed, device, labels)
}

#' @rdname integrateBatches
#' @export
integrateBatches.Matrix <- function(x, method = NULL, batch, ..., labels = NULL, name = NULL, seed = 0L,
                                    device = "auto") {
  .integrateMatrix(x, method, batch, list(...), name, seed, device, labels)
}

#' @export
integrateBatches.default <- function(x, method = NULL, batch = "batch", ..., labels = NULL, name = NULL,
                                     seed = 0L, device = "auto") {
  stop(sprintf(paste("integrateBatches() takes a SingleCellExperiment, a Seurat object or a genes x cells",
                     "matrix / dgCMatrix, not an object of class '%s'"), class(x)[1]), call. = FALSE)
}

.integrateMatrix <- function(x, method, batch, params, name, seed, device, labels = NULL) {
  if (missing(batch)) stop("batch is missing: give one batch label per cell (column of x)", call. = FALSE)
  res <- .integrateCounts(x, batch, method, seed, device, params, name, upper = TRUE, labels = labels)
  embedding <- res$embedding
  if (is.null(colnames(x))) rownames(embedding) <- NULL
  colnames(embedding) <- paste0(res$name, "_", seq_len(ncol(embedding)))
  attr(embedding, "scintegrate") <- res$record
  if (length(res$obs)) attr(embedding, "cellData") <- as.data.frame(res$obs)
  if (length(res$obsm)) attr(embedding, "obsm") <- res$obsm
  if (length(res$layers)) attr(embedding, "layers") <- res$layers
  embedding
}

# Shared by every method: check the input in R, then run the Python method. Returns the pieces of
# .pyIntegrate() plus the method, result name and run record.
.integrateCounts <- function(counts, batch, method, seed, device, params, name, upper, batchName = NULL,
                             labels = NULL) {
  method <- .checkMethod(method)
  counts <- .checkCounts(.asCounts(counts))
  batch <- .checkBatch(batch, ncol(counts))
  seed <- .checkSeed(seed)
  if (!is.character(device) || length(device) != 1L) stop("device must be \"auto\", \"cpu\" or \"cuda\"", call. = FALSE)
  params <- .pyParams(params)
  reserved <- intersect(names(params), c("batch_key", "key_added", "layer", "copy"))
  if (length(reserved)) {
    stop(sprintf("%s cannot be passed in ...: integrateBatches() sets it (use batch =, name = or assay =)",
                 paste(reserved, collapse = ", ")), call. = FALSE)
  }
  if (is.null(params$progress)) params$progress <- FALSE
  spec <- .pyCheckMethod(if (is.null(method)) .pyDefaultMethod() else method)
  labels <- .checkLabels(labels, ncol(counts), spec)
  if (!is.null(labels)) {
    params[[spec$labels_param]] <- "labels"
    labels[is.na(labels)] <- if (is.null(params$unlabeled_category)) "Unknown" else params$unlabeled_category
  }
  if (is.null(name)) name <- .resultName(spec$key, upper)
  if (!is.character(name) || length(name) != 1L || !nzchar(name)) stop("name must be a single string", call. = FALSE)
  res <- .pyIntegrate(counts, batch, spec$name, spec$key, seed, device, params,
                      .checkThreads(getOption("scintegrate.threads")), labels = labels)
  res$method <- spec$name
  res$name <- name
  res$record <- .makeRecord(spec$name, name, list(column = batchName, levels = levels(batch)), seed, device,
                            params, list(version = .pyPackageVersion(), record = res$record))
  res
}

# The default result name of an embedding key: "X_pca_baseline" -> "PCA_BASELINE" (SCE, matrix) or
# "pca_baseline" (Seurat).
.resultName <- function(key, upper) {
  name <- sub("^X_", "", key)
  if (upper) toupper(name) else tolower(name)
}

#' The integration methods scintegrate can run
#'
#' Lists the methods of the Python core's registry that [integrateBatches()] runs: scintegrate's own
#' (BERMUDA, DeepBID), the PCA baseline, and methods registered by plugins (Python modules named in the
#' environment variable `SCINTEGRATE_PLUGINS` before the first call). Benchmark-only peers are not
#' listed.
#'
#' @return A data.frame with one row per method: `method` (the name for `method =`), `kind`
#'   (`"method"`, or `"baseline"` for a method that does not correct batches), `default` (`TRUE` for the
#'   method used when `method = NULL`), `reducedDim` and `reduction` (the default result names for a
#'   SingleCellExperiment and a Seurat object), `cellData` (the per-cell outputs added as `colData` /
#'   `meta.data` columns, comma-separated), `labels` (`TRUE` for a semi-supervised method, which takes
#'   cell-type labels through `labels =` of [integrateBatches()]) and `description`.
#' @seealso [integrateBatches()]
#' @examples
#' if (scintegrateAvailable()) {
#'   scintegrateMethods()[, c("method", "kind", "reducedDim")]
#' }
#' @export
scintegrateMethods <- function() {
  specs <- .pyMethods()
  field <- function(f) vapply(specs, function(s) paste(unlist(s[[f]]), collapse = ", "), character(1))
  data.frame(method = field("name"), kind = field("kind"), default = field("name") == .pyDefaultMethod(),
             reducedDim = .resultName(field("key"), TRUE), reduction = .resultName(field("key"), FALSE),
             cellData = field("obs_keys"), labels = nzchar(field("labels_param")),
             description = field("description"), row.names = NULL,
             stringsAsFactors = FALSE)
}
