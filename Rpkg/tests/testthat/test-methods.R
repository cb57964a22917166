# Every method of the Python registry gets the R path: one round trip each, generated from the registry
# (plugins included), with the method's quick parameters.

test_that("every registered method runs from R: reducedDim, cell names, colData outputs, record", {
  skip_if_no_python()
  sce <- simSce()
  methods <- scintegrateMethods()
  expect_identical(methods$method, names(scintegrate:::.pyMethods()))
  for (spec in scintegrate:::.pyMethods()) {
    labels <- if (nzchar(spec$labels_param)) "cell_type" else NULL  # semi-supervised methods learn from labels
    out <- do.call(integrateBatches, c(list(sce, method = spec$name, seed = 1L, labels = labels), spec$quick_params))
    name <- toupper(sub("^X_", "", spec$key))
    expect_true(name %in% SingleCellExperiment::reducedDimNames(out), info = spec$name)
    emb <- SingleCellExperiment::reducedDim(out, name)
    expect_identical(nrow(emb), ncol(sce), info = spec$name)
    expect_gte(ncol(emb), 1L)
    expect_identical(rownames(emb), colnames(sce), info = spec$name)
    expect_true(all(is.finite(emb)), info = spec$name)
    for (column in unlist(spec$obs_keys)) {
      expect_true(column %in% names(SummarizedExperiment::colData(out)), info = paste(spec$name, column))
      expect_length(out[[column]], ncol(sce))
    }
    for (extra in unlist(spec$obsm_keys)) {
      expect_identical(nrow(SingleCellExperiment::reducedDim(out, toupper(extra))), ncol(sce), info = extra)
    }
    for (layer in unlist(spec$layer_keys)) {
      expect_identical(dim(SummarizedExperiment::assay(out, layer)), dim(sce), info = layer)
    }
    rec <- S4Vectors::metadata(out)$scintegrate[[name]]
    expect_identical(rec$method, spec$name)
    expect_identical(rec$python$method, spec$name)
  }
})

test_that("method = NULL runs the registry's default method under its registered name", {
  skip_if_no_python()
  methods <- scintegrateMethods()
  expect_identical(sum(methods$default), 1L)
  default <- scintegrate:::.pyMethods()[[methods$method[methods$default]]]
  sce <- simSce()
  emb <- do.call(integrateBatches, c(list(SummarizedExperiment::assay(sce, "counts"), batch = sce$batch),
                                     default$quick_params))
  expect_identical(attr(emb, "scintegrate")$method, default$name)
  expect_identical(colnames(emb)[1], paste0(methods$reducedDim[methods$default], "_1"))
})

test_that("options(scintegrate.threads) sets the torch threads of a run and is checked", {
  skip_if_no_python()
  pca <- scintegrateMethods()$method[scintegrateMethods()$kind == "baseline"][1]
  d <- rCounts(nGenes = 60, nCells = 80)
  emb <- withr::with_options(list(scintegrate.threads = 1), integrateBatches(d$counts, method = pca, batch = d$batch))
  expect_identical(attr(emb, "scintegrate")$python$threads, 1L)
  withr::with_options(list(scintegrate.threads = 0),
                      expect_error(integrateBatches(d$counts, method = pca, batch = d$batch),
                                   "scintegrate.threads must be NULL or a positive whole number"))
})

test_that("torch inside R calls its own BLAS, not R's (the cause of a 15-30x slower R path)", {
  skip_if_no_python()
  scintegrate:::.py()
  info <- scintegrate:::.pyState$torch
  expect_false(info$foreign_blas)
})

test_that("the package's R code names no method (names come from the Python registry)", {
  dir <- file.path("..", "..", "R")
  skip_if_not(dir.exists(dir), "R sources not found (installed package)")
  lines <- unlist(lapply(list.files(dir, pattern = "\\.R$", full.names = TRUE), readLines))
  code <- lines[!grepl("^\\s*#'", lines)]
  expect_identical(grep("[\"'](bermuda|deepbid|pca)[\"']", code, value = TRUE, ignore.case = TRUE), character())
})
