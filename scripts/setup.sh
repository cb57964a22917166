#!/usr/bin/env bash
# Set up everything scintegrate needs on a fresh Debian machine: R + Seurat from apt (when run as root and
# missing) and a Python virtual environment in .venv with the package, its test/R/benchmark extras and peers.
# Idempotent: re-running skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

R_PACKAGES="r-base-core r-cran-reticulate r-bioc-singlecellexperiment r-cran-seurat r-cran-testthat r-cran-knitr \
r-cran-rmarkdown r-cran-roxygen2 r-bioc-biocstyle pandoc"

if [ "${SCINTEGRATE_SKIP_R:-0}" != "1" ]; then
  missing=$(for p in $R_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = "0" ]; then
      echo "setup: installing R packages from apt: $missing"
      apt-get update -q
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null
    else
      echo "setup: not root; R packages missing ($missing) — R tests will be skipped" >&2
    fi
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.scintegrate-installed
want=$(cat pyproject.toml scripts/constraints.txt | sha1sum | cut -c1-12)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  export PIP_CONSTRAINT="$PWD/scripts/constraints.txt" PIP_DISABLE_PIP_VERSION_CHECK=1
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q torch==2.13.0 "numpy<2"
  # rpy2 (extra [r]) needs R headers; install it only when R is there
  extras="test,bench"
  command -v R >/dev/null 2>&1 && extras="$extras,r"
  .venv/bin/python -m pip install -q -e ".[${extras}]"
  echo "$want" > "$stamp"
fi
echo "setup: ready ($(.venv/bin/python -c 'import scintegrate, numpy, torch; print("scintegrate", scintegrate.__version__, "numpy", numpy.__version__, "torch", torch.__version__)'))"
