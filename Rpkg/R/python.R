# The only file of the package that touches Python (through reticulate). Everything here is internal
# (dot-prefixed); exported functions elsewhere take and return R objects and call these helpers. The
# Python side of every call is in the module scintegrate._r_bridge; here R objects are converted only.
#
# Data transfer: a genes x cells dgCMatrix goes to Python as its slots (x, i, p, Dim) in a scipy CSC
# matrix; numpy reads the slot vectors in place, read-only. (reticulate 1.28's np_array() first gives each
# vector a dim attribute, which makes R duplicate it: the transfer costs one copy of the slots, ~1x the
# dgCMatrix, freed when Python lets go. A dense matrix already has dims and is wrapped without a copy.)
# The transpose of that CSC matrix is the cells x genes CSR matrix AnnData wants -- no copy, never dense.
# Sparse results come back as CSR arrays (data, indices, indptr, shape), which are the CSC slots of the
# transposed (genes x cells) dgCMatrix built in R.

.pyState <- new.env(parent = emptyenv())

# ---- choosing and checking the Python ---------------------------------------------------------------

.envName <- function() getOption("scintegrate.envname", "r-scintegrate")

# Select the scintegrate virtualenv unless the user chose a Python already (RETICULATE_PYTHON,
# reticulate::use_python(), or a Python session that is already running).
.pyConfigure <- function() {
  if (reticulate::py_available(initialize = FALSE) || nzchar(Sys.getenv("RETICULATE_PYTHON"))) {
    return(invisible(FALSE))
  }
  env <- .envName()
  exists <- tryCatch(reticulate::virtualenv_exists(env), error = function(e) FALSE)
  if (isTRUE(exists)) {
    try(reticulate::use_virtualenv(env, required = TRUE), silent = TRUE)
  }
  invisible(exists)
}

# list(ok = TRUE/FALSE, reason = "...") -- never throws.
.pyStatus <- function() {
  .pyConfigure()
  ok <- tryCatch(reticulate::py_available(initialize = TRUE), error = function(e) FALSE)
  if (!isTRUE(ok)) {
    return(list(ok = FALSE, reason = "no usable Python could be initialised"))
  }
  config <- reticulate::py_config()
  numpyVersion <- if (is.null(config$numpy)) NA_character_ else as.character(config$numpy$version)
  if (is.na(numpyVersion)) {
    return(list(ok = FALSE, reason = sprintf("numpy is not installed in %s", config$python)))
  }
  if (package_version(numpyVersion) >= "2" && utils::packageVersion("reticulate") < "1.36") {
    return(list(ok = FALSE, reason = sprintf(
      "numpy %s in %s; reticulate %s needs numpy<2", numpyVersion, config$python,
      utils::packageVersion("reticulate"))))
  }
  if (!reticulate::py_module_available("scintegrate")) {
    return(list(ok = FALSE, reason = sprintf("the Python package 'scintegrate' is not installed in %s",
                                             config$python)))
  }
  list(ok = TRUE, reason = "", python = config$python)
}

.pyMissingMessage <- function(reason) {
  paste0("The Python side of scintegrate is not available (", reason, "). ",
         "Run scintegrate::installPython() once and restart R, or set RETICULATE_PYTHON to a Python ",
         "that has the 'scintegrate' package, numpy<2 and torch installed.")
}

# The bridge module scintegrate._r_bridge, imported once (lazily). It then imports torch so that torch
# calls its own BLAS (MKL), not the BLAS R links (see load_torch() in the bridge): loaded the usual way
# inside R, torch's matrix products run on R's single-threaded reference BLAS, ~15x slower.
.py <- function() {
  if (is.null(.pyState$bridge)) {
    status <- .pyStatus()
    if (!status$ok) stop(.pyMissingMessage(status$reason), call. = FALSE)
    bridge <- reticulate::import("scintegrate._r_bridge", convert = FALSE)
    .pyState$torch <- reticulate::py_to_r(bridge$load_torch())
    if (isTRUE(.pyState$torch$foreign_blas)) {
      warning("torch was imported before scintegrate in this R session and may use R's BLAS, which makes ",
              "training many times slower; restart R and use scintegrate before importing torch",
              call. = FALSE)
    }
    .pyState$bridge <- bridge
  }
  .pyState$bridge
}

