# genes x cells matrix / dgCMatrix in, cells x d matrix out.

test_that("dense and sparse counts give the same PCA baseline, with names, order and metadata", {
  skip_if_no_method("pca")
  d <- rCounts(nGenes = 80, nCells = 120)
  sparse <- integrateBatches(d$counts, method = "pca", batch = d$batch, seed = 1L)
  dense <- integrateBatches(as.matrix(d$counts), method = "pca", batch = d$batch, seed = 1L)
  expect_identical(rownames(sparse), colnames(d$counts))
  expect_equal(abs(unname(sparse)), abs(unname(dense)), ignore_attr = TRUE, tolerance = 1e-4)
  rec <- attr(sparse, "scintegrate")
  expect_identical(rec$method, "pca")
  expect_identical(rec$seed, 1L)
  expect_identical(rec$batch$levels, c("b1", "b2"))
  expect_false(is.null(rec$pythonVersion))
})

test_that("a matrix without dimnames gives a matrix without row names; a triplet matrix is accepted", {
  skip_if_no_method("pca")
  d <- rCounts(nGenes = 50, nCells = 60)
  m <- d$counts
  m@Dimnames <- list(NULL, NULL)
  emb <- integrateBatches(m, method = "pca", batch = d$batch)
  expect_null(rownames(emb))
  expect_identical(nrow(emb), 60L)
  trip <- methods::as(d$counts, "TsparseMatrix")
  expect_identical(rownames(integrateBatches(trip, method = "pca", batch = d$batch)), colnames(d$counts))
})

test_that("an unknown method and a Python-side error come back as clear R errors", {
  skip_if_no_python()
  d <- rCounts()
  expect_error(integrateBatches(d$counts, method = "harmonica", batch = d$batch),
               "unknown method 'harmonica'; available: \\[.*'bermuda'.*\\]")
  neg <- d$counts
  neg@x[1] <- -1
  skip_if_no_method("bermuda")
  expect_error(integrateBatches(neg, method = "bermuda", batch = d$batch), "negative values")
})
