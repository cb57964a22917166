#!/usr/bin/env bash
# Build the wheel of the Python package (python/, pyproject.toml) into DEST, by default
# Rpkg/inst/python/, so that the R package carries the Python package it is released with and
# installPython() needs no argument. The source is copied to a temporary folder first (no build/ or
# *.egg-info left in the checkout). Old scintegrate wheels in DEST are removed.
#
# Usage: scripts/build_r_wheel.sh [DEST]      (PYTHON: the Python with pip, setuptools and wheel;
#                                              default <repo>/.venv/bin/python, else python3)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${1:-$REPO/Rpkg/inst/python}"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi
SRC="$(mktemp -d -t scintegrate-wheel-XXXXXX)"
trap 'rm -rf "$SRC"' EXIT
cp "$REPO/pyproject.toml" "$REPO/README.md" "$SRC/"
[ -f "$REPO/LICENSE" ] && cp "$REPO/LICENSE" "$SRC/"
(cd "$REPO" && tar --exclude='__pycache__' --exclude='*.pyc' --exclude='*.egg-info' -cf - python) | tar -xf - -C "$SRC"
mkdir -p "$DEST"
rm -f "$DEST"/scintegrate-*.whl
# A clean environment for pip: R's LD_LIBRARY_PATH breaks this Python's ssl module.
# PYTHONWARNINGS=ignore: setuptools' deprecation notes about pyproject.toml, not ours to fix here.
env -u LD_LIBRARY_PATH -u PYTHONPATH -u PYTHONHOME PYTHONWARNINGS=ignore "$PYTHON" -m pip wheel --no-deps --no-build-isolation \
  --quiet -w "$DEST" "$SRC"
ls "$DEST"/scintegrate-*.whl
