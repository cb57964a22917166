# The only file of the package that touches Python (through reticulate). Everything here is internal
# (dot-prefixed); exported functions elsewhere take and return R objects and call these helpers.
#
# Data transfer: a genes x cells dgCMatrix goes to Python as its slots (x, i, p, Dim) in a scipy CSC
# matrix; numpy reads the slot vectors in place, read-only. (reticulate 1.28's np_array() first gives each
# vector a dim attribute, which makes R duplicate it: the transfer costs one copy of the slots, ~1x the
# dgCMatrix, freed when Python lets go. A dense matrix already has dims and is wrapped without a copy.)
# The transpose of that CSC matrix is the cells x genes CSR matrix AnnData wants -- no copy, never dense.
# Sparse results come back as CSR arrays (data, indices, indptr, shape), which are the CSC slots of the
# transposed (genes x cells) dgCMatrix built in R.

.pyState <- new.env(parent = emptyenv())

# Python helpers run inside the scintegrate Python session (kept short; the work is in the Python package).
.bridgeSource <- "
import json, math
import numpy as np, pandas as pd, scipy.sparse as sp

def make_adata(X, cells, genes, obs):
    import anndata as ad
    Xc = X.T  # genes x cells CSC (or F-ordered array) -> cells x genes CSR (or C-ordered): no copy
    obs = pd.DataFrame({k: (pd.Categorical(v[0], categories=v[1]) if isinstance(v, tuple) else v)
                        for k, v in obs.items()}, index=pd.Index(list(cells), dtype=str))
    return ad.AnnData(X=Xc, obs=obs, var=pd.DataFrame(index=pd.Index(list(genes), dtype=str)))

def to_slots(M):
    M = sp.csr_matrix(M)
    return {'x': np.asarray(M.data, dtype=np.float64), 'i': np.asarray(M.indices, dtype=np.int32),
            'p': np.asarray(M.indptr, dtype=np.int32), 'dim': [int(M.shape[1]), int(M.shape[0])]}

def plain(obj):
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, np.generic):
        return plain(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)

def integrate(adata, method, batch_key, key, seed, device, params):
    import scintegrate as si
    before, layers_before = set(adata.obs.columns), set(adata.layers.keys())
    si.integrate(adata, method=method, batch_key=batch_key, key_added=key, seed=seed, device=device, **params)
    new_obs = [c for c in adata.obs.columns if c not in before]
    extra_obsm = [k for k in adata.obsm.keys() if k != key]
    return {'embedding': np.asarray(adata.obsm[key], dtype=np.float64),
            'obs': {c: obs_column(adata.obs[c]) for c in new_obs},
            'obsm': {k: np.asarray(adata.obsm[k], dtype=np.float64) for k in extra_obsm},
            'layers': {k: to_slots(v) for k, v in adata.layers.items() if k not in layers_before | {'counts'}},
            'record': json.dumps(plain(adata.uns['scintegrate'][key]))}

def obs_column(col):
    if isinstance(col.dtype, pd.CategoricalDtype):
        return ([str(c) for c in col.cat.categories], np.asarray(col.cat.codes, dtype=np.int32) + 1)
    if col.dtype.kind in 'biuf':
        return np.asarray(col)
    return [str(v) for v in col]

def round_trip(X, cells, genes):
    adata = make_adata(X, cells, genes, {})
    out = adata_slots(adata)
    out['format'] = adata.X.format
    out['no_copy_in_python'] = bool(np.shares_memory(adata.X.data, X.data))
    out['read_only'] = not adata.X.data.flags.writeable
    return out

def read_h5ad(path):
    import anndata as ad
    adata = ad.read_h5ad(path)
    return adata_slots(adata)

def adata_slots(adata):
    return {'counts': to_slots(adata.X), 'cells': [str(c) for c in adata.obs_names],
            'genes': [str(g) for g in adata.var_names],
            'obs': {c: obs_column(adata.obs[c]) for c in adata.obs.columns},
            'uns': json.dumps(plain(dict(adata.uns)))}

def metrics(X, batch, labels, X_unintegrated, metrics, seed):
    import warnings
    from scintegrate.metrics import compute_metrics
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        out = compute_metrics(X, np.asarray(batch, dtype=str), np.asarray(labels, dtype=str),
                              X_unintegrated=X_unintegrated, metrics=metrics, seed=seed)
    return {'values': {k: float(v) for k, v in out.items()}, 'warnings': sorted({str(w.message) for w in caught})}
"

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

# The scintegrate Python module and the bridge helpers, imported once (lazily).
.py <- function() {
  if (is.null(.pyState$bridge)) {
    status <- .pyStatus()
    if (!status$ok) stop(.pyMissingMessage(status$reason), call. = FALSE)
    .pyState$si <- reticulate::import("scintegrate", convert = FALSE)
    bridge <- reticulate::import("types", convert = FALSE)$ModuleType("scintegrate_r_bridge")
    reticulate::import_builtins(convert = FALSE)$exec(.bridgeSource, bridge$`__dict__`)
    .pyState$bridge <- bridge
  }
  .pyState
}