# AnnData words that may reach R users in Python messages, and what R calls them.
.pyWords <- c("adata.X" = "the counts matrix", "adata.obs_names" = "the cell names",
              "adata.var_names" = "the gene names", "adata.obsm" = "the cell embeddings",
              "adata.obs" = "the cell metadata", "adata.var" = "the gene metadata",
              "adata.layers" = "the assays", "adata" = "the data")

# The message of a Python exception caught in R, in R terms: without reticulate's decorations, the
# exception class ("ValueError: ", the quotes of a KeyError) and AnnData names (.pyWords).
.pyErrorMessage <- function(e) {
  msg <- if (is.character(e)) e else conditionMessage(e)
  msg <- sub("\\s*Run `reticulate::py_last_error\\(\\)` for details\\.?\\s*$", "", msg)
  msg <- trimws(msg)
  msg <- sub("^Error in py_call_impl\\(.*?\\) *:\\s*", "", msg)
  if (grepl("^KeyError: ", msg)) {
    msg <- sub("^KeyError: ", "", msg)
    msg <- sub('^"(.*)"$', "\\1", sub("^'(.*)'$", "\\1", msg))
  }
  msg <- sub("^(?:[A-Za-z_][A-Za-z0-9_.]*\\.)?[A-Z][A-Za-z0-9_]*(?:Error|Exception|Warning):\\s*", "", msg,
             perl = TRUE)
  msg <- gsub("(?<![A-Za-z0-9_])adata\\.layers\\[(['\"])(.*?)\\1\\]", "assay '\\2'", msg, perl = TRUE)
  msg <- gsub("(?<![A-Za-z0-9_])adata\\.obsm\\[(['\"])(.*?)\\1\\]", "embedding '\\2'", msg, perl = TRUE)
  msg <- gsub("(?<![A-Za-z0-9_])adata\\.obs\\[(['\"])(.*?)\\1\\]", "cell metadata column '\\2'", msg,
              perl = TRUE)
  for (word in names(.pyWords)) {
    msg <- gsub(sprintf("(?<![A-Za-z0-9_.])%s(?![A-Za-z0-9_])", gsub(".", "\\.", word, fixed = TRUE)),
                .pyWords[[word]], msg, perl = TRUE)
  }
  trimws(msg)
}

# Evaluate `expr`, turning a Python exception into an R error with the Python message (no traceback).
.pyCall <- function(expr) {
  tryCatch(expr, error = function(e) stop(.pyErrorMessage(e), call. = FALSE))
}

# ---- R -> Python ------------------------------------------------------------------------------------

# A genes x cells matrix as a Python object: dgCMatrix -> scipy CSC over (copies of) its slots, read in
# place; dense matrix -> F-ordered numpy array over R's memory.
.pyCounts <- function(counts) {
  if (methods::is(counts, "dgCMatrix")) {
    sp <- reticulate::import("scipy.sparse", convert = FALSE)
    arrays <- reticulate::tuple(reticulate::np_array(counts@x), reticulate::np_array(counts@i),
                                reticulate::np_array(counts@p), convert = FALSE)
    return(sp$csc_matrix(arrays, shape = reticulate::tuple(counts@Dim[1], counts@Dim[2])))
  }
  reticulate::r_to_py(counts)
}

# obs columns: factors go as (values, levels) so the categories and their order survive.
.pyObs <- function(columns) {
  out <- reticulate::dict()
  for (name in names(columns)) {
    v <- columns[[name]]
    out[[name]] <- if (is.factor(v)) reticulate::tuple(as.character(v), levels(v)) else v
  }
  out
}

.pyAnnData <- function(counts, obs) {
  .py()$make_adata(.pyCounts(counts), colnames(counts), rownames(counts), .pyObs(obs))
}

# ---- Python -> R ------------------------------------------------------------------------------------

