"""An R user's first run, end to end: ``R CMD INSTALL Rpkg`` into a temporary library (its ``configure``
builds the wheel of the Python package into the installed package), ``installPython()`` with no source
into a temporary virtualenv, then ``integrateBatches(method = "pca")`` in a fresh R session through that
env. (The tarball path -- the wheel in ``inst/python/`` -- is what ``Rpkg/run_checks.sh`` builds and
checks.)

pip reads what it is configured with (``pip config list``: the local wheel folders and indexes); no
option is passed to it. The virtualenv install (torch, scanpy, ...) dominates the run time: about
1-3 minutes with a warm pip cache, hence ``slow``. Skipped when R or the R packages scintegrate needs
are missing.
"""

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RPKG = REPO / "Rpkg"

pytestmark = pytest.mark.slow


def _r_ready() -> bool:
    if shutil.which("R") is None or shutil.which("Rscript") is None:
        return False
    code = ("ok <- all(vapply(c('reticulate', 'jsonlite', 'Matrix', 'S4Vectors', 'SingleCellExperiment',"
            " 'SummarizedExperiment'), requireNamespace, logical(1), quietly = TRUE)); quit(status = !ok)")
    return subprocess.run(["Rscript", "-e", code], capture_output=True).returncode == 0


def _env(lib: Path) -> dict:
    """The environment of an R user: no RETICULATE_PYTHON, no virtualenv of ours, the temporary library."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("RETICULATE_PYTHON", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "R_LIBS")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(REPO / ".venv")))
    env["R_LIBS"] = str(lib)
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run(cmd, cwd, env, timeout=900):
    start = time.time()
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{cmd} failed ({res.returncode}):\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    return res, time.time() - start


@pytest.mark.skipif(not _r_ready(), reason="R with reticulate, Matrix and SingleCellExperiment is needed")
def test_r_cmd_install_then_install_python_then_integrate(tmp_path):
    lib, venv = tmp_path / "lib", tmp_path / "venv"
    lib.mkdir()
    env = _env(lib)

    # R CMD INSTALL Rpkg, from the checkout: configure builds the wheel into the installed package
    _run(["R", "CMD", "INSTALL", f"--library={lib}", str(RPKG)], tmp_path, env)
    shipped = list((lib / "scintegrate" / "python").glob("scintegrate-*.whl"))
    assert len(shipped) == 1, "the installed R package carries one wheel of the Python package"
    assert not list(RPKG.glob("inst/python/*.whl")), "nothing is written into the checkout"

    # installPython() with no source: the shipped wheel, torch==2.13.0 and numpy<2 into the virtualenv
    res, seconds = _run(["Rscript", "-e", f"scintegrate::installPython(envname = {str(venv)!r})"], tmp_path, env)
    print(f"installPython(): {seconds:.0f} s")
    assert "is ready" in res.stderr
    py = venv / "bin" / "python"
    out = subprocess.run([str(py), "-c", "import numpy, torch, scintegrate; print(numpy.__version__, "
                          "torch.__version__, scintegrate.__file__)"], capture_output=True, text=True,
                         env={k: v for k, v in env.items() if k != "LD_LIBRARY_PATH"})
    assert out.returncode == 0, out.stderr
    numpy_version, torch_version, where = out.stdout.split()
    assert numpy_version.startswith("1.") and torch_version.startswith("2.13.0")
    assert str(venv) in where

    # a fresh R session finds that environment (option scintegrate.envname) and runs the PCA baseline
    script = textwrap.dedent(f"""
        options(scintegrate.envname = {str(venv)!r})
        library(scintegrate)
        ok <- scintegrateAvailable(reason = TRUE)
        if (!ok) stop(attr(ok, "reason"))
        set.seed(1)
        counts <- Matrix::rsparsematrix(50, 60, density = 0.3, rand.x = function(n) rpois(n, 3) + 1)
        dimnames(counts) <- list(paste0("g", 1:50), paste0("c", 1:60))
        emb <- integrateBatches(counts, method = "pca", batch = rep(c("a", "b"), 30), n_comps = 5)
        cat("DIM", dim(emb), "\\n")
        cat("PYTHON", reticulate::py_config()$python, "\\n")
    """)
    res, seconds = _run(["Rscript", "-e", script], tmp_path, env)
    print(f"integrateBatches(method = 'pca'): {seconds:.0f} s")
    assert "DIM 60 5" in res.stdout
    assert f"PYTHON {venv}" in res.stdout
