# SingleCellExperiment in, SingleCellExperiment out.

test_that("the PCA baseline adds a reducedDim with the cells' names and order, and records the run", {
  skip_if_no_method("pca")
  sce <- simSce()
  out <- integrateBatches(sce, method = "pca", seed = 2L)
  emb <- SingleCellExperiment::reducedDim(out, "PCA_BASELINE")
  expect_identical(rownames(emb), colnames(sce))
  expect_true(all(is.finite(emb)))
  rec <- S4Vectors::metadata(out)$scintegrate$PCA_BASELINE
  expect_identical(rec$method, "pca")
  expect_identical(rec$seed, 2L)
  expect_identical(rec$batch, list(column = "batch", levels = c("batch1", "batch2")))
  expect_identical(rec$packageVersion, as.character(utils::packageVersion("scintegrate")))
  expect_identical(rec$python$method, "pca")
  expect_identical(rec$python$seed, 2L)
  # the input is left as it was (the Python side sees the counts read-only)
  expect_identical(SummarizedExperiment::assay(out, "counts"), SummarizedExperiment::assay(sce, "counts"))
  expect_identical(S4Vectors::metadata(out)$simulation, S4Vectors::metadata(sce)$simulation)
  named <- integrateBatches(sce, method = "PCA", name = "baseline")
  expect_identical(SingleCellExperiment::reducedDimNames(named), "baseline")
})

test_that("BERMUDA adds its code, its per-batch clusters in colData and the run record", {
  skip_if_no_method("bermuda")
  sce <- simSce()
  out <- bermudaSce()
  emb <- SingleCellExperiment::reducedDim(out, "BERMUDA")
  expect_identical(dim(emb), c(ncol(sce), 20L))
  expect_identical(rownames(emb), colnames(sce))
  expect_true(all(is.finite(emb)))
  # clusters are found in each batch separately: every cluster name starts with the cell's batch
  expect_s3_class(out$bermuda_cluster, "factor")
  expect_identical(sub("\\|.*$", "", as.character(out$bermuda_cluster)), as.character(out$batch))
  rec <- S4Vectors::metadata(out)$scintegrate$BERMUDA
  expect_identical(rec$method, "bermuda")
  expect_identical(rec$seed, 7L)
  expect_identical(rec$params$max_steps, 10L)
  expect_identical(rec$python$params$max_epochs, 3L)
  expect_lte(rec$python$epochs_used, 3L)
  expect_true(is.list(rec$python$history))
  expect_identical(SummarizedExperiment::assay(out, "counts"), SummarizedExperiment::assay(sce, "counts"))
})

test_that("a matrix gives the same BERMUDA embedding as the SCE for the same seed (cells x d, names kept)", {
  skip_if_no_method("bermuda")
  sce <- simSce()
  counts <- SummarizedExperiment::assay(sce, "counts")
  emb <- do.call(integrateBatches, c(list(counts, method = "bermuda", batch = sce$batch, seed = 7L), tinyBermuda))
  expect_identical(rownames(emb), colnames(sce))
  expect_identical(colnames(emb)[1:2], c("BERMUDA_1", "BERMUDA_2"))
  expect_equal(unname(emb), unname(SingleCellExperiment::reducedDim(bermudaSce(), "BERMUDA")),
               ignore_attr = TRUE, tolerance = 1e-6)
  expect_identical(attr(emb, "scintegrate")$method, "bermuda")
  expect_identical(attr(emb, "cellData")$bermuda_cluster, bermudaSce()$bermuda_cluster)
})