.slotsToDgC <- function(slots, rownames = NULL, colnames = NULL) {
  methods::new("dgCMatrix", x = as.numeric(slots$x), i = as.integer(slots$i), p = as.integer(slots$p),
               Dim = as.integer(unlist(slots$dim)), Dimnames = list(rownames, colnames))
}

.obsToDataFrame <- function(obs, cells) {
  cols <- lapply(obs, function(v) {
    if (is.list(v) && length(v) == 2L && is.character(v[[1]])) {
      factor(v[[1]][as.integer(v[[2]])], levels = v[[1]])
    } else {
      as.vector(v)
    }
  })
  df <- S4Vectors::DataFrame(cols, row.names = cells, check.names = FALSE)
  names(df) <- names(obs)
  df
}

.fromJson <- function(text) jsonlite::fromJSON(text, simplifyVector = TRUE, simplifyDataFrame = FALSE)

# counts (genes x cells dgCMatrix), obs (DataFrame) and uns (list) of the bridge's adata_slots().
.slotsToPieces <- function(out) {
  list(counts = .slotsToDgC(out$counts, out$genes, out$cells), obs = .obsToDataFrame(out$obs, out$cells),
       uns = .fromJson(out$uns))
}

# ---- the calls the exported functions make ----------------------------------------------------------

.pyPackageVersion <- function() reticulate::py_to_r(.py()$version())

# The methods R can run, read from the Python registry once per session: a list named by method, each
# list(name, kind, key, obs_keys, obsm_keys, layer_keys, quick_params, description).
.pyMethods <- function() {
  if (is.null(.pyState$methods)) {
    infos <- reticulate::py_to_r(.py()$methods())
    names(infos) <- vapply(infos, `[[`, character(1), "name")
    .pyState$methods <- infos
  }
  .pyState$methods
}

# The registry's default method (NULL `method` in integrateBatches()).
.pyDefaultMethod <- function() reticulate::py_to_r(.py()$default_method())

# The spec of `method` (as in .pyMethods()); an R error when it is unknown or cannot be imported.
.pyCheckMethod <- function(method) {
  bridge <- .py()
  tryCatch(reticulate::py_to_r(bridge$check_method(method)), error = function(e) {
    stop(.pyErrorMessage(e), call. = FALSE)
  })
}

# Run scintegrate.integrate on counts (genes x cells dgCMatrix or matrix) with per-cell `batch`, writing
# the embedding under `key`, with `threads` torch threads (NULL: as torch has it).
# Returns list(embedding = cells x d matrix, obs = DataFrame, obsm = list, layers = list of dgCMatrix,
# record = list).
.pyIntegrate <- function(counts, batch, method, key, seed, device, params, threads = NULL, labels = NULL) {
  bridge <- .py()
  obs <- list(batch = batch)
  if (!is.null(labels)) obs$labels <- labels
  adata <- .pyCall(.pyAnnData(counts, obs))
  if (!is.null(threads)) threads <- as.integer(threads)
  res <- .pyCall(bridge$integrate(adata, method, "batch", key, as.integer(seed), device,
                                  reticulate::r_to_py(params), threads))
  res <- reticulate::py_to_r(res)
  cells <- colnames(counts)
  list(embedding = `rownames<-`(res$embedding, cells), obs = .obsToDataFrame(res$obs, cells),
       obsm = lapply(res$obsm, function(m) `rownames<-`(m, cells)),
       layers = lapply(res$layers, .slotsToDgC, rownames = rownames(counts), colnames = cells),
       record = .fromJson(res$record))
}

# Round trip used by the tests: counts -> AnnData (Python) -> slots -> dgCMatrix; also says whether
# the AnnData's X is CSR, holds the very arrays of the CSC matrix made from the slots (no copy in
# Python) and is read-only.
.pyRoundTrip <- function(counts) {
  out <- reticulate::py_to_r(.py()$round_trip(.pyCounts(counts), colnames(counts), rownames(counts)))
  list(counts = .slotsToDgC(out$counts, out$genes, out$cells), format = out$format,
       noCopyInPython = out$no_copy_in_python, readOnly = out$read_only)
}

