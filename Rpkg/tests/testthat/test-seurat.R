# Seurat in, Seurat out.

seuratFrom <- function(sce) {
  meta <- as.data.frame(SummarizedExperiment::colData(sce))
  suppressWarnings(SeuratObject::CreateSeuratObject(counts = SummarizedExperiment::assay(sce, "counts"),
                                                    meta.data = meta))
}

test_that("BERMUDA on a Seurat object adds a DimReduc, meta.data clusters and the run record", {
  skip_if_not_installed("SeuratObject")
  skip_if_no_method("bermuda")
  sce <- simSce()
  so <- seuratFrom(sce)
  out <- do.call(integrateBatches, c(list(so, method = "bermuda", seed = 7L), tinyBermuda))
  expect_true("bermuda" %in% SeuratObject::Reductions(out))
  dr <- out[["bermuda"]]
  expect_identical(SeuratObject::Key(dr), "bermuda_")
  emb <- SeuratObject::Embeddings(out, "bermuda")
  expect_identical(rownames(emb), colnames(so))
  expect_identical(colnames(emb)[1:2], c("bermuda_1", "bermuda_2"))
  expect_identical(SeuratObject::DefaultAssay(dr), "RNA")
  expect_identical(sub("\\|.*$", "", as.character(out$bermuda_cluster)), as.character(out$batch))
  expect_identical(out@misc$scintegrate$bermuda$method, "bermuda")
  expect_identical(out@misc$scintegrate$bermuda$seed, 7L)
  expect_identical(SeuratObject::Misc(dr)$scintegrate$params$max_steps, 10L)
  # the same counts and seed as the SCE test give the same embedding
  expect_equal(unname(emb), unname(SingleCellExperiment::reducedDim(bermudaSce(), "BERMUDA")), tolerance = 1e-6)
})

test_that("the PCA baseline on Seurat keeps an existing 'pca' reduction and honours name=", {
  skip_if_not_installed("SeuratObject")
  skip_if_no_method("pca")
  so <- seuratFrom(simSce())
  out <- integrateBatches(so, method = "pca")
  expect_true("pca_baseline" %in% SeuratObject::Reductions(out))
  expect_identical(SeuratObject::Key(out[["pca_baseline"]]), "pca_")
  out <- integrateBatches(out, method = "pca", name = "second")
  expect_setequal(SeuratObject::Reductions(out), c("pca_baseline", "second"))
  expect_identical(SeuratObject::Key(out[["second"]]), "second_")
  expect_identical(rownames(SeuratObject::Embeddings(out, "second")), colnames(so))
})