# The message of a Python exception caught in R, without reticulate's decorations.
.pyErrorMessage <- function(e) {
  msg <- conditionMessage(e)
  msg <- sub("\\s*Run `reticulate::py_last_error\\(\\)` for details\\.?\\s*$", "", msg)
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
  st <- .py()
  st$bridge$make_adata(.pyCounts(counts), colnames(counts), rownames(counts), .pyObs(obs))
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

# ---- the calls the exported functions make ----------------------------------------------------------

.pyPackageVersion <- function() reticulate::py_to_r(.py()$si$`__version__`)

# Check that `method` is registered and importable; returns its default embedding name (without "X_").
.pyCheckMethod <- function(method) {
  .py()
  api <- reticulate::import("scintegrate.api", convert = TRUE)
  tryCatch(api$get_method(method), error = function(e) {
    msg <- .pyErrorMessage(e)
    if (grepl("^ValueError", msg)) stop(sub("^ValueError: ", "", msg), call. = FALSE)
    stop(sprintf("method '%s' is registered but cannot be imported in this installation (%s)", method, msg),
         call. = FALSE)
  })
  key <- api$DEFAULT_KEYS[[method]]
  if (is.null(key)) method else sub("^X_", "", key)
}

# Run scintegrate.integrate on counts (genes x cells dgCMatrix or matrix) with per-cell `batch`.
# Returns list(embedding = cells x d matrix, obs = DataFrame, obsm = list, layers = list of dgCMatrix,
# record = list).
.pyIntegrate <- function(counts, batch, method, key, seed, device, params) {
  st <- .py()
  adata <- .pyCall(.pyAnnData(counts, list(batch = batch)))
  params <- reticulate::r_to_py(params)
  res <- .pyCall(st$bridge$integrate(adata, method, "batch", key, as.integer(seed), device, params))
  res <- reticulate::py_to_r(res)
  cells <- colnames(counts)
  embedding <- res$embedding
  rownames(embedding) <- cells
  list(embedding = embedding, obs = .obsToDataFrame(res$obs, cells),
       obsm = lapply(res$obsm, function(m) `rownames<-`(m, cells)),
       layers = lapply(res$layers, .slotsToDgC, rownames = rownames(counts), colnames = cells),
       record = .fromJson(res$record))
}

# Round trip used by the tests: counts -> AnnData (Python) -> slots -> dgCMatrix; also says whether
# the AnnData's X is CSR, holds the very arrays of the CSC matrix made from the slots (no copy in
# Python) and is read-only.
.pyRoundTrip <- function(counts) {
  st <- .py()
  out <- reticulate::py_to_r(st$bridge$round_trip(.pyCounts(counts), colnames(counts), rownames(counts)))
  list(counts = .slotsToDgC(out$counts, out$genes, out$cells), format = out$format,
       noCopyInPython = out$no_copy_in_python, readOnly = out$read_only)
}

# Read an .h5ad file into R pieces: counts (genes x cells dgCMatrix), obs (DataFrame), uns (list).
.pyReadH5ad <- function(path) {
  st <- .py()
  out <- reticulate::py_to_r(.pyCall(st$bridge$read_h5ad(normalizePath(path, mustWork = TRUE))))
  list(counts = .slotsToDgC(out$counts, out$genes, out$cells), obs = .obsToDataFrame(out$obs, out$cells),
       uns = .fromJson(out$uns))
}

# scintegrate.datasets.simulate_counts, as R pieces (see .pyReadH5ad).
.pySimulate <- function(params) {
  st <- .py()
  adata <- .pyCall(do.call(st$si$datasets$simulate_counts, params))
  out <- reticulate::py_to_r(st$bridge$adata_slots(adata))
  list(counts = .slotsToDgC(out$counts, out$genes, out$cells), obs = .obsToDataFrame(out$obs, out$cells),
       uns = .fromJson(out$uns))
}

# scintegrate.metrics.compute_metrics on a cells x d embedding. Returns list(values, warnings).
.pyMetrics <- function(embedding, batch, labels, unintegrated, metrics, seed) {
  st <- .py()
  res <- .pyCall(st$bridge$metrics(embedding, as.character(batch), as.character(labels), unintegrated,
                                   metrics, as.integer(seed)))
  reticulate::py_to_r(res)
}

# ---- installation -----------------------------------------------------------------------------------

.pyInstall <- function(envname, plan, python, pipOptions) {
  if (!reticulate::virtualenv_exists(envname)) {
    reticulate::virtualenv_create(envname, python = python, packages = plan$base)
  }
  for (step in plan$steps) {
    reticulate::virtualenv_install(envname, step$packages, pip_options = c(pipOptions, step$pipOptions))
  }
  invisible(reticulate::virtualenv_python(envname))
}
