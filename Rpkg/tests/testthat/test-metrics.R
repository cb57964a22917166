# integrationMetrics: hand-made embeddings with known answers.

# Two cell types far apart; batches either mixed within each type or split into separate blobs.
toyEmbedding <- function(mixed, n = 200, seed = 1) {
  set.seed(seed)
  type <- rep(c("T1", "T2"), each = n / 2)
  batch <- rep(c("b1", "b2"), times = n / 2)
  shift <- if (mixed) 0 else ifelse(batch == "b1", 0, 6)
  x <- cbind(ifelse(type == "T1", 0, 20) + rnorm(n), shift + rnorm(n))
  list(x = x, batch = batch, type = type)
}

test_that("mixed batches score higher iLISI than separated ones; types stay apart in both", {
  skip_if_no_python()
  mixed <- toyEmbedding(TRUE)
  split <- toyEmbedding(FALSE)
  keys <- c("ilisi", "clisi", "knn_accuracy", "asw_batch")
  m1 <- integrationMetrics(mixed$x, batch = mixed$batch, label = mixed$type, metrics = keys)
  m2 <- integrationMetrics(split$x, batch = split$batch, label = split$type, metrics = keys)
  expect_s3_class(m1, "data.frame")
  expect_identical(m1$embedding, "embedding")
  expect_true(all(c("ilisi", "clisi", "knn_accuracy", "nmi", "overall") %in% names(m1)))
  expect_gt(m1$ilisi, 1.8)  # two batches, perfectly mixed: close to 2
  expect_lt(m2$ilisi, 1.05)  # separated: each cell sees only its batch
  expect_equal(m1$clisi, 1, tolerance = 0.01)  # types never mix
  expect_equal(m1$knn_accuracy, 1)
  expect_gt(m1$asw_batch, m2$asw_batch)
  expect_true(is.na(m1$nmi))  # not requested
})

test_that("metrics of several reducedDims of an SCE come back as one row each", {
  skip_if_no_python()
  sce <- rSce(nCells = 200)
  mixed <- toyEmbedding(TRUE)
  split <- toyEmbedding(FALSE)
  SingleCellExperiment::reducedDim(sce, "MIXED") <- mixed$x
  SingleCellExperiment::reducedDim(sce, "SPLIT") <- split$x
  sce$batch <- mixed$batch
  sce$cell_type <- mixed$type
  res <- integrationMetrics(sce, c("MIXED", "SPLIT"), batch = "batch", label = "cell_type",
                            metrics = c("ilisi", "knn_accuracy"))
  expect_identical(res$embedding, c("MIXED", "SPLIT"))
  expect_gt(res$ilisi[1], res$ilisi[2])
  expect_error(integrationMetrics(sce, "UMAP", batch = "batch", label = "cell_type"),
               "reducedDim 'UMAP' not found; available: MIXED, SPLIT")
  expect_error(integrationMetrics(sce, "MIXED", batch = "donor", label = "cell_type"), "column 'donor' not found")
  expect_error(integrationMetrics(sce, "MIXED", metrics = "bogus"), "unknown metric\\(s\\) \\['bogus'\\]")
})

test_that("metrics of a Seurat reduction", {
  skip_if_not_installed("SeuratObject")
  skip_if_no_python()
  mixed <- toyEmbedding(TRUE)
  d <- rCounts(nCells = 200)
  so <- suppressWarnings(SeuratObject::CreateSeuratObject(counts = d$counts))
  so$batch <- mixed$batch
  so$cell_type <- mixed$type
  x <- mixed$x
  dimnames(x) <- list(colnames(so), c("toy_1", "toy_2"))
  so[["toy"]] <- SeuratObject::CreateDimReducObject(embeddings = x, key = "toy_", assay = "RNA")
  res <- integrationMetrics(so, "toy", metrics = "ilisi")
  expect_gt(res$ilisi, 1.8)
})

test_that("an unintegrated embedding enables pcr_comparison", {
  skip_if_no_python()
  mixed <- toyEmbedding(TRUE)
  split <- toyEmbedding(FALSE)
  without <- integrationMetrics(mixed$x, batch = mixed$batch, label = mixed$type, metrics = "pcr_comparison")
  expect_true(is.na(without$pcr_comparison))
  with <- integrationMetrics(mixed$x, batch = mixed$batch, label = mixed$type, metrics = "pcr_comparison",
                             unintegrated = split$x)
  # the batch explains much of the split embedding's variance and none of the mixed one's
  expect_gt(with$pcr_comparison, 0.5)
})
