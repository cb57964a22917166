"""Speed and memory of the full metric set: scintegrate.metrics vs scib-metrics' Benchmarker.

Scores a simulated 30-d embedding (batches + cell types, plus a more batch-affected
"unintegrated" embedding for PCR comparison) at 5k, 20k and 50k cells. Every (tool, size) runs in
its own subprocess, so peak memory is that process's max RSS (``resource.getrusage``). Each
worker first scores a 4.5k-cell warm-up (JIT compilation: numba, jax) that is timed separately;
the main numbers are steady-state wall seconds, CPU seconds (user + system) and peak RSS.

Usage::

    nice .venv/bin/python benchmarks/metrics_speed.py                 # 5k, 20k, 50k; both tools
    nice .venv/bin/python benchmarks/metrics_speed.py --sizes 5000 --tools scintegrate

Writes ``benchmarks/results/metrics_speed.json`` and ``.csv`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WARMUP_CELLS = 4500  # above umap-learn's 4096-cell switch to pynndescent, so its JIT is warmed too


def simulate_embedding(n_cells: int, *, dim: int = 30, n_batches: int = 4, n_types: int = 10, seed: int = 0):
    """(X, X_unintegrated, batch, labels): Gaussian cell types, a partly removed batch shift."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_types, n_cells)
    batch = rng.integers(0, n_batches, n_cells)
    type_centers = rng.normal(scale=3.0, size=(n_types, dim))
    batch_shift = rng.normal(scale=2.0, size=(n_batches, dim))
    noise = rng.normal(size=(n_cells, dim))
    X_unintegrated = type_centers[labels] + batch_shift[batch] + noise
    X = type_centers[labels] + 0.25 * batch_shift[batch] + noise
    as_str = np.vectorize(lambda prefix, v: f"{prefix}{v}")
    return (X.astype(np.float32), X_unintegrated.astype(np.float32), as_str("batch", batch),
            as_str("type", labels))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def _score_scintegrate(X, X_pre, batch, labels) -> dict:
    from scintegrate.metrics import compute_metrics

    return compute_metrics(X, batch, labels, X_unintegrated=X_pre, seed=0, device="cpu", progress=False)


def _score_scib(X, X_pre, batch, labels) -> dict:
    import anndata as ad
    import pandas as pd
    from scib_metrics.benchmark import Benchmarker

    adata = ad.AnnData(obs=pd.DataFrame({"batch": batch, "cell_type": labels},
                                        index=[str(i) for i in range(len(batch))]))
    adata.obsm["X_emb"], adata.obsm["X_pre"] = X, X_pre
    bm = Benchmarker(adata, batch_key="batch", label_key="cell_type", embedding_obsm_keys=["X_emb"],
                     pre_integrated_embedding_obsm_key="X_pre", n_jobs=1, progress_bar=False)
    bm.benchmark()
    res = bm.get_results(min_max_scale=False)
    return {str(k): float(v) for k, v in res.loc["X_emb"].items()}


def worker(tool: str, n_cells: int) -> dict:
    """Score one size with one tool in this process; returns timings, memory and the scores."""
    score = {"scintegrate": _score_scintegrate, "scib": _score_scib}[tool]
    start = time.perf_counter()
    score(*simulate_embedding(WARMUP_CELLS, seed=1))
    warmup = time.perf_counter() - start
    data = simulate_embedding(n_cells, seed=0)
    base_rss, cpu0 = _max_rss_mb(), _cpu_seconds()
    start = time.perf_counter()
    scores = score(*data)
    seconds = time.perf_counter() - start
    return {"tool": tool, "n_cells": n_cells, "seconds": round(seconds, 2),
            "cpu_seconds": round(_cpu_seconds() - cpu0, 2), "warmup_seconds": round(warmup, 2),
            "peak_rss_mb": round(_max_rss_mb(), 1), "rss_before_mb": round(base_rss, 1), "status": "ok",
            "scores": {k: (None if not math.isfinite(v) else round(float(v), 4)) for k, v in scores.items()}}


def run_one(tool: str, n_cells: int, timeout: int) -> dict:
    """``worker`` in a fresh subprocess (clean peak RSS); failures become a status, not a crash."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", tool, "--n", str(n_cells)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    except subprocess.TimeoutExpired:
        return {"tool": tool, "n_cells": n_cells, "status": f"timeout after {timeout} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"tool": tool, "n_cells": n_cells, "status": f"failed (rc {proc.returncode}): {' | '.join(tail)}"}
    return json.loads(lines[-1])


def growth(records: list) -> dict:
    """Per tool: time and memory ratio from the smallest to the largest size, and the log-log slope."""
    out = {}
    for tool in sorted({r["tool"] for r in records}):
        ok = sorted((r for r in records if r["tool"] == tool and r["status"] == "ok"), key=lambda r: r["n_cells"])
        if len(ok) < 2:
            continue
        a, b = ok[0], ok[-1]
        size_ratio = b["n_cells"] / a["n_cells"]
        out[tool] = {"from": a["n_cells"], "to": b["n_cells"], "time_ratio": round(b["seconds"] / a["seconds"], 2),
                     "time_exponent": round(math.log(b["seconds"] / a["seconds"]) / math.log(size_ratio), 2),
                     "cpu_time_ratio": round(b["cpu_seconds"] / a["cpu_seconds"], 2),
                     "peak_rss_ratio": round(b["peak_rss_mb"] / a["peak_rss_mb"], 2)}
    return out


def print_table(records: list, grow: dict) -> None:
    print(f"{'tool':<12} {'cells':>7} {'seconds':>9} {'CPU s':>9} {'warm-up s':>9} {'peak RSS MB':>12} "
          f"{'RSS before':>11}  status")
    for r in records:
        print(f"{r['tool']:<12} {r['n_cells']:>7} {r.get('seconds', float('nan')):>9} "
              f"{r.get('cpu_seconds', float('nan')):>9} "
              f"{r.get('warmup_seconds', float('nan')):>9} {r.get('peak_rss_mb', float('nan')):>12} "
              f"{r.get('rss_before_mb', float('nan')):>11}  {r['status']}")
    for tool, g in grow.items():
        print(f"{tool}: {g['from']} -> {g['to']} cells: time x{g['time_ratio']} (~n^{g['time_exponent']}), "
              f"peak RSS x{g['peak_rss_ratio']}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 50000])
    parser.add_argument("--tools", nargs="+", default=["scintegrate", "scib"], choices=["scintegrate", "scib"])
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per (tool, size) run")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "metrics_speed.json")
    parser.add_argument("--worker", choices=["scintegrate", "scib"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.n)))
        return
    records = []
    for n_cells in args.sizes:
        for tool in args.tools:
            records.append(run_one(tool, n_cells, args.timeout))
            print(f"  {tool} {n_cells}: {records[-1].get('seconds', '-')} s, {records[-1]['status']}", flush=True)
    grow = growth(records)
    meta = {"python": sys.version.split()[0], "cpu_count": os.cpu_count(), "warmup_cells": WARMUP_CELLS,
            "embedding": "30-d Gaussian, 4 batches, 10 cell types", "platform": sys.platform}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "records": records, "growth": grow}, indent=2))
    _write_csv(records, args.out.with_suffix(".csv"))
    print_table(records, grow)


def _write_csv(records: list, path: Path) -> None:
    import pandas as pd

    cols = ["tool", "n_cells", "seconds", "cpu_seconds", "warmup_seconds", "peak_rss_mb", "rss_before_mb", "status"]
    pd.DataFrame([{c: r.get(c) for c in cols} for r in records]).to_csv(path, index=False)


if __name__ == "__main__":
    main()
