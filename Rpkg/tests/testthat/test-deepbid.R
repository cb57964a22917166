# DeepBID's extra outputs: clusters -> colData / meta.data, soft assignments -> reducedDim, denoised
# values -> an assay.

tinyDeepbid <- list(pretrain_epochs = 2L, cluster_epochs = 2L, n_top_genes = 100L, hidden = c(32L, 16L))

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
  expect_identical(rec$python$n_clusters, nlevels(out$deepbid_cluster))
  expect_identical(rec$params$hidden, c(32L, 16L))
})
