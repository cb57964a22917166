#!/usr/bin/env bash
# Build and check the R package: R CMD build, then R CMD check --no-manual on the tarball.
# Fails (exit 1) on any ERROR or WARNING in the check; NOTEs are reported but allowed.
# The tarball carries the wheel of the Python package (built by scripts/build_r_wheel.sh into
# inst/python/ of a copy of Rpkg/, so the checkout stays free of binaries): installPython() installs it.
#
# Environment:
#   RETICULATE_PYTHON        Python used by the tests and vignettes (default: <repo>/.venv/bin/python when it
#                            exists; without a usable Python the Python-dependent tests skip and the vignettes
#                            show their code unevaluated)
#   SCINTEGRATE_SHARED_DATA  folder of the shared .h5ad files (default: <repo>/../shared/data when it exists)
#   SCINTEGRATE_R_CHECK_DIR  where the tarball and scintegrate.Rcheck/ go (default: a new temporary folder)
set -euo pipefail

PKG_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$PKG_DIR")"

if [ -z "${RETICULATE_PYTHON:-}" ] && [ -x "$REPO/.venv/bin/python" ]; then
  export RETICULATE_PYTHON="$REPO/.venv/bin/python"
fi
if [ -z "${SCINTEGRATE_SHARED_DATA:-}" ] && [ -d "$REPO/../shared/data" ]; then
  export SCINTEGRATE_SHARED_DATA="$(cd "$REPO/../shared/data" && pwd)"
fi
export _R_CHECK_FORCE_SUGGESTS_=false   # Seurat/uwot are optional; their tests and chunks skip without them
export _R_CHECK_SYSTEM_CLOCK_=0         # no network: skip the "future file timestamps" look-up
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"  # torch on 2 shared cores: one thread is faster (no spinning)

OUT="${SCINTEGRATE_R_CHECK_DIR:-$(mktemp -d -t scintegrate-rcheck-XXXXXX)}"
mkdir -p "$OUT"
cd "$OUT"
echo "R check of $PKG_DIR in $OUT (RETICULATE_PYTHON=${RETICULATE_PYTHON:-unset})"

# A copy of the package with the wheel of python/ in inst/python/ (what installPython() installs).
rm -rf "$OUT/src"
mkdir -p "$OUT/src"
cp -R "$PKG_DIR" "$OUT/src/scintegrate"
rm -f "$OUT/src/scintegrate/inst/python/"*.whl
bash "$REPO/scripts/build_r_wheel.sh" "$OUT/src/scintegrate/inst/python" 2>/dev/null

R CMD build "$OUT/src/scintegrate"
TARBALL="$(ls -t scintegrate_*.tar.gz | head -n 1)"
R CMD check --no-manual "$TARBALL"

STATUS="$(grep '^Status:' scintegrate.Rcheck/00check.log || true)"
echo "$STATUS"
if echo "$STATUS" | grep -qE 'ERROR|WARNING'; then
  exit 1
fi
