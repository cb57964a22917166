"""R path vs Python path: the time of every registered method from R and from Python on one shared file.

For each method of the registry (``registry.method_names()``; plugins named in ``SCINTEGRATE_PLUGINS``
too) the same run -- the method's defaults, ``seed=0``, the same torch threads -- is timed

- in Python: ``scintegrate.integrate(adata, method)`` on the AnnData read from the file;
- in R: ``integrateBatches(sce, method)`` on ``readH5ad(file)`` (``benchmarks/r_vs_python.R``; this
  checkout's ``Rpkg`` is installed into a temporary library first), which includes handing the counts
  over and converting the results back.

Each path runs in its own fresh process, one after the other (never at the same time), with a warm-up
run of each method on 200 simulated cells (imports are not timed); each timed run is repeated
``--repeats`` times and the fastest counts. The target is ``r / python <= 1.5`` for every method.

Usage (from the repository root, alone on the machine)::

    .venv/bin/python benchmarks/r_vs_python.py [--data PATH] [--threads 1] [--repeats 2]

Writes ``benchmarks/results/r_vs_python.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("SCINTEGRATE_SHARED_DATA", REPO.parent / "shared" / "data")) / "mixology_3cl.h5ad"
#: why the R path was slow before (measured once, BERMUDA max_steps=200 = 62 epochs, one torch thread)
CAUSE = ("R links libblas.so.3 (here the reference BLAS) into the process before Python starts; libtorch_cpu "
         "exports MKL's sgemm_/dgemm_, but its calls were bound to R's copy (LD_DEBUG=bindings: 'binding file "
         "libtorch_cpu.so to /usr/lib/x86_64-linux-gnu/libblas.so.3: normal symbol sgemm_'), so every matrix "
         "product ran single-threaded in reference BLAS. BERMUDA training from R: 51.3 s (0.8 s/epoch) before, "
         "4.7 s (0.05 s/epoch) after, Python 5.2 s; a 300x2000 autoencoder step: 0.38 s vs 0.023 s. Fix: the "
         "bridge imports torch with RTLD_DEEPBIND when a foreign sgemm_ is present (scintegrate._r_bridge.load_torch).")
#: the same on both paths; {} = the method's defaults (every method's defaults take under a minute here)
PARAMS: dict = {}


def python_worker(data: str, runs: list, threads: int, repeats: int) -> dict:
    """The Python half: time ``scintegrate.integrate`` for each run (in this process)."""
    import anndata as ad
    import torch

    import scintegrate as si

    if torch.get_num_threads() != threads:  # OMP_NUM_THREADS set it already; calling again slows torch down
        torch.set_num_threads(threads)
    adata = ad.read_h5ad(data)
    warm = si.datasets.simulate_counts(n_cells=200, n_genes=100, seed=0)
    out = []
    for run in runs:
        si.integrate(warm.copy(), method=run["name"], progress=False, **run["quick"])
        seconds = []
        for _ in range(repeats):
            work = adata.copy()
            start = time.perf_counter()
            si.integrate(work, method=run["name"], progress=False, **run["params"])
            seconds.append(round(time.perf_counter() - start, 3))
        key = next(iter(work.uns["scintegrate"]))
        rec = work.uns["scintegrate"][key]
        out.append({"method": run["name"], "seconds": seconds, "python_stage_seconds": dict(rec["timings"]),
                    "threads": torch.get_num_threads(), "epochs_used": rec.get("epochs_used"),
                    "dim": list(work.obsm[key].shape)})
    return {"runs": out}


def summarise(p_run: dict, r_run: dict) -> dict:
    """One method's row: fastest and median seconds of each path, their ratios, and the raw runs."""
    import statistics

    p_s, r_s = min(p_run["seconds"]), min(r_run["seconds"])
    p_med, r_med = statistics.median(p_run["seconds"]), statistics.median(r_run["seconds"])
    return {"python_seconds": p_s, "r_seconds": r_s, "ratio_r_over_python": round(r_s / p_s, 3),
            "within_1_5x": r_s <= 1.5 * p_s, "python_seconds_median": p_med, "r_seconds_median": r_med,
            "ratio_median": round(r_med / p_med, 3), "params": PARAMS.get(p_run["method"], {}),
            "python": p_run, "r": r_run}


def _install_r_package(lib: Path) -> None:
    subprocess.run(["R", "CMD", "INSTALL", "--no-test-load", "--no-docs", f"--library={lib}", str(REPO / "Rpkg")],
                   check=True, capture_output=True, text=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both paths (default 1)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--methods", default=None, help="comma-separated (default: every registered method)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "r_vs_python.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:  # python_worker in a fresh process: args.worker is the run list (JSON)
        print("RESULT " + json.dumps(python_worker(args.data, json.loads(args.worker), args.threads, args.repeats)))
        return 0
    from scintegrate import registry

    names = args.methods.split(",") if args.methods else registry.method_names()
    runs = [{"name": n, "params": PARAMS.get(n, {}), "quick": registry.get_spec(n).quick_params} for n in names]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "RETICULATE_PYTHON": sys.executable}

    py = subprocess.run([sys.executable, __file__, "--data", args.data, "--threads", str(args.threads),
                         "--repeats", str(args.repeats), "--worker", json.dumps(runs)],
                        env=env, capture_output=True, text=True, check=True)
    python = json.loads([line for line in py.stdout.splitlines() if line.startswith("RESULT ")][-1][7:])

    with tempfile.TemporaryDirectory() as tmp:
        lib, runs_file, out_file = Path(tmp) / "lib", Path(tmp) / "runs.json", Path(tmp) / "r.json"
        lib.mkdir()
        _install_r_package(lib)
        runs_file.write_text(json.dumps(runs))
        r_env = {**env, "R_LIBS": os.pathsep.join(filter(None, [str(lib), env.get("R_LIBS", "")]))}
        done = subprocess.run(["Rscript", str(REPO / "benchmarks" / "r_vs_python.R"), args.data, str(runs_file),
                               str(args.threads), str(args.repeats), str(out_file)],
                              env=r_env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"the R worker failed:\n{done.stderr[-3000:]}")
        r = json.loads(out_file.read_text())

    table = {p_run["method"]: summarise(p_run, r_run) for p_run, r_run in zip(python["runs"], r["runs"])}
    result = {
        "description": "integrateBatches() from R vs scintegrate.integrate() from Python, same file, params, seed "
                       "and torch threads; fastest of the repeats, seconds of the integrate call (R: transfer "
                       "and conversions included), imports warmed up; ratio = fastest R / fastest Python, ratio_median "
                       "of the medians",
        "data": Path(args.data).name, "threads": args.threads, "repeats": args.repeats,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "r": {"version": r.get("r_version"), "blas": r.get("blas"), "torch_load": r.get("torch_load")},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "cause_of_the_slow_r_path": CAUSE, "methods": table,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for name, row in table.items():
        print(f"{name:10s} python {row['python_seconds']:8.2f} s   R {row['r_seconds']:8.2f} s   "
              f"ratio {row['ratio_r_over_python']:.2f}")
    return 0 if all(row["within_1_5x"] for row in table.values()) else 1


if __name__ == "__main__":
    if shutil.which("Rscript") is None:
        raise SystemExit("Rscript not found")
    sys.exit(main())
