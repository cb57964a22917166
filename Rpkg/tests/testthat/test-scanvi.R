# A conditional VAE through the one registry: scANVI learns from a labels column, predicts the cells left
# unlabelled, and the labels argument is refused by methods without labels and required by scANVI.

tinyScanvi <- list(max_epochs = 3L, scanvi_max_epochs = 2L, n_hidden = 32L, n_features = 100L)

test_that("scANVI on an SCE: latent space, predictions and probabilities from a labels column", {
  skip_if_no_method("scanvi")
  sce <- simSce()
  truth <- as.character(sce$cell_type)
  sce$partial <- truth
  sce$partial[sce$batch == levels(factor(sce$batch))[2]] <- NA  # the second batch is unlabelled
  out <- do.call(integrateBatches, c(list(sce, method = "scanvi", labels = "partial", seed = 1L), tinyScanvi))
  emb <- SingleCellExperiment::reducedDim(out, "SCANVI")
  expect_identical(dim(emb), c(ncol(sce), 10L))
  expect_identical(rownames(emb), colnames(sce))
  expect_s3_class(out$scanvi_prediction, "factor")
  expect_setequal(levels(out$scanvi_prediction), unique(truth))
  probs <- SingleCellExperiment::reducedDim(out, "SCANVI_PROBABILITIES")
  expect_equal(unname(rowSums(probs)), rep(1, ncol(sce)), tolerance = 1e-4)
  expect_equal(out$scanvi_confidence, unname(apply(probs, 1, max)), tolerance = 1e-5)
  rec <- S4Vectors::metadata(out)$scintegrate$SCANVI
  expect_identical(rec$python$n_labelled, sum(!is.na(sce$partial)))
  expect_identical(rec$params$labels_key, "labels")
})

test_that("labels = is required by scANVI and refused by methods without labels", {
  skip_if_no_method("scanvi")
  sce <- simSce()
  expect_error(integrateBatches(sce, method = "scanvi"), "method 'scanvi' learns from cell-type labels")
  expect_error(integrateBatches(sce, method = "pca", labels = "cell_type"), "method 'pca' takes no cell-type labels")
  expect_error(integrateBatches(sce, method = "scanvi", labels = "nope"), "column 'nope' not found in colData")
  counts <- SummarizedExperiment::assay(sce, "counts")
  expect_error(integrateBatches(counts, method = "scanvi", batch = sce$batch, labels = c("a", "b")),
               "labels has 2 values for")
  methods <- scintegrateMethods()
  expect_identical(methods$labels[methods$method == "scanvi"], TRUE)
  expect_identical(methods$labels[methods$method == "pca"], FALSE)
})

test_that("scANVI on a matrix with a label vector", {
  skip_if_no_method("scanvi")
  sce <- simSce()
  counts <- SummarizedExperiment::assay(sce, "counts")
  emb <- do.call(integrateBatches, c(list(counts, method = "scanvi", batch = sce$batch,
                                          labels = as.character(sce$cell_type)), tinyScanvi))
  expect_identical(dim(emb), c(ncol(sce), 10L))
  expect_s3_class(attr(emb, "cellData")$scanvi_prediction, "factor")
})
