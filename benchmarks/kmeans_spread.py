"""How much scib-metrics' k-means NMI / ARI moves with the k-means start alone, on one embedding.

scib-metrics' ``Benchmarker`` clusters each embedding by one k-means run (its jax ``KMeans``: k-means++, one
start, seed 0) with k the number of labels, so its "KMeans NMI / ARI" (and through them the Bio conservation and
Total) depend on that start. This fits one registry method (seed 0) on a shared set and reruns that k-means with
``--starts`` seeds on the same embedding, next to our Leiden-sweep NMI / ARI.

Usage::

    nice .venv/bin/python benchmarks/kmeans_spread.py --dataset pbmc_10x_chemistries --method scanvi

Writes ``benchmarks/results/kmeans_spread_<dataset>_<method>.json`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--method", required=True)
    ap.add_argument("--starts", type=int, default=10)
    ap.add_argument("--out-dir", default=str(HERE / "results"))
    args = ap.parse_args(argv)
    import numpy as np
    import torch
    from scib_metrics.utils import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    torch.set_num_threads(1)
    import scintegrate as si
    from scintegrate import registry
    from scintegrate.datasets import load_shared
    from scintegrate.metrics import compute_metrics

    adata = load_shared(args.dataset)
    spec = registry.get_spec(args.method)
    start = time.perf_counter()
    si.integrate(adata, method=args.method, seed=0, progress=False)
    seconds = time.perf_counter() - start
    X = np.asarray(adata.obsm[spec.obsm_key or f"X_{args.method}"])
    labels = adata.obs["cell_type"].astype(str).to_numpy()
    n_clusters = len(np.unique(labels))
    runs = []
    for seed in range(args.starts):
        pred = np.asarray(KMeans(n_clusters, seed=seed).fit(X).labels_)
        runs.append({"seed": seed, "nmi": round(float(normalized_mutual_info_score(labels, pred)), 4),
                     "ari": round(float(adjusted_rand_score(labels, pred)), 4)})
    ours = compute_metrics(X, adata.obs["batch"].to_numpy(), labels, metrics=["nmi", "ari"], seed=0,
                           progress=False)
    nmi = [r["nmi"] for r in runs]
    out = {"dataset": args.dataset, "method": args.method, "integration_s": round(seconds, 1),
           "n_clusters": n_clusters, "kmeans_starts": runs,
           "kmeans_nmi_min_median_max": [min(nmi), float(np.median(nmi)), max(nmi)],
           "leiden_sweep_nmi_ari": [round(float(ours["nmi"]), 4), round(float(ours["ari"]), 4)]}
    path = Path(args.out_dir) / f"kmeans_spread_{args.dataset}_{args.method}.json"
    path.write_text(json.dumps(out, indent=1))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
