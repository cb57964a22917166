# The R half of benchmarks/r_vs_python.py (which runs it; see there): times integrateBatches() on one
# .h5ad file for each method of a JSON run list, after a warm-up run of each method on simulated data
# (so that imports are not timed), and writes the times as JSON.
#
# Usage: Rscript benchmarks/r_vs_python.R <data.h5ad> <runs.json> <threads> <repeats> <out.json>
#   runs.json: [{"name": ..., "params": {...}, "quick": {...}}, ...]; threads: torch threads of each run.

args <- commandArgs(trailingOnly = TRUE)
stopifnot(length(args) == 5L)
suppressPackageStartupMessages(library(scintegrate))
runs <- jsonlite::fromJSON(args[2], simplifyVector = FALSE)
options(scintegrate.threads = as.integer(args[3]))
repeats <- as.integer(args[4])
stopifnot(scintegrateAvailable())

sce <- readH5ad(args[1])
warm <- simulateBatches(nCells = 200, nGenes = 100, seed = 0)

timeRun <- function(run) {
  invisible(do.call(integrateBatches, c(list(warm, method = run$name), run$quick)))
  seconds <- numeric(repeats)
  for (r in seq_len(repeats)) {
    elapsed <- system.time(out <- do.call(integrateBatches, c(list(sce, method = run$name), run$params)))
    seconds[r] <- round(elapsed[[3]], 3)
  }
  name <- names(S4Vectors::metadata(out)$scintegrate)[1]
  rec <- S4Vectors::metadata(out)$scintegrate[[name]]$python
  list(method = run$name, seconds = I(seconds), python_stage_seconds = rec$timings, threads = rec$threads,
       epochs_used = rec$epochs_used, dim = dim(SingleCellExperiment::reducedDim(out, name)))
}

out <- lapply(runs, timeRun)
torch <- scintegrate:::.pyState$torch
writeLines(jsonlite::toJSON(list(runs = out, torch_load = torch, r_version = R.version.string,
                                 blas = sessionInfo()$BLAS),
                            auto_unbox = TRUE, null = "null", digits = NA), args[5])
