# Counts go to Python as sparse slots (never dense) and come back unchanged.

test_that("a dgCMatrix round-trips exactly; Python reads it as a read-only CSR view, no copy in Python", {
  skip_if_no_python()
  d <- rCounts(nGenes = 30, nCells = 40)
  m <- d$counts
  m[, 5] <- 0  # an empty cell
  m[7, ] <- 0  # an empty gene
  m <- Matrix::drop0(m)
  rownames(m)[1:2] <- c("gene with space", "g\u00e8ne-\u00e9")
  colnames(m)[3] <- "cell/with:odd chars"
  rt <- scintegrate:::.pyRoundTrip(m)
  expect_identical(rt$counts, m)
  expect_identical(rt$format, "csr")
  expect_true(rt$noCopyInPython)
  expect_true(rt$readOnly)
})

test_that("the largest shared data set survives R -> Python -> R with every cell, gene, name and order", {
  skip_if_no_python()
  dir <- sharedDataDir()
  path <- file.path(dir, "pbmc_kang_ctrl_donors.h5ad")
  skip_if_not(nzchar(dir) && file.exists(path), "shared data (pbmc_kang_ctrl_donors.h5ad) not found")
  sce <- readH5ad(path)
  counts <- SummarizedExperiment::assay(sce, "counts")
  expect_s4_class(counts, "dgCMatrix")
  # against the file as anndata reads it
  ad <- reticulate::import("anndata", convert = FALSE)$read_h5ad(path)
  expect_identical(dim(counts), rev(unlist(reticulate::py_to_r(ad$shape))))
  expect_identical(colnames(counts), reticulate::py_to_r(ad$obs_names$tolist()))
  expect_identical(rownames(counts), reticulate::py_to_r(ad$var_names$tolist()))
  expect_identical(as.character(sce$batch), reticulate::py_to_r(ad$obs[["batch"]]$astype("str")$tolist()))
  expect_equal(sum(counts@x), reticulate::py_to_r(ad$X$sum()), tolerance = 1e-10)
  expect_identical(length(counts@x), as.integer(reticulate::py_to_r(ad$X$nnz)))
  rt <- scintegrate:::.pyRoundTrip(counts)
  expect_identical(rt$counts, counts)
  expect_true(rt$noCopyInPython)
})

# Peak resident memory (R + Python, one process) while `expr` runs, above the level just before (MB).
peakIncreaseMb <- function(expr) {
  status <- function(field) {
    line <- grep(paste0("^", field, ":"), readLines("/proc/self/status"), value = TRUE)
    as.numeric(gsub("[^0-9]", "", line)) / 1024
  }
  invisible(gc(full = TRUE))
  cat("5", file = "/proc/self/clear_refs")  # resets VmHWM to the current resident size
  before <- status("VmRSS")
  force(expr)
  status("VmHWM") - before
}

test_that("handing the largest shared set to Python costs at most one copy of the sparse slots, never dense", {
  skip_if_no_python()
  skip_if_not(file.exists("/proc/self/clear_refs") && file.access("/proc/self/clear_refs", 2) == 0,
              "peak memory needs Linux /proc/self/clear_refs")
  dir <- sharedDataDir()
  path <- file.path(dir, "pbmc_kang_ctrl_donors.h5ad")
  skip_if_not(nzchar(dir) && file.exists(path), "shared data (pbmc_kang_ctrl_donors.h5ad) not found")
  sce <- readH5ad(path)
  counts <- SummarizedExperiment::assay(sce, "counts")
  sparseMb <- as.numeric(utils::object.size(counts)) / 2^20
  denseMb <- 8 * prod(dim(counts)) / 2^20
  increase <- peakIncreaseMb({
    ad <- scintegrate:::.pyAnnData(counts, list(batch = sce$batch))
    rm(ad)
  })
  expect_lt(increase, 1.3 * sparseMb + 16)
  expect_lt(increase, denseMb / 2)
})

test_that("integrating the largest shared set keeps every cell in order (PCA baseline)", {
  skip_if_no_method("pca")
  dir <- sharedDataDir()
  path <- file.path(dir, "pbmc_kang_ctrl_donors.h5ad")
  skip_if_not(nzchar(dir) && file.exists(path), "shared data (pbmc_kang_ctrl_donors.h5ad) not found")
  sce <- readH5ad(path)
  before <- SummarizedExperiment::assay(sce, "counts")
  out <- integrateBatches(sce, method = "pca", batch = "batch", n_features = 1000, n_comps = 20)
  emb <- SingleCellExperiment::reducedDim(out, "PCA_BASELINE")
  expect_identical(rownames(emb), colnames(sce))
  expect_identical(nrow(emb), 8684L)
  expect_identical(SummarizedExperiment::assay(out, "counts"), before)
})
