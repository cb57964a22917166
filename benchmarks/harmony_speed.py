"""Harmony run time, peak memory, iterations and quality: ours (registry "harmony") against harmonypy, in the
same run, on a simulated embedding.

The embedding (``--dims`` 30 dimensions, ``--batches`` 10 batches, 8 cell types) is Gaussian: type centres
N(0, 5^2), one shift N(0, 2^2) per batch, noise N(0, 1), cells drawn uniformly over types and batches; it is
what Harmony corrects (PCs), so no preprocessing is timed. At each ``--sizes`` entry four runs:

- ``ours``: our ``Harmony`` with its defaults (``lamb`` 1, 20 clustering rounds, ``epsilon_cluster`` 1e-5,
  ``epsilon_harmony`` 1e-4: the original Harmony's);
- ``harmonypy_matched``: harmonypy with those same settings (``lamb=1, max_iter_kmeans=20,
  epsilon_cluster=1e-5, epsilon_harmony=1e-4``);
- ``harmonypy``: harmonypy at its own defaults (Harmony 2's: ``lamb`` estimated, 4 clustering rounds,
  1e-3 / 1e-2);
- ``ours_harmonypy_defaults``: ours with harmonypy's defaults (``lamb=None, max_iter_cluster=4,
  epsilon_cluster=1e-3, epsilon_harmony=1e-2``).

All use ``theta`` 2, ``sigma`` 0.1, ``block_size`` 0.05, at most 10 outer iterations and K = min(100, N / 30).
The same settings are not the same algorithm: harmonypy 2.x is Harmony 2 (R harmony >= 2.0): the penalty
``log((O + E + 1) / (2E + 1))``, centroids fixed after the K-means start, assignments re-estimated after each
correction; ours is the original Harmony with R harmony 1.1's penalty ``log((O + E) / E)`` and centroids
updated every clustering round. So iterations, rounds and objectives differ even at equal settings (the
objective values are not comparable across the two at all).

Each (size, run) is a child process (this script with a hidden ``--child`` flag), so the peak RSS is that
run's own (``rss_before_fit_gb``: the process before the fit, its imports and the simulated embedding); a
crash or an out-of-memory kill is recorded and the other runs go on. Recorded: wall and CPU seconds of the
fit, peak RSS, outer iterations, clustering rounds, convergence (harmonypy: stopped before
``max_iter_harmony``), the threads each used, and the quality on a fixed subsample of ``--quality-cells``
cells (20,000): ``ebm`` (kNN batch-mixing entropy, 1 = mixed) and ``knn_accuracy`` (kNN cell-type purity),
with the uncorrected numbers alongside. The machine may be shared: compare runs within a size, and look at
the load average.


Usage::

    python benchmarks/harmony_speed.py --sizes 10000                   # a quick look
    python benchmarks/harmony_speed.py                                 # 10,000, 100,000 and 1,000,000 cells

Writes ``benchmarks/results/harmony_speed.json`` and ``harmony_speed.md`` (``--out`` for the JSON; the
Markdown goes next to it; ``--merge`` keeps the runs already there, replacing those of the same size and run).
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
OUT = HERE / "results" / "harmony_speed.json"
MATCHED = {"lamb": 1.0, "max_iter": 10, "max_iter_cluster": 20, "epsilon_cluster": 1e-5, "epsilon_harmony": 1e-4}
HP_DEFAULTS = {"lamb": None, "max_iter": 10, "max_iter_cluster": 4, "epsilon_cluster": 1e-3,
               "epsilon_harmony": 1e-2}
#: run name -> (implementation, settings)
RUNS = {"ours": ("ours", MATCHED), "harmonypy_matched": ("harmonypy", MATCHED),
        "harmonypy": ("harmonypy", HP_DEFAULTS), "ours_harmonypy_defaults": ("ours", HP_DEFAULTS)}
#: ours / harmonypy at the same settings, and each at its own defaults
PAIRS = {"same settings (original Harmony's)": ("ours", "harmonypy_matched"),
         "same settings (harmonypy's defaults)": ("ours_harmonypy_defaults", "harmonypy"),
         "each at its defaults": ("ours", "harmonypy")}


def simulate(n: int, n_batches: int, dims: int, seed: int):
    """The embedding (float32), batch codes and cell-type codes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    types, batch = rng.integers(0, 8, n), rng.integers(0, n_batches, n)
    Z = rng.normal(0, 5, (8, dims)).astype(np.float32)[types]
    Z += rng.normal(0, 2, (n_batches, dims)).astype(np.float32)[batch]
    Z += rng.standard_normal((n, dims), dtype=np.float32)
    return Z, batch, types


