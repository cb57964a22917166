"""Scanorama run time and peak memory: ours (registry "scanorama") against the scanorama package (peer
"scanoramapy") in the same run, on simulated counts.

Simulated counts (``scintegrate.datasets.simulate_counts``: 2,000 genes, 6 cell types, ``--batches`` batches
of equal size) at each ``--sizes`` entry; both methods run with the package's defaults (``dimred`` 100,
``knn`` 20, ``alpha`` 0.10, ``sigma`` 15; the package through our peer, Annoy search), from the same counts
through the same preprocessing (log-normalise, 2,000 integration features). Each (size, method) runs in a
child process (this script with a hidden ``--child`` flag): the peak RSS is that run's own (``rss_before_fit_gb``
is the memory of the simulated data before the fit), and a crash or an out-of-memory kill of one run is
recorded while the others go on. Wall and CPU seconds of the fit (preprocessing included) and the load
average are recorded: the machine may be shared, so compare the two methods within a size.

Goal (issue): ours in at most half the package's time at 50,000 cells in 10 batches.

Usage::

    python benchmarks/scanorama_speed.py --sizes 10000                       # a quick look
    python benchmarks/scanorama_speed.py --sizes 10000,50000,100000,200000   # the full table
    python benchmarks/scanorama_speed.py --sizes 50000 --batches 50 --merge  # 50 batches, added to the file

Writes ``benchmarks/results/scanorama_speed.json`` (``--out`` to change; ``--merge`` keeps the runs already
there, replacing those of the same size, batches and method).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _bench import rss_gb, run_child as bench_child, version  # noqa: E402
OUT = HERE / "results" / "scanorama_speed.json"
OURS, PACKAGE = "scanorama", "scanoramapy"


def child(args) -> dict:
    """One fit of one method on one simulated data set; the numbers as a dict."""
    import warnings

    import numpy as np

    import scintegrate as si
    from scintegrate.api import build_model

    adata = si.datasets.simulate_counts(n_cells=args.n_cells, n_genes=2000, n_batches=args.n_batches, n_types=6,
                                        seed=args.seed)
    params = {"dimred": 100} if args.method == PACKAGE else {}  # the package's own default (the peer's is 50)
    before = rss_gb()
    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model(args.method, seed=args.seed, device=args.device, progress=False, **params)
        emb = model.fit(adata, batch_key="batch").embed()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"n_cells": args.n_cells, "n_batches": args.n_batches, "method": args.method, "device": args.device,
            "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_gb": round(rss_gb(), 3),
            "rss_before_fit_gb": round(before, 3), "timings": getattr(model, "timings_", {}),
            "embedding_dims": int(emb.shape[1]), "finite": bool(np.isfinite(emb).all()),
            "load_average": [round(load0, 2), round(os.getloadavg()[0], 2)]}


def run_child(n_cells: int, n_batches: int, method: str, args) -> dict:
    cmd = [sys.executable, __file__, "--child", "--n-cells", str(n_cells), "--n-batches", str(n_batches),
           "--method", method, "--seed", str(args.seed), "--device", args.device]
    return bench_child(cmd, {"n_cells": n_cells, "n_batches": n_batches, "method": method, "device": args.device},
                       args.timeout)


def _ratios(runs: list) -> list:
    rows = []
    for key in sorted({(r["n_cells"], r["n_batches"]) for r in runs}):
        pair = {r["method"]: r for r in runs if (r["n_cells"], r["n_batches"]) == key and "error" not in r}
        if OURS in pair and PACKAGE in pair:
            ours, theirs = pair[OURS], pair[PACKAGE]
            rows.append({"n_cells": key[0], "n_batches": key[1],
                         "time_ratio_ours_over_package": round(ours["wall_s"] / theirs["wall_s"], 3),
                         "cpu_ratio_ours_over_package": round(ours["cpu_s"] / theirs["cpu_s"], 3),
                         "peak_rss_ratio_ours_over_package": round(ours["peak_rss_gb"] / theirs["peak_rss_gb"], 3)})
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000", help="comma-separated numbers of cells")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--methods", default=f"{OURS},{PACKAGE}")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=7200, help="seconds per run before it is recorded as failed")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--merge", action="store_true", help="keep the runs already in --out")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--n-cells", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--n-batches", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--method", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.result.write_text(json.dumps(child(args)))
        return {}
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    runs = []
    if args.merge and args.out.exists():
        runs = json.loads(args.out.read_text()).get("runs", [])
    for n in [int(s) for s in args.sizes.split(",")]:
        for method in methods:
            runs = [r for r in runs if (r["n_cells"], r["n_batches"], r["method"]) != (n, args.batches, method)]
            runs.append(run_child(n, args.batches, method, args))
            print(json.dumps(runs[-1]), flush=True)
    runs.sort(key=lambda r: (r["n_batches"], r["n_cells"], r["method"]))
    import torch

    out = {"runs": runs, "ratios": _ratios(runs),
           "goal": "ours <= 0.5 x the package's wall time at 50,000 cells in 10 batches",
           "versions": {p: version(p) for p in ("scintegrate", "scanorama", "torch", "numpy", "pynndescent")},
           "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                       "platform": platform.platform()},
           "date": _dt.datetime.now().isoformat(timespec="seconds"), "command": " ".join(sys.argv)}
    goal = [r for r in out["ratios"] if (r["n_cells"], r["n_batches"]) == (50000, 10)]
    if goal:
        out["goal_met"] = bool(goal[0]["time_ratio_ours_over_package"] <= 0.5)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=1))
    os.replace(tmp, args.out)
    print(json.dumps(out["ratios"], indent=1))
    return out


if __name__ == "__main__":
    main()
