# Shared by the tests: skips with a reason when the Python side (or one method) is missing, and small
# data sets built in R (no Python needed) or simulated by the Python core.

skip_if_no_python <- function() {
  ok <- scintegrateAvailable(reason = TRUE)
  testthat::skip_if_not(ok, paste("Python side of scintegrate not available:", attr(ok, "reason")))
}

# Skips unless `method` is registered and importable in the Python package.
skip_if_no_method <- function(method) {
  skip_if_no_python()
  err <- tryCatch({
    scintegrate:::.pyCheckMethod(method)
    NULL
  }, error = function(e) conditionMessage(e))
  testthat::skip_if_not(is.null(err), paste0("method '", method, "' not available: ", err))
}

# A genes x cells dgCMatrix of Poisson counts with two batches and two cell types (pure R).
rCounts <- function(nGenes = 60, nCells = 80, seed = 1) {
  set.seed(seed)
  type <- rep(c("A", "B"), length.out = nCells)
  batch <- rep(c("b1", "b2"), each = nCells / 2)
  mu <- matrix(rexp(nGenes * 2, 1), nGenes, 2)
  lambda <- mu[, ifelse(type == "A", 1, 2)] * ifelse(batch == "b1", 1, 1.5)
  m <- Matrix::Matrix(matrix(rpois(length(lambda), lambda), nGenes, nCells), sparse = TRUE)
  m <- methods::as(m, "dgCMatrix")
  dimnames(m) <- list(paste0("g", seq_len(nGenes)), paste0("c", seq_len(nCells)))
  list(counts = m, batch = batch, type = type)
}

rSce <- function(...) {
  d <- rCounts(...)
  SingleCellExperiment::SingleCellExperiment(
    assays = list(counts = d$counts),
    colData = S4Vectors::DataFrame(batch = d$batch, cell_type = d$type, row.names = colnames(d$counts)))
}

# Small simulated data from the Python core, made once per test file that asks for it.
simSce <- local({
  cache <- NULL
  function() {
    if (is.null(cache)) cache <<- simulateBatches(nCells = 240, nGenes = 150, nBatches = 2, nTypes = 3, seed = 3)
    cache
  }
})

# The fastest available correcting method's parameters for tests: a few BERMUDA epochs.
tinyBermuda <- list(max_steps = 10L, max_epochs = 3L, n_features = 100L)

# simSce() after a tiny BERMUDA run with seed 7, made once and shared by the SCE and Seurat tests.
bermudaSce <- local({
  cache <- NULL
  function() {
    if (is.null(cache)) {
      cache <<- do.call(integrateBatches, c(list(simSce(), method = "bermuda", seed = 7L), tinyBermuda))
    }
    cache
  }
})

sharedDataDir <- function() {
  env <- Sys.getenv("SCINTEGRATE_SHARED_DATA")
  if (nzchar(env)) return(env)
  # tests/testthat of the source checkout -> <repo>/../shared/data (R CMD check: set the variable)
  candidates <- file.path("..", "..", "..", "..", "shared", "data")
  hit <- candidates[dir.exists(candidates)]
  if (length(hit)) hit[1] else ""
}
