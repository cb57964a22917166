"""A method registered outside the package (the toy plugin) gets the R path with no other change.

Runs ``Rscript`` with ``SCINTEGRATE_PLUGINS=scintegrate_toy``: the R package (this checkout's ``Rpkg``,
installed into a temporary library, ~3 s) must list the method and return its embedding as a reducedDim.
Skipped without ``Rscript`` or the R packages scintegrate depends on.
"""

import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGINS = REPO / "tests" / "plugins"

SCRIPT = r"""
library(scintegrate)
sce <- simulateBatches(nCells = 90, nGenes = 40, nBatches = 2, nTypes = 2, seed = 1)
out <- integrateBatches(sce, method = "toy", seed = 2)
emb <- SingleCellExperiment::reducedDim(out, "TOY")
cat("RESULT", jsonlite::toJSON(list(
  dim = dim(emb), names = identical(rownames(emb), colnames(sce)),
  obs = "toy_norm" %in% names(SummarizedExperiment::colData(out)),
  method = S4Vectors::metadata(out)$scintegrate$TOY$python$method,
  methods = scintegrateMethods()$method), auto_unbox = TRUE), "\n")
"""


def _run(cmd, env=None, timeout=120):
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def r_library(tmp_path_factory):
    """A temporary R library holding this checkout's R package (skips when R or its dependencies are missing)."""
    if shutil.which("Rscript") is None or shutil.which("R") is None:
        pytest.skip("Rscript not found")
    deps = _run(["Rscript", "-e", "cat(all(vapply(c('reticulate', 'SingleCellExperiment', 'jsonlite'), "
                                  "requireNamespace, logical(1), quietly = TRUE)))"])
    if deps.stdout.strip() != "TRUE":
        pytest.skip("the R packages scintegrate needs (reticulate, SingleCellExperiment, jsonlite) are not installed")
    lib = tmp_path_factory.mktemp("rlib")
    done = _run(["R", "CMD", "INSTALL", "--no-test-load", "--no-docs", f"--library={lib}", str(REPO / "Rpkg")])
    if done.returncode != 0:
        pytest.skip(f"R CMD INSTALL of Rpkg failed: {done.stderr[-500:]}")
    return lib


def test_toy_plugin_runs_through_r(r_library):
    env = dict(os.environ)
    env.update(SCINTEGRATE_PLUGINS="scintegrate_toy", RETICULATE_PYTHON=sys.executable,
               R_LIBS=os.pathsep.join(filter(None, [str(r_library), env.get("R_LIBS", "")])),
               PYTHONPATH=os.pathsep.join(filter(None, [str(PLUGINS), str(REPO / "python"),
                                                        env.get("PYTHONPATH", "")])),
               OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"))
    done = _run(["Rscript", "-e", SCRIPT], env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    assert line, done.stdout[-2000:] + done.stderr[-2000:]
    out = json.loads(line[-1][len("RESULT "):])
    from scintegrate_toy import ToyModel  # the conftest put tests/plugins on sys.path

    n_dims = inspect.signature(ToyModel.__init__).parameters["n_dims"].default
    assert out["dim"] == [90, n_dims]
    assert out["names"] and out["obs"] and out["method"] == "toy"
    assert "toy" in out["methods"]
