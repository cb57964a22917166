# Peak memory of the R front end: integrateBatches() on 50,000 simulated cells, against the size of the
# counts dgCMatrix.
#
# R and the embedded Python share one process, so the process' peak resident set size (VmHWM in
# /proc/self/status, reset before each stage by writing 5 to /proc/self/clear_refs; Linux only) covers
# both. Stages, each measured from the resident size just before it:
#   transfer  - the counts go to Python and an AnnData is built around them (no method run): the
#               bridge's own cost; a copy of the counts would show as >= 1x the dgCMatrix size
#   <method>  - integrateBatches(sce, method) end to end (method's own work included); the same call in
#               a plain Python process (scintegrate.integrate on the same simulated data) is measured too,
#               as python_only_peak_increase_mb: the difference is what the R front end adds
# RSS-based: memory R or Python reuse from their own free lists does not show, so small stages can read
# lower than what they allocate; r_heap_increase_mb (R's gc "max used" vector memory above the level
# before) counts R's own allocations exactly -- for "transfer" that is reticulate's copy of the slots.
#
# Usage (from the repository root):
#   OMP_NUM_THREADS=1 RETICULATE_PYTHON=.venv/bin/python Rscript benchmarks/r_memory.R [n_cells] [methods]
# Defaults: 50000 cells, 2000 genes, methods "pca,bermuda" (comma-separated; those importable are run). Writes
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
# Also R's own heap: the peak of R vector memory (gc's "max used" Vcells) above its level before.
measure <- function(expr) {
  rBefore <- gc(full = TRUE, reset = TRUE)[2, 2]
  resetPeak()
  before <- statusMb("VmRSS")
  t0 <- proc.time()[["elapsed"]]
  value <- force(expr)
  seconds <- proc.time()[["elapsed"]] - t0
  peak <- statusMb("VmHWM")
  rPeak <- gc()[2, 6]
  list(value = value, seconds = seconds, rssBeforeMb = before, peakMb = peak, peakIncreaseMb = peak - before,
       rHeapIncreaseMb = rPeak - rBefore)
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
warmParams <- list(pca = list(), bermuda = list(max_steps = 5L, max_epochs = 1L), deepbid = list(pretrain_epochs = 1L, cluster_epochs = 1L))
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
                        peak_mb = transfer$peakMb, peak_increase_mb = transfer$peakIncreaseMb,
                        r_heap_increase_mb = transfer$rHeapIncreaseMb)
for (m in available) {
  message("integrateBatches(method = '", m, "')")
  res <- measure(do.call(integrateBatches, c(list(sce, method = m, seed = 0L), methodParams[[m]])))
  stopifnot(identical(rownames(SingleCellExperiment::reducedDim(res$value, 1)), colnames(sce)))
  rows[[length(rows) + 1]] <- data.frame(stage = m, seconds = res$seconds, rss_before_mb = res$rssBeforeMb,
                                         peak_mb = res$peakMb, peak_increase_mb = res$peakIncreaseMb,
                                         r_heap_increase_mb = res$rHeapIncreaseMb)
  rm(res)
}
# The same runs in a plain Python process (no R), for reference: what the method itself needs.
pythonOnly <- function(method) {
  code <- sprintf(paste(
    "import gc, json, scintegrate as si",
    "def mb(f): return [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith(f + ':')][0] / 1024",
    "a = si.datasets.simulate_counts(n_cells=%d, n_genes=%d, n_batches=2, n_types=6, seed=1)",
    "w = si.datasets.simulate_counts(n_cells=200, n_genes=100, seed=2); si.integrate(w, method='%s', progress=False, **%s)",
    "del w; gc.collect(); open('/proc/self/clear_refs', 'w').write('5'); before = mb('VmRSS')",
    "si.integrate(a, method='%s', progress=False, seed=0, **%s)",
    "print(json.dumps({'peak_increase_mb': mb('VmHWM') - before}))", sep = "\n"),
    nCells, nGenes, method, .pyDict(warmParams[[method]]), method, .pyDict(methodParams[[method]]))
  out <- system2(reticulate::py_config()$python, c("-c", shQuote(code)), stdout = TRUE, stderr = FALSE)
  jsonlite::fromJSON(out[length(out)])$peak_increase_mb
}
.pyDict <- function(params) {
  if (!length(params)) return("{}")
  paste0("{", paste(sprintf("'%s': %s", names(params), unlist(params)), collapse = ", "), "}")
}
rows[[1]]$python_only_peak_increase_mb <- NA_real_
for (i in seq_along(rows)[-1]) {
  message("python-only reference: ", rows[[i]]$stage)
  rows[[i]]$python_only_peak_increase_mb <- pythonOnly(rows[[i]]$stage)
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
