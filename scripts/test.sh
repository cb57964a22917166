#!/usr/bin/env bash
# Run every test: Python (pytest, incl. the R-conformance tests and the Python vignette) and the R package
# (R CMD build + R CMD check, which runs its testthat tests and vignettes). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

export RETICULATE_PYTHON="$PWD/.venv/bin/python" MPLBACKEND=Agg PYTHONUNBUFFERED=1
status=0
.venv/bin/python -m pytest -ra -q tests "$@" || status=$?

if command -v R >/dev/null 2>&1 && [ -f Rpkg/run_checks.sh ]; then
  bash Rpkg/run_checks.sh || status=$?
else
  echo "test: R not found; R package checks skipped" >&2
fi
exit $status
