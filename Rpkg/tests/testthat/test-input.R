# Bad input is rejected in R, before Python is touched: these tests need no Python.

test_that("a missing batch column names the available columns", {
  sce <- rSce()
  expect_error(integrateBatches(sce, method = "pca", batch = "donor"),
               "column 'donor' not found in colData\\(x\\); available columns: batch, cell_type")
  msg <- tryCatch(integrateBatches(sce, batch = as.character(sce$batch)), error = conditionMessage)
  expect_identical(msg, paste("batch must be the name of a column (a single string); for a per-cell vector",
                              "use a matrix input or add it as a column"))
  expect_error(integrationMetrics(sce, "X", label = 1:3), "^label must be the name of a column")
})

test_that("a single batch, missing batch labels and wrong lengths are rejected", {
  sce <- rSce()
  sce$one <- "b1"
  expect_error(integrateBatches(sce, method = "pca", batch = "one"),
               "has 1 batch \\(b1\\); integration needs at least 2 batches")
  sce$gaps <- ifelse(seq_len(ncol(sce)) %% 10 == 0, NA, sce$batch)
  expect_error(integrateBatches(sce, method = "pca", batch = "gaps"), "has 8 missing values; every cell needs a batch")
  d <- rCounts()
  expect_error(integrateBatches(d$counts, method = "pca", batch = d$batch[-1]), "batch has 79 values for 80 cells")
  expect_error(integrateBatches(d$counts, method = "pca"), "batch is missing: give one batch label per cell")
  # an unused factor level does not count as a batch
  f <- factor(rep("b1", 80), levels = c("b1", "b2"))
  expect_error(integrateBatches(d$counts, method = "pca", batch = f), "has 1 batch")
})

test_that("bad matrices, classes, parameters and names are rejected", {
  d <- rCounts()
  expect_error(integrateBatches(d$counts[, 0], method = "pca", batch = character()), "counts matrix is empty")
  dup <- d$counts
  colnames(dup)[2] <- colnames(dup)[1]
  expect_error(integrateBatches(dup, method = "pca", batch = d$batch), "cell names .* not unique \\(e.g. c1\\)")
  expect_error(integrateBatches(data.frame(a = 1:3)), "not an object of class 'data.frame'")
  expect_error(integrateBatches(d$counts, method = "pca", batch = d$batch, 5), "must be named")
  expect_error(integrateBatches(d$counts, method = "pca", batch = d$batch, batch_key = "b"),
               "batch_key cannot be passed in ...: integrateBatches\\(\\) sets it")
  expect_error(integrateBatches(d$counts, method = c("pca", "bermuda"), batch = d$batch), "method must be a single")
  dupGenes <- d$counts
  rownames(dupGenes)[3] <- rownames(dupGenes)[2]
  expect_error(integrateBatches(dupGenes, method = "pca", batch = d$batch),
               "gene names \\(row names\\) are not unique \\(e.g. g2\\)")
  for (seed in list(1.5, -1, NA, c(1, 2), "1", 2^40)) {
    expect_error(integrateBatches(d$counts, method = "pca", batch = d$batch, seed = seed),
                 "seed must be a single non-negative whole number")
  }
  expect_error(simulateBatches(seed = -3), "seed must be a single non-negative whole number")
  expect_error(integrateBatches(rSce(), method = "pca", assay = "logcounts"),
               "assay 'logcounts' not found; available assays: counts")
  expect_error(integrationMetrics(list(1)), "not an object of class 'list'")
})

test_that("Seurat input with a missing batch column is rejected", {
  skip_if_not_installed("SeuratObject")
  d <- rCounts()
  so <- suppressWarnings(SeuratObject::CreateSeuratObject(counts = d$counts))
  expect_error(integrateBatches(so, method = "pca", batch = "batch"),
               "column 'batch' not found in the Seurat object's meta.data; available columns: orig.ident")
})

test_that("method parameters: whole numbers become integers, others are kept", {
  p <- scintegrate:::.pyParams(list(max_steps = 200, lr = 1e-3, hidden = c(10, 5), flag = TRUE, name = "x"))
  expect_identical(p$max_steps, 200L)
  expect_identical(p$lr, 1e-3)
  expect_identical(p$hidden, c(10, 5))
  expect_identical(p$flag, TRUE)
})

