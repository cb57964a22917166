# Peak memory of the R front end: integrateBatches() on 50,000 simulated cells, against the size of the
# counts dgCMatrix.
#
# R and the embedded Python share one process, so the process' peak resident set size (VmHWM in
# /proc/self/status, reset before each stage by writing 5 to /proc/self/clear_refs; Linux only) covers
# both. Stages, each measured from the resident size just before it:
#   transfer  - the counts go to Python and an AnnData is built around them (no method run): the
#               bridge's own cost; a copy of the counts would show as >= 1x the dgCMatrix size
#   <method>  - integrateBatches(sce, method) end to end (method's own work included)
#
# Usage (from the repository root):
#   RETICULATE_PYTHON=.venv/bin/python Rscript benchmarks/r_memory.R [n_cells] [methods, comma-separated]
# Defaults: 50000 cells, 2000 genes, methods "pca,bermuda" (those importable are run). Writes
# benchmarks/results/r_memory.json and .csv.

args <- commandArgs(trailingOnly = TRUE)
nCells <- if (length(args) >= 1) as.integer(args[1]) else 50000L
methods <- if (length(args) >= 2) strsplit(args[2], ",")[[1]] else c("pca", "bermuda")
nGenes <- 2000L
methodParams <- list(bermuda = list(max_steps = 200L), deepbid = list(pretrain_epochs = 2L, cluster_epochs = 2L))

scriptDir <- local({
  file <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
  if (length(file)) dirname(normalizePath(file)) else getwd()
})
repo <- dirname(scriptDir)
if (requireNamespace("pkgload", quietly = TRUE)) {
  pkgload::load_all(file.path(repo, "Rpkg"), quiet = TRUE)
} else {
  library(scintegrate)
}
stopifnot(scintegrateAvailable())

statusMb <- function(field) {
  line <- grep(paste0("^", field, ":"), readLines("/proc/self/status"), value = TRUE)
  as.numeric(gsub("[^0-9]", "", line)) / 1024
}
resetPeak <- function() cat("5", file = "/proc/self/clear_refs")

# Run expr; return its value, wall time and the peak resident size above the size just before.
measure <- function(expr) {
  invisible(gc(full = TRUE))
  resetPeak()
  before <- statusMb("VmRSS")
  t0 <- proc.time()[["elapsed"]]
  value <- force(expr)
  list(value = value, seconds = proc.time()[["elapsed"]] - t0, rssBeforeMb = before,
       peakMb = statusMb("VmHWM"), peakIncreaseMb = statusMb("VmHWM") - before)
}

message(sprintf("simulating %d cells x %d genes", nCells, nGenes))
sce <- simulateBatches(nCells = nCells, nGenes = nGenes, nBatches = 2, nTypes = 6, seed = 1)
counts <- SummarizedExperiment::assay(sce, "counts")
countsMb <- as.numeric(utils::object.size(counts)) / 2^20
denseMb <- 8 * as.numeric(nCells) * nGenes / 2^20
available <- methods[vapply(methods, function(m) !inherits(try(.pyCheckMethod(m), silent = TRUE), "try-error"),
                            logical(1))]
skipped <- setdiff(methods, available)
if (length(skipped)) message("not importable, skipped: ", paste(skipped, collapse = ", "))

# warm up: import torch and the method modules so that import costs are not counted
small <- simulateBatches(nCells = 200, nGenes = 100, seed = 2)
warmParams <- list(bermuda = list(max_steps = 5L, max_epochs = 1L), deepbid = list(pretrain_epochs = 1L, cluster_epochs = 1L))
for (m in available) invisible(do.call(integrateBatches, c(list(small, method = m), warmParams[[m]])))
rm(small)

rows <- list()
transfer <- measure({
  ad <- .pyAnnData(counts, list(batch = sce$batch))
  shape <- unlist(reticulate::py_to_r(ad$shape))
  rm(ad)
  shape
})
rows[[1]] <- data.frame(stage = "transfer", seconds = transfer$seconds, rss_before_mb = transfer$rssBeforeMb,
                        peak_mb = transfer$peakMb, peak_increase_mb = transfer$peakIncreaseMb)
for (m in available) {
  message("integrateBatches(method = '", m, "')")
  res <- measure(do.call(integrateBatches, c(list(sce, method = m, seed = 0L), methodParams[[m]])))
  stopifnot(identical(rownames(SingleCellExperiment::reducedDim(res$value, 1)), colnames(sce)))
  rows[[length(rows) + 1]] <- data.frame(stage = m, seconds = res$seconds, rss_before_mb = res$rssBeforeMb,
                                         peak_mb = res$peakMb, peak_increase_mb = res$peakIncreaseMb)
  rm(res)
}
table <- do.call(rbind, rows)
table$counts_mb <- countsMb
table$peak_increase_over_counts <- table$peak_increase_mb / countsMb
print(table, digits = 3)

outDir <- file.path(scriptDir, "results")
dir.create(outDir, showWarnings = FALSE, recursive = TRUE)
utils::write.csv(table, file.path(outDir, "r_memory.csv"), row.names = FALSE)
info <- list(
  n_cells = nCells, n_genes = nGenes, nnz = length(counts@x), counts_dgCMatrix_mb = countsMb,
  dense_equivalent_mb = denseMb, method_params = methodParams[available], skipped_methods = skipped,
  stages = table, transfer_shape = transfer$value,
  note = paste("peak_increase_mb = peak resident size of the R+Python process during the stage minus the",
               "resident size just before it (Linux VmHWM after clear_refs)"),
  r_version = R.version.string, reticulate = as.character(utils::packageVersion("reticulate")),
  scintegrate_r = as.character(utils::packageVersion("scintegrate")), python = reticulate::py_config()$python,
  date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"))
jsonlite::write_json(info, file.path(outDir, "r_memory.json"), auto_unbox = TRUE, pretty = TRUE, digits = 6)
message("wrote ", file.path(outDir, "r_memory.json"))