def quality(Z, batch, types, n_sub: int, seed: int) -> dict:
    import numpy as np

    from scintegrate.metrics import ebm, knn_accuracy

    sub = np.sort(np.random.default_rng(seed + 1).permutation(len(Z))[:n_sub])
    return {"ebm": round(ebm(Z[sub], batch[sub], seed=seed), 4),
            "knn_accuracy": round(knn_accuracy(Z[sub], types[sub]), 4), "cells": int(sub.size)}


def child(args) -> dict:
    """One fit of one run on one simulated embedding; the numbers as a dict."""
    import warnings

    import numpy as np

    impl, p = RUNS[args.run]
    Z, batch, types = simulate(args.n_cells, args.n_batches, args.dims, args.seed)
    out = {"n_cells": args.n_cells, "n_batches": args.n_batches, "dims": args.dims, "run": args.run,
           "implementation": impl, "settings": p}
    if impl == "ours":
        import anndata as ad
        import pandas as pd
        import torch

        from scintegrate.models import Harmony

        adata = ad.AnnData(obs=pd.DataFrame({"batch": batch.astype(str)}, index=pd.RangeIndex(len(Z)).astype(str)))
        adata.obsm["X_pca"] = Z
        out["threads"] = torch.get_num_threads()
        before, load0 = rss_gb(), os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the non-convergence warning: recorded below
            model = Harmony(seed=args.seed, device=args.device, **p).fit(adata, batch_key="batch")
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        E = model.embed()
        out.update(iterations=model.n_iter_, kmeans_rounds=model.kmeans_rounds_, converged=model.converged_,
                   n_clusters=model.n_clusters_, objective=[round(v, 4) for v in model.objective_],
                   timings=model.timings_)
    else:
        import harmonypy
        import pandas as pd

        meta = pd.DataFrame({"batch": batch.astype(str)})
        try:
            from harmonypy.harmony import _available_cores, _physical_cores
            out["threads"] = min(_physical_cores() or _available_cores(), _available_cores())
        except ImportError:
            out["threads"] = None
        before, load0 = rss_gb(), os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        ho = harmonypy.run_harmony(Z, meta, "batch", theta=2.0, lamb=p["lamb"], sigma=0.1, block_size=0.05,
                                   max_iter_harmony=p["max_iter"], max_iter_kmeans=p["max_iter_cluster"],
                                   epsilon_cluster=p["epsilon_cluster"], epsilon_harmony=p["epsilon_harmony"],
                                   verbose=False, random_state=args.seed)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        E = np.asarray(ho.Z_corr, dtype=np.float32)
        E = E.T if E.shape[0] != len(Z) else E
        rounds = [int(v) for v in getattr(ho, "kmeans_rounds", [])]
        out.update(iterations=len(rounds), kmeans_rounds=rounds, converged=len(rounds) < p["max_iter"],
                   n_clusters=int(ho.K), objective=[round(float(v), 4) for v in ho.objective_harmony])
    out.update(wall_s=round(wall, 2), cpu_s=round(cpu, 2), peak_rss_gb=round(rss_gb(), 3),
               rss_before_fit_gb=round(before, 3), load_average=[round(load0, 2), round(os.getloadavg()[0], 2)],
               finite=bool(np.isfinite(E).all()))
    out["quality"] = quality(E, batch, types, args.quality_cells, args.seed)
    if args.run == "ours":
        out["quality_uncorrected"] = quality(Z, batch, types, args.quality_cells, args.seed)
    return out


def run_child(n_cells: int, run: str, args) -> dict:
    cmd = [sys.executable, __file__, "--child", "--n-cells", str(n_cells), "--n-batches", str(args.batches),
           "--dims", str(args.dims), "--run", run, "--seed", str(args.seed), "--device", args.device,
           "--quality-cells", str(args.quality_cells)]
    return bench_child(cmd, {"n_cells": n_cells, "n_batches": args.batches, "run": run}, args.timeout)


def ratios(runs: list) -> list:
    rows = []
    for n in sorted({r["n_cells"] for r in runs}):
        ok = {r["run"]: r for r in runs if r["n_cells"] == n and "error" not in r}
        for label, (a, b) in PAIRS.items():
            if a in ok and b in ok:
                rows.append({"n_cells": n, "pair": label, "ours": a, "harmonypy": b,
                             "time_ratio": round(ok[a]["wall_s"] / ok[b]["wall_s"], 3),
                             "cpu_ratio": round(ok[a]["cpu_s"] / max(ok[b]["cpu_s"], 1e-9), 3),
                             "peak_rss_ratio": round(ok[a]["peak_rss_gb"] / ok[b]["peak_rss_gb"], 3),
                             "extra_rss_ratio": round((ok[a]["peak_rss_gb"] - ok[a]["rss_before_fit_gb"]) / max(
                                 ok[b]["peak_rss_gb"] - ok[b]["rss_before_fit_gb"], 1e-3), 3)})
    return rows


