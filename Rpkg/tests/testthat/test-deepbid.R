# DeepBID's extra outputs: clusters -> colData / meta.data, soft assignments -> reducedDim, denoised
# values -> an assay.

# n_clusters given: the K estimation (a Leiden sweep) is the Python tests' business and costs ~15 s here
tinyDeepbid <- list(pretrain_epochs = 2L, cluster_epochs = 2L, n_top_genes = 100L, hidden = c(32L, 16L),
                    n_clusters = 3L)

test_that("DeepBID on an SCE adds its latent space, clusters, soft assignments and denoised assay", {
  skip_if_no_method("deepbid")
  sce <- simSce()
  out <- do.call(integrateBatches, c(list(sce, method = "deepbid", seed = 3L), tinyDeepbid))
  emb <- SingleCellExperiment::reducedDim(out, "DEEPBID")
  expect_identical(rownames(emb), colnames(sce))
  expect_identical(ncol(emb), 16L)
  expect_s3_class(out$deepbid_cluster, "factor")
  soft <- SingleCellExperiment::reducedDim(out, "DEEPBID_SOFT")
  expect_identical(dim(soft), c(ncol(sce), nlevels(out$deepbid_cluster)))
  expect_equal(unname(rowSums(soft)), rep(1, ncol(sce)), tolerance = 1e-4)
  # the cluster is the most likely soft assignment
  expect_identical(levels(out$deepbid_cluster)[max.col(soft, ties.method = "first")],
                   as.character(out$deepbid_cluster))
  denoised <- SummarizedExperiment::assay(out, "deepbid_denoised")
  expect_s4_class(denoised, "dgCMatrix")
  expect_identical(dimnames(denoised), dimnames(sce))
  rec <- S4Vectors::metadata(out)$scintegrate$DEEPBID
  expect_identical(rec$python$n_clusters, 3L)
  expect_identical(nlevels(out$deepbid_cluster), 3L)
  expect_identical(rec$params$hidden, c(32L, 16L))
})

test_that("DeepBID on a Seurat object: reduction, meta.data clusters, soft assignments and denoised assay", {
  skip_if_not_installed("SeuratObject")
  skip_if_no_method("deepbid")
  sce <- simSce()
  so <- suppressWarnings(SeuratObject::CreateSeuratObject(
    counts = SummarizedExperiment::assay(sce, "counts"), meta.data = as.data.frame(SummarizedExperiment::colData(sce))))
  out <- do.call(integrateBatches, c(list(so, method = "deepbid", seed = 3L), tinyDeepbid))
  expect_identical(SeuratObject::Key(out[["deepbid"]]), "deepbid_")
  expect_identical(rownames(SeuratObject::Embeddings(out, "deepbid")), colnames(so))
  expect_identical(nlevels(out$deepbid_cluster), 3L)
  soft <- SeuratObject::Misc(out[["deepbid"]])$obsm$deepbid_soft
  expect_identical(dim(soft), c(ncol(so), 3L))
  expect_true("deepbid_denoised" %in% SeuratObject::Assays(out))
  expect_identical(dim(SeuratObject::GetAssayData(out, slot = "data", assay = "deepbid_denoised")), dim(so))
  expect_identical(SeuratObject::DefaultAssay(out), "RNA")
})
