#' Set up the Python side of scintegrate
#'
#' Creates a Python virtual environment (with [reticulate::virtualenv_create()]) holding the
#' scintegrate Python package and its pinned dependencies (`numpy<2`, which reticulate 1.28 needs, and
#' `torch==2.13.0`). scintegrate uses this environment automatically in later R sessions, unless
#' `RETICULATE_PYTHON` or [reticulate::use_python()] chose another Python first. Restart R after
#' installing.
#'
#' pip runs in a clean environment: `LD_LIBRARY_PATH`, `PYTHONPATH` and `PYTHONHOME` of the R session
#' (R sets `LD_LIBRARY_PATH` to its own libraries, with which some Pythons cannot import `ssl`) are
#' unset for the pip calls only. pip's own configuration (`pip.conf`, `PIP_*` variables: indexes,
#' `find-links`, caches) is kept.
#'
#' @param envname Name (or path) of the virtual environment; the default `"r-scintegrate"` is the
#'   one scintegrate looks for (option `scintegrate.envname`).
#' @param source Where the Python package comes from: a path to a source checkout (the folder with
#'   `pyproject.toml`) or to a wheel, or a pip requirement. Default: the environment variable
#'   `SCINTEGRATE_PYTHON_SOURCE`, else the wheel shipped in the R package
#'   (`system.file("python", package = "scintegrate")`), which is the Python package this R package
#'   was released with. (The Python package is not published on PyPI.)
#' @param python The Python interpreter to create the environment from (`python -m venv`; `NULL`: the
#'   `python3` on the `PATH`). Ignored when the environment exists.
#' @param torch The torch requirement (default `"torch==2.13.0"`).
#' @param torchIndexUrl Optional extra package index for torch, e.g.
#'   `"https://download.pytorch.org/whl/cpu"` for the CPU-only build.
#' @param extraPackages Further pip requirements to install.
#' @param pipOptions Further options for pip.
#'
#' @return The path of the environment's Python, invisibly.
#' @seealso [scintegrateAvailable()]
#' @examples
#' \dontrun{
#' installPython()  # the wheel shipped in the R package; then restart R
#' installPython(source = "~/src/scintegrate", torchIndexUrl = "https://download.pytorch.org/whl/cpu")
#' }
#' @export
installPython <- function(envname = "r-scintegrate", source = NULL, python = NULL, torch = "torch==2.13.0",
                          torchIndexUrl = NULL, extraPackages = character(), pipOptions = character()) {
  if (!is.character(envname) || length(envname) != 1L || is.na(envname) || !nzchar(envname)) {
    stop("envname must be a single name or path", call. = FALSE)
  }
  plan <- .installPlan(source = source, torch = torch, torchIndexUrl = torchIndexUrl,
                       extraPackages = extraPackages)
  pythonPath <- .pyInstall(envname, plan, python, pipOptions)
  message(sprintf("scintegrate's Python environment '%s' is ready (%s). Restart R to use it.", envname,
                  pythonPath))
  invisible(pythonPath)
}

#' Is the Python side of scintegrate usable?
#'
#' `TRUE` when a Python with the scintegrate package and numpy < 2 can be (or has been) loaded
#' through reticulate. The Python chosen is, in order: `RETICULATE_PYTHON` or a Python already
#' initialised in this session, the virtual environment made by [installPython()], reticulate's
#' default. Never throws; functions that need Python stop with an error that names
#' [installPython()] when this is `FALSE`.
#'
#' @param reason If `TRUE`, return the reason why Python is not usable as attribute `"reason"`.
#' @return `TRUE` or `FALSE`.
#' @examples
#' scintegrateAvailable()
#' @export
scintegrateAvailable <- function(reason = FALSE) {
  status <- tryCatch(.pyStatus(), error = function(e) list(ok = FALSE, reason = conditionMessage(e)))
  out <- isTRUE(status$ok)
  if (isTRUE(reason)) attr(out, "reason") <- status$reason
  out
}

# What installPython() installs: packages for the environment's creation (`base`) and pip steps.
.installPlan <- function(source = NULL, torch = "torch==2.13.0", torchIndexUrl = NULL,
                         extraPackages = character()) {
  source <- if (is.null(source)) .defaultPythonSource() else source
  if (!is.character(source) || length(source) != 1L || !nzchar(source)) {
    stop("source must be a single path or pip requirement", call. = FALSE)
  }
  if (file.exists(source)) source <- normalizePath(source)
  pins <- c("numpy<2", torch)
  torchOptions <- if (is.null(torchIndexUrl)) character() else c("--extra-index-url", torchIndexUrl)
  list(base = "numpy<2",
       steps = list(list(packages = pins, pipOptions = torchOptions),
                    list(packages = c(source, extraPackages, pins), pipOptions = torchOptions)))
}

.defaultPythonSource <- function() {
  env <- Sys.getenv("SCINTEGRATE_PYTHON_SOURCE")
  if (nzchar(env)) return(env)
  wheel <- .bundledWheel()
  if (!is.null(wheel)) return(wheel)
  stop("no wheel of the Python package ships with this installation of the R package (R CMD INSTALL ",
       "builds it only from a scintegrate checkout, and a tarball has it when made by Rpkg/run_checks.sh); ",
       "pass source = the path of a scintegrate checkout or wheel", call. = FALSE)
}

# The scintegrate wheel in the installed R package's python/ folder (NULL when there is none).
.bundledWheel <- function(dir = system.file("python", package = "scintegrate")) {
  if (!nzchar(dir)) return(NULL)
  wheels <- list.files(dir, pattern = "^scintegrate-.*\\.whl$", full.names = TRUE)
  if (length(wheels)) wheels[length(wheels)] else NULL
}
