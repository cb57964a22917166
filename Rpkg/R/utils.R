# Input checks and small helpers shared by the exported functions (no Python here).

# A counts matrix in the form sent to Python: a dgCMatrix (sparse input, converted only when it is
# another sparse class) or a base matrix (dense input). Never densified, never transposed.
.asCounts <- function(counts, what = "counts") {
  if (methods::is(counts, "dgCMatrix") || (is.matrix(counts) && is.numeric(counts))) {
    return(counts)
  }
  if (methods::is(counts, "sparseMatrix") || methods::is(counts, "DelayedArray")) {
    return(methods::as(methods::as(counts, "CsparseMatrix"), "dgCMatrix"))
  }
  stop(sprintf("%s must be a numeric genes x cells matrix or dgCMatrix, not an object of class '%s'",
               what, class(counts)[1]), call. = FALSE)
}

# Fill missing dimnames (cell1.., gene1..) and reject empty matrices and duplicated cell or gene names.
.checkCounts <- function(counts) {
  if (nrow(counts) == 0L || ncol(counts) == 0L) {
    stop(sprintf("the counts matrix is empty (%d genes x %d cells); nothing to integrate",
                 nrow(counts), ncol(counts)), call. = FALSE)
  }
  if (is.null(colnames(counts))) colnames(counts) <- paste0("cell", seq_len(ncol(counts)))
  if (is.null(rownames(counts))) rownames(counts) <- paste0("gene", seq_len(nrow(counts)))
  dup <- unique(colnames(counts)[duplicated(colnames(counts))])
  if (length(dup)) {
    stop(sprintf("cell names (column names) are not unique (e.g. %s); make them unique first",
                 paste(utils::head(dup, 3), collapse = ", ")), call. = FALSE)
  }
  dup <- unique(rownames(counts)[duplicated(rownames(counts))])
  if (length(dup)) {
    stop(sprintf("gene names (row names) are not unique (e.g. %s); make them unique first (make.unique())",
                 paste(utils::head(dup, 3), collapse = ", ")), call. = FALSE)
  }
  counts
}

# A per-cell batch vector: right length, no missing values, at least two batches. Returns a factor.
.checkBatch <- function(batch, nCells, what = "batch") {
  if (is.null(batch)) stop(sprintf("%s is missing: give one batch label per cell", what), call. = FALSE)
  if (length(batch) != nCells) {
    stop(sprintf("%s has %d values for %d cells; give one batch label per cell", what, length(batch), nCells),
         call. = FALSE)
  }
  if (anyNA(batch)) {
    stop(sprintf("%s has %d missing values; every cell needs a batch", what, sum(is.na(batch))), call. = FALSE)
  }
  batch <- if (is.factor(batch)) droplevels(batch) else factor(batch, levels = unique(as.character(batch)))
  if (nlevels(batch) < 2L) {
    stop(sprintf("%s has %d batch (%s); integration needs at least 2 batches", what, nlevels(batch),
                 paste(levels(batch), collapse = ", ")), call. = FALSE)
  }
  batch
}

# Cell-type labels for a semi-supervised method: one per cell (character; NA stays NA), refused for a
# method that takes none, required by one that needs them.
.checkLabels <- function(labels, nCells, spec) {
  wants <- !is.null(spec$labels_param) && nzchar(spec$labels_param)
  if (is.null(labels)) {
    if (wants) {
      stop(sprintf(paste("method '%s' learns from cell-type labels: pass labels = (a colData / meta.data column",
                         "name, or one label per cell for a matrix; NA or \"Unknown\" for unlabelled cells)"),
                   spec$name), call. = FALSE)
    }
    return(NULL)
  }
  if (!wants) stop(sprintf("method '%s' takes no cell-type labels; drop labels =", spec$name), call. = FALSE)
  if (length(labels) != nCells) {
    stop(sprintf("labels has %d values for %d cells; give one label per cell", length(labels), nCells),
         call. = FALSE)
  }
  as.character(labels)
}

# A column of a per-cell table (colData / meta.data) with an error that lists the available columns.
# `what` names the argument (batch, label) in the message; a vector given instead of a name is not
# printed (it may hold one value per cell).
.getColumn <- function(table, column, where, what = "batch") {
  if (!is.character(column) || length(column) != 1L || is.na(column)) {
    stop(sprintf(paste0("%s must be the name of a column (a single string); for a per-cell vector use a ",
                        "matrix input or add it as a column"), what), call. = FALSE)
  }
  if (!column %in% colnames(table)) {
    stop(sprintf("column '%s' not found in %s; available columns: %s", column, where,
                 paste(colnames(table), collapse = ", ")), call. = FALSE)
  }
  table[[column]]
}

# A seed for Python: a single non-negative whole number (up to .Machine$integer.max), as an integer.
.checkSeed <- function(seed) {
  if (!is.numeric(seed) || length(seed) != 1L || is.na(seed) || !is.finite(seed) || seed != round(seed) ||
      seed < 0 || seed > .Machine$integer.max) {
    stop("seed must be a single non-negative whole number (e.g. seed = 1)", call. = FALSE)
  }
  as.integer(seed)
}

# NULL (the registry's default method, resolved later) or a single method name, lower-cased.
.checkMethod <- function(method) {
  if (is.null(method)) return(NULL)
  if (!is.character(method) || length(method) != 1L || is.na(method) || !nzchar(method)) {
    stop("method must be a single string naming a method of scintegrateMethods(), or NULL for the default",
         call. = FALSE)
  }
  tolower(method)
}

# The torch CPU threads of a run: NULL (torch's default) or a positive whole number.
.checkThreads <- function(threads) {
  if (is.null(threads)) return(NULL)
  if (!is.numeric(threads) || length(threads) != 1L || is.na(threads) || threads < 1 || threads != round(threads)) {
    stop("option scintegrate.threads must be NULL or a positive whole number", call. = FALSE)
  }
  as.integer(threads)
}

# Method parameters for Python: named, and whole numbers given as doubles (n_epochs = 5) sent as integers.
.pyParams <- function(params) {
  if (length(params) && (is.null(names(params)) || any(!nzchar(names(params))))) {
    stop("method parameters in ... must be named (e.g. max_steps = 200)", call. = FALSE)
  }
  lapply(params, function(v) {
    if (is.double(v) && length(v) == 1L && is.finite(v) && v == round(v) && abs(v) < .Machine$integer.max) {
      as.integer(v)
    } else {
      v
    }
  })
}

# The run record stored with every result (parameters, seed, versions, and the Python side's record).
.makeRecord <- function(method, name, batch, seed, device, params, python) {
  list(method = method, name = name, batch = batch, seed = as.integer(seed), device = device,
       params = params, packageVersion = as.character(utils::packageVersion("scintegrate")),
       pythonVersion = python$version, date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
       python = python$record)
}

# Stop with the available names when `nm` is not one of them (`what`: "reducedDim", "reduction", ...).
.requireName <- function(nm, available, what) {
  if (!nm %in% available) {
    stop(sprintf("%s '%s' not found; available: %s", what, nm, paste(available, collapse = ", ")), call. = FALSE)
  }
  invisible(nm)
}
