#' Simulate single-cell counts with cell types and batch effects
#'
#' Calls `scintegrate.datasets.simulate_counts` of the Python core (a Splatter-like simulation:
#' gamma-Poisson counts, log-normal differential-expression and batch factors, optional dropout) and
#' returns the result as a SingleCellExperiment.
#'
#' @param nCells Total number of cells (split evenly over the batches), or one number per batch.
#' @param nGenes Number of genes.
#' @param nBatches Number of batches (`batch1`, `batch2`, ...).
#' @param nTypes Number of cell types (`type1`, `type2`, ...).
#' @param experiment `"all"` (every type in every batch), `"removal1"` (type1 absent from batch1) or
#'   `"removal2"` (also the last type absent from batch2).
#' @param seed Integer seed.
#' @param ... Further parameters of `simulate_counts` (e.g. `dropout`, `de_prob`, `batch_effect`).
#'
#' @return A SingleCellExperiment with a `counts` assay (genes x cells `dgCMatrix`), `colData`
#'   columns `batch` and `cell_type` (factors) and `library_size_expected`, and the simulation
#'   parameters in `metadata(sce)$simulation`.
#' @examples
#' if (scintegrateAvailable()) {
#'   sce <- simulateBatches(nCells = 200, nGenes = 100, nBatches = 2, nTypes = 3, seed = 1)
#'   table(sce$batch, sce$cell_type)
#' }
#' @export
simulateBatches <- function(nCells = 1000, nGenes = 1000, nBatches = 2, nTypes = 4, experiment = "all",
                            seed = 0L, ...) {
  params <- c(list(n_cells = as.integer(nCells), n_genes = as.integer(nGenes),
                   n_batches = as.integer(nBatches), n_types = as.integer(nTypes),
                   experiment = experiment, seed = .checkSeed(seed)), .pyParams(list(...)))
  if (length(nCells) > 1L) params$n_cells <- as.list(params$n_cells)
  .asSce(.pySimulate(params), uns = "simulation")
}

#' Read an .h5ad file into a SingleCellExperiment
#'
#' Reads an AnnData `.h5ad` file with the reader of the Python core and its command line
#' (`scintegrate.datasets.read_h5ad`: one-line errors for a missing file or a file that is not
#' `.h5ad`) and returns its `X` as the
#' `counts` assay (a genes x cells `dgCMatrix`, transferred as sparse arrays without densifying),
#' `obs` as `colData` and `uns` as `metadata`. Useful for the shared benchmark data sets; other
#' AnnData slots (`layers`, `obsm`, `var` columns) are not read.
#'
#' @param path Path to the `.h5ad` file.
#' @return A SingleCellExperiment.
#' @examples
#' path <- file.path("..", "shared", "data", "pbmc_10x_chemistries.h5ad")
#' if (scintegrateAvailable() && file.exists(path)) {
#'   sce <- readH5ad(path)
#'   table(sce$batch)
#' }
#' @export
readH5ad <- function(path) {
  if (!is.character(path) || length(path) != 1L || is.na(path) || !nzchar(path)) {
    stop("path must be a single file path", call. = FALSE)
  }
  if (!file.exists(path)) stop(sprintf("no such file: '%s'", path), call. = FALSE)  # as the Python reader says
  .asSce(.pyReadH5ad(path))
}

.asSce <- function(pieces, uns = NULL) {
  metadata <- if (is.null(uns)) pieces$uns else pieces$uns[uns]
  SingleCellExperiment::SingleCellExperiment(assays = list(counts = pieces$counts), colData = pieces$obs,
                                             metadata = metadata)
}
