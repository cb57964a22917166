"""Embeddings of every built-in method before and after a refactor: checksums, max differences, scores.

Run once per checkout on the same machine and thread count, then compare::

    PYTHONPATH=<old checkout>/python OMP_NUM_THREADS=2 python benchmarks/refactor_equivalence.py embed before.npz
    OMP_NUM_THREADS=2 python benchmarks/refactor_equivalence.py embed after.npz
    python benchmarks/refactor_equivalence.py compare before.npz after.npz benchmarks/results/refactor_equivalence.json

Data: the demo simulation (seed 0) and ../shared/data/mixology_3cl.h5ad; every method at its defaults, seed 0, CPU.
"""

import hashlib
import json
import sys
import time
import warnings

import numpy as np


def _sets():
    import scintegrate as si

    return {"demo": lambda: si.datasets.demo_data(seed=0),
            "mixology": lambda: si.datasets.load_shared("mixology_3cl")}


def embed(out):
    import torch

    import scintegrate as si

    torch.set_num_threads(2)
    res = {}
    for name, load in _sets().items():
        for method in ("pca", "bermuda", "deepbid"):
            adata = load()
            t0 = time.time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                si.integrate(adata, method=method, batch_key="batch", seed=0, device="cpu", progress=False)
            key = [k for k in adata.obsm if k.startswith("X_")][0]
            res[f"{name}:{method}"] = np.asarray(adata.obsm[key])
            print(name, method, hashlib.md5(res[f"{name}:{method}"].tobytes()).hexdigest(),
                  f"{time.time() - t0:.1f}s", flush=True)
    np.savez(out, **res)


def compare(before_path, after_path, out_path):
    from scintegrate.metrics import compute_metrics

    before, after = np.load(before_path), np.load(after_path)
    report = {}
    for name, load in _sets().items():
        adata = load()
        batch, labels = adata.obs["batch"].astype(str).to_numpy(), adata.obs["cell_type"].astype(str).to_numpy()
        for method in ("pca", "bermuda", "deepbid"):
            key = f"{name}:{method}"
            a, b = before[key], after[key]
            row = {"md5_before": hashlib.md5(a.tobytes()).hexdigest(), "md5_after": hashlib.md5(b.tobytes()).hexdigest(),
                   "max_abs_diff": float(np.abs(a - b).max()), "max_abs_value": float(np.abs(a).max())}
            if method != "pca":
                for tag, emb in (("before", a), ("after", b)):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        r = compute_metrics(emb, batch, labels, X_unintegrated=before[f"{name}:pca"], metrics="scib",
                                            seed=0)
                    row[f"scib_{tag}"] = {k: round(float(r[k]), 4) for k in ("batch_score", "bio_score", "overall")}
            report[key] = row
            print(key, json.dumps(row), flush=True)
    with open(out_path, "w") as fh:
        json.dump(report, fh, indent=1)


if __name__ == "__main__":
    if sys.argv[1] == "embed":
        embed(sys.argv[2])
    else:
        compare(*sys.argv[2:5])
