test_that("simulateBatches returns an SCE of integer counts with the requested design", {
  skip_if_no_python()
  sce <- simulateBatches(nCells = c(50, 70), nGenes = 40, nTypes = 2, seed = 5)
  expect_s4_class(sce, "SingleCellExperiment")
  expect_identical(dim(sce), c(40L, 120L))
  counts <- SummarizedExperiment::assay(sce, "counts")
  expect_s4_class(counts, "dgCMatrix")
  expect_true(all(counts@x == round(counts@x)) && all(counts@x > 0))
  expect_identical(as.vector(table(sce$batch)), c(50L, 70L))
  expect_identical(levels(sce$cell_type), c("type1", "type2"))
  expect_identical(S4Vectors::metadata(sce)$simulation$n_genes, 40L)
  expect_identical(simulateBatches(nCells = c(50, 70), nGenes = 40, nTypes = 2, seed = 5), sce)
  other <- simulateBatches(nCells = c(50, 70), nGenes = 40, nTypes = 2, seed = 6)
  expect_false(identical(SummarizedExperiment::assay(other, "counts"), counts))
})

test_that("simulateBatches' removal experiment leaves type1 out of batch1; bad arguments error clearly", {
  skip_if_no_python()
  sce <- simulateBatches(nCells = 200, nGenes = 30, nTypes = 3, experiment = "removal1", seed = 1)
  expect_identical(sum(sce$batch == "batch1" & sce$cell_type == "type1"), 0L)
  expect_gt(sum(sce$batch == "batch2" & sce$cell_type == "type1"), 0L)
  expect_error(simulateBatches(nCells = 100, nGenes = 30, de_prob = 2), "de_prob must be in \\[0, 1\\]")
})

test_that("readH5ad rejects a missing file", {
  expect_error(readH5ad(tempfile(fileext = ".h5ad")), "^no such file: '.*\\.h5ad'$")
  expect_error(readH5ad(c("a", "b")), "path must be a single file path")
})

test_that("readH5ad uses the Python reader: a file that is not h5ad gives one clean line", {
  skip_if_no_python()
  path <- tempfile(fileext = ".h5ad")
  writeLines("not an h5ad file", path)
  msg <- tryCatch(readH5ad(path), error = conditionMessage)
  expect_match(msg, "^'.*' is not an \\.h5ad file \\(no HDF5 signature\\)")
  expect_false(grepl("ValueError|Traceback|\n", msg))
})
