"""fastMNN and Seurat CCA at scale (issue 17): wall time, peak memory and latent-space scores of registry methods.

Simulated counts (``simulate_counts``, 2,000 genes, 8 types, batch effect 0.2) at ``--sizes`` (default 10k cells
in 2 batches, 50k in 5, 200k in 20); each method runs at its defaults in its own child process (peak RSS is that
run's), on ``--threads`` threads. k-means NMI / ARI (8 types) and iLISI of 10,000 cells score the embedding. The
goals of the issue: fastMNN on 200k cells in 20 batches in <= 5 minutes on this CPU, cost near-linear in cells;
our Seurat CCA >= 5x faster than R Seurat (the ``seuratr`` peer, through rpy2) at 20k cells, with less memory.

Usage::

    nice .venv/bin/python benchmarks/fastmnn_speed.py                     # ~20 min on 1 thread
    nice .venv/bin/python benchmarks/fastmnn_speed.py --sizes 10000:2,20000:2 --methods seurat_cca,seuratr \
        --out benchmarks/results/seurat_cca_speed.json
    nice .venv/bin/python benchmarks/fastmnn_speed.py --methods seurat_cca@reduction=rpca,seuratr@reduction=rpca

A method may carry parameters after ``@`` (``name@key=value@key=value``; string values).

Writes ``benchmarks/results/fastmnn_speed.json`` (or ``--out``) and prints each row.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _bench import rss_gb, run_child, version  # noqa: E402
from vae_speed import eval_cells, latent_scores  # noqa: E402

OUT = HERE / "results" / "fastmnn_speed.json"
GENES, TYPES = 2000, 8


def method_and_params(spec: str) -> tuple:
    """``"seurat_cca@reduction=rpca"`` -> ``("seurat_cca", {"reduction": "rpca"})`` (values kept as strings)."""
    method, *pairs = spec.split("@")
    return method, dict(pair.split("=", 1) for pair in pairs)


def child(spec: str, n_cells: int, n_batches: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    import scintegrate as si
    from scintegrate import registry

    adata = si.datasets.simulate_counts(n_cells=n_cells, n_genes=GENES, n_types=TYPES, n_batches=n_batches,
                                        batch_effect=0.2, seed=0)
    base = rss_gb()
    start = time.perf_counter()
    method, params = method_and_params(spec)
    model = registry.get_spec(method).model_class()(seed=0, **params).fit(adata, batch_key="batch")
    wall = time.perf_counter() - start
    sub = eval_cells(n_cells)
    scores = latent_scores(model.embed()[sub], adata.obs["cell_type"].to_numpy()[sub],
                           adata.obs["batch"].to_numpy()[sub])
    out = {"method": spec, "cells": n_cells, "batches": n_batches, "wall_s": round(wall, 1),
           "stages_s": dict(model.timings_), **scores, "peak_rss_gb": round(rss_gb(), 3),
           "rss_before_fit_gb": round(base, 3)}
    if method == "fastmnn":
        labels = adata.obs["cell_type"].to_numpy()
        pairs = model.pairs_
        out["mnn_pairs"] = int(len(pairs))
        out["same_type_pair_share"] = round(float((labels[pairs[:, 1]] == labels[pairs[:, 2]]).mean()), 4)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000:2,50000:5,200000:20", help="cells:batches, comma-separated")
    ap.add_argument("--methods", default="fastmnn,harmony,scanorama")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--child")
    ap.add_argument("--cells", type=int)
    ap.add_argument("--batches", type=int)
    ap.add_argument("--result")
    args = ap.parse_args(argv)
    if args.child:
        Path(args.result).write_text(json.dumps(child(args.child, args.cells, args.batches, args.threads)))
        return 0
    os.environ.update({"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)})
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "threads": args.threads, "cpus": os.cpu_count(),
            "torch": version("torch"), "scintegrate": version("scintegrate"), "genes": GENES, "types": TYPES,
            "command": " ".join(sys.argv)}
    rows = []
    for size in args.sizes.split(","):
        n, b = (int(v) for v in size.split(":"))
        for method in args.methods.split(","):
            rows.append(run_child([sys.executable, __file__, "--threads", str(args.threads), "--child", method,
                                   "--cells", str(n), "--batches", str(b)],
                                  {"method": method, "cells": n, "batches": b}, args.timeout))
            print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