# Read an .h5ad file (with scintegrate.datasets.read_h5ad, the CLI's reader) into R pieces: counts
# (genes x cells dgCMatrix), obs (DataFrame), uns (list).
.pyReadH5ad <- function(path) {
  bridge <- .py()
  .slotsToPieces(reticulate::py_to_r(.pyCall(bridge$read_h5ad(normalizePath(path, mustWork = FALSE)))))
}

# scintegrate.datasets.simulate_counts, as R pieces (see .pyReadH5ad).
.pySimulate <- function(params) {
  bridge <- .py()
  .slotsToPieces(reticulate::py_to_r(.pyCall(do.call(bridge$simulate, params))))
}

# scintegrate.metrics.compute_metrics on a cells x d embedding. Returns list(values, warnings).
.pyMetrics <- function(embedding, batch, labels, unintegrated, metrics, seed) {
  bridge <- .py()
  res <- .pyCall(bridge$metrics(embedding, as.character(batch), as.character(labels), unintegrated,
                                metrics, as.integer(seed)))
  reticulate::py_to_r(res)
}

# ---- installation -----------------------------------------------------------------------------------

# The folder of virtualenv `envname`: a path when it contains a slash, else a name under reticulate's
# virtualenv root (as reticulate::virtualenv_create() places it).
.venvPath <- function(envname) {
  if (grepl("/", envname, fixed = TRUE)) return(path.expand(envname))
  file.path(path.expand(reticulate::virtualenv_root()), envname)
}

# Run `python args...` with the R session's LD_LIBRARY_PATH, PYTHONPATH and PYTHONHOME unset (R's
# LD_LIBRARY_PATH makes some Pythons fail to import ssl: "undefined symbol: _PyModule_Add"), restoring
# them after. Output goes to the console (pip's progress), or is returned when `capture`. Stops with the
# command (and the end of its output when captured) when it fails.
.runClean <- function(python, args, capture = FALSE) {
  vars <- c("LD_LIBRARY_PATH", "PYTHONPATH", "PYTHONHOME", "RETICULATE_PYTHON")
  old <- Sys.getenv(vars, unset = NA_character_, names = TRUE)
  Sys.unsetenv(vars)
  on.exit({
    keep <- old[!is.na(old)]
    if (length(keep)) do.call(Sys.setenv, as.list(keep))
  }, add = TRUE)
  message("+ ", paste(shQuote(c(python, args)), collapse = " "))
  where <- if (capture) TRUE else ""
  out <- suppressWarnings(system2(python, shQuote(args), stdout = where, stderr = where))
  status <- if (capture) attr(out, "status") else out
  if (!is.null(status) && status != 0L) {
    tail <- if (capture) paste0(":\n", paste(utils::tail(out, 20), collapse = "\n")) else " (see its output above)"
    stop(sprintf("installPython(): `%s` failed (exit status %d)%s", paste(shQuote(c(python, args)), collapse = " "),
                 status, tail), call. = FALSE)
  }
  invisible(out)
}

# Create the virtualenv (python -m venv) unless it exists, then run the pip steps of `plan`, all through
# .runClean(). Returns the environment's Python.
.pyInstall <- function(envname, plan, python, pipOptions) {
  path <- .venvPath(envname)
  envPython <- file.path(path, "bin", "python")
  if (!file.exists(envPython)) {
    if (is.null(python)) python <- Sys.which(c("python3", "python"))[1]
    if (!nzchar(python)) stop("installPython(): no python3 found; pass python = the path of one", call. = FALSE)
    dir.create(dirname(path), recursive = TRUE, showWarnings = FALSE)
    .runClean(python, c("-m", "venv", path))
  }
  pip <- c("-m", "pip", "install", "--disable-pip-version-check")
  .runClean(envPython, c(pip, pipOptions, plan$base))
  for (step in plan$steps) {
    .runClean(envPython, c(pip, pipOptions, step$pipOptions, step$packages))
  }
  invisible(normalizePath(envPython))
}