def markdown(out: dict) -> str:
    lines = [f"# Harmony: ours vs harmonypy {out['versions'].get('harmonypy')} on a simulated embedding "
             f"({out['date']})", "",
             f"{out['n_batches']} batches, {out['dims']} dimensions, 8 cell types; K = min(100, N/30). Quality on a "
             f"fixed subsample of {out['quality_cells']} cells: ebm = kNN batch-mixing entropy (1 = mixed), "
             "purity = kNN cell-type accuracy. Threads: ours = torch threads, harmonypy = its C++ threads. "
             f"Machine: {out['machine']['cpus']} CPUs, shared (see the load averages in the JSON).", "",
             "| cells | run | settings | wall s | CPU s | peak RSS GB (before the fit) | iterations "
             "| clustering rounds | converged | ebm | purity | threads |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in out["runs"]:
        if "error" in r:
            lines.append(f"| {r['n_cells']} | {r['run']} | error: {r['error'][:150]} |")
            continue
        s = r["settings"]
        setting = (f"lamb {s['lamb']}, {s['max_iter_cluster']} rounds, {s['epsilon_cluster']:g} / "
                   f"{s['epsilon_harmony']:g}")
        lines.append(f"| {r['n_cells']} | {r['run']} | {setting} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | "
                     f"{r['peak_rss_gb']:.3f} ({r['rss_before_fit_gb']:.3f}) | {r['iterations']} | "
                     f"{sum(r['kmeans_rounds'])} ({', '.join(map(str, r['kmeans_rounds']))}) | "
                     f"{'yes' if r['converged'] else 'no'} | {r['quality']['ebm']:.3f} | "
                     f"{r['quality']['knn_accuracy']:.3f} | {r['threads']} |")
    unc = [r for r in out["runs"] if "quality_uncorrected" in r]
    if unc:
        lines += ["", "Uncorrected: " + "; ".join(
            f"{r['n_cells']} cells ebm {r['quality_uncorrected']['ebm']:.3f}, purity "
            f"{r['quality_uncorrected']['knn_accuracy']:.3f}" for r in unc) + "."]
    lines += ["", "Ratios ours / harmonypy (extra RSS = peak minus the RSS before the fit):", "",
              "| cells | pair | ours run | harmonypy run | time | CPU | peak RSS | extra RSS |",
              "|---|---|---|---|---|---|---|---|"]
    for r in out["ratios"]:
        lines.append(f"| {r['n_cells']} | {r['pair']} | {r['ours']} | {r['harmonypy']} | {r['time_ratio']:.3f} | "
                     f"{r['cpu_ratio']:.3f} | {r['peak_rss_ratio']:.3f} | {r['extra_rss_ratio']:.3f} |")
    lines += ["", f"Command: `{out['command']}`. Versions: {out['versions']}."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated numbers of cells")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--dims", type=int, default=30)
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of {list(RUNS)}")
    parser.add_argument("--device", default="cpu", help="device of our runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quality-cells", type=int, default=20000)
    parser.add_argument("--timeout", type=float, default=7200, help="seconds per run before it is recorded as failed")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--merge", action="store_true", help="keep the runs already in --out")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--n-cells", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--n-batches", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.result.write_text(json.dumps(child(args)))
        return {}
    names = [m.strip() for m in args.runs.split(",") if m.strip()]
    unknown = sorted(set(names) - set(RUNS))
    if unknown:
        parser.error(f"unknown run(s) {unknown}; choose from {list(RUNS)}")
    runs = []
    if args.merge and args.out.exists():
        runs = [r for r in json.loads(args.out.read_text()).get("runs", []) if r.get("n_batches") == args.batches]
    for n in [int(s) for s in args.sizes.split(",")]:
        for name in names:
            runs = [r for r in runs if (r["n_cells"], r["run"]) != (n, name)]
            runs.append(run_child(n, name, args))
            print(json.dumps({k: v for k, v in runs[-1].items() if k != "objective"}), flush=True)
    order = list(RUNS)
    runs.sort(key=lambda r: (r["n_cells"], order.index(r["run"])))
    import torch

    out = {"runs": runs, "ratios": ratios(runs), "n_batches": args.batches, "dims": args.dims,
           "quality_cells": args.quality_cells,
           "versions": {p: version(p) for p in ("scintegrate", "harmonypy", "torch", "numpy")},
           "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                       "platform": platform.platform()},
           "date": _dt.datetime.now().isoformat(timespec="seconds"), "command": " ".join(sys.argv)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=1))
    os.replace(tmp, args.out)
    md = markdown(out)
    args.out.with_suffix(".md").write_text(md)
    print(md)
    return out


if __name__ == "__main__":
    main()
