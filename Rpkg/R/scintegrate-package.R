#' scintegrate: batch integration for single-cell RNA-seq
#'
#' R front end of scintegrate's Python/PyTorch core (BERMUDA, DeepBID and a PCA baseline), driven
#' through reticulate. Main functions: [integrateBatches()] (SingleCellExperiment, Seurat or matrix
#' in, the same object with a batch-corrected embedding out), [integrationMetrics()],
#' [simulateBatches()], [readH5ad()], [installPython()] and [scintegrateAvailable()].
#'
#' @keywords internal
#' @importClassesFrom Matrix dgCMatrix
"_PACKAGE"