test_that("installPython's plan pins numpy<2 and torch 2.13 and installs the given source", {
  src <- tempfile("scintegrate-src")
  dir.create(src)
  plan <- scintegrate:::.installPlan(source = src, torchIndexUrl = "https://download.pytorch.org/whl/cpu")
  expect_identical(plan$base, "numpy<2")
  expect_identical(plan$steps[[1]]$packages, c("numpy<2", "torch==2.13.0"))
  expect_identical(plan$steps[[1]]$pipOptions, c("--extra-index-url", "https://download.pytorch.org/whl/cpu"))
  expect_identical(plan$steps[[2]]$packages, c(normalizePath(src), "numpy<2", "torch==2.13.0"))
  withr::with_envvar(c(SCINTEGRATE_PYTHON_SOURCE = "scintegrate==0.1.0"),
                     expect_identical(scintegrate:::.installPlan()$steps[[2]]$packages[1], "scintegrate==0.1.0"))
  expect_error(scintegrate:::.installPlan(source = c("a", "b")), "source must be a single path")
})

test_that("installPython's default source is the wheel shipped in the R package", {
  dir <- tempfile("inst-python")
  dir.create(dir)
  expect_null(scintegrate:::.bundledWheel(dir))
  wheel <- file.path(dir, "scintegrate-0.1.0-py3-none-any.whl")
  file.create(wheel)
  expect_identical(scintegrate:::.bundledWheel(dir), wheel)
  shipped <- scintegrate:::.bundledWheel()
  withr::with_envvar(c(SCINTEGRATE_PYTHON_SOURCE = NA), {
    if (is.null(shipped)) {
      expect_error(scintegrate:::.installPlan(), "no wheel of the Python package ships")
    } else {
      expect_identical(scintegrate:::.installPlan()$steps[[2]]$packages[1], normalizePath(shipped))
    }
  })
  expect_error(installPython(envname = c("a", "b")), "envname must be a single")
})

test_that("pip runs without R's LD_LIBRARY_PATH, which is restored afterwards", {
  skip_if(!nzchar(Sys.which("sh")))
  withr::with_envvar(c(LD_LIBRARY_PATH = "/r/lib", PYTHONPATH = "/x"), {
    out <- suppressMessages(scintegrate:::.runClean(Sys.which("sh"), c("-c", "echo \"[${LD_LIBRARY_PATH-unset}|${PYTHONPATH-unset}]\""),
                                  capture = TRUE))
    expect_identical(out[length(out)], "[unset|unset]")
    expect_identical(Sys.getenv("LD_LIBRARY_PATH"), "/r/lib")
    expect_identical(Sys.getenv("PYTHONPATH"), "/x")
  })
  expect_error(suppressMessages(scintegrate:::.runClean(Sys.which("sh"), c("-c", "echo boom; exit 3"), capture = TRUE)),
               "exit status 3\\):\nboom")
  expect_error(suppressMessages(scintegrate:::.runClean(Sys.which("sh"), c("-c", "exit 4"))),
               "exit status 4\\) \\(see its output above\\)")
})

test_that("Python exceptions reach R without their class and in R's words", {
  msg <- scintegrate:::.pyErrorMessage
  expect_identical(msg("ValueError: adata.X has negative values\nRun `reticulate::py_last_error()` for details."),
                   "the counts matrix has negative values")
  expect_identical(msg("KeyError: \"column 'donor' not in adata.obs\""), "column 'donor' not in the cell metadata")
  expect_identical(msg("KeyError: 'batch'"), "batch")
  expect_identical(msg("ValueError: adata.layers['counts'] has NaN; adata.obsm[\"X_pca\"] and adata.obs['b']"),
                   "assay 'counts' has NaN; embedding 'X_pca' and cell metadata column 'b'")
  expect_identical(msg("FileNotFoundError: no such file: 'a.h5ad'"), "no such file: 'a.h5ad'")
  expect_identical(msg("RuntimeError: method 'x' cannot be imported (ImportError: y)"),
                   "method 'x' cannot be imported (ImportError: y)")
})

test_that("without a usable Python, availability is FALSE and errors name installPython()", {
  skip_if_not_installed("callr")
  skip_if_not(file.exists("/usr/bin/python3"), "no /usr/bin/python3 to stand in for a Python without scintegrate")
  out <- callr::r(function() {
    if (!requireNamespace("scintegrate", quietly = TRUE)) return(NULL)
    counts <- Matrix::Matrix(matrix(rpois(200, 2), 10, 20), sparse = TRUE)
    ok <- scintegrate::scintegrateAvailable(reason = TRUE)
    err <- tryCatch(scintegrate::integrateBatches(counts, method = "pca", batch = rep(1:2, 10)),
                    error = function(e) conditionMessage(e))
    list(ok = ok, err = err)
  }, env = c(callr::rcmd_safe_env(), RETICULATE_PYTHON = "/usr/bin/python3"))
  skip_if(is.null(out), "scintegrate is not installed (run under R CMD check)")
  expect_false(out$ok)
  expect_match(attr(out$ok, "reason"), "numpy is not installed|'scintegrate' is not installed")
  expect_match(out$err, "Python side of scintegrate is not available .*installPython\\(\\)")
})
