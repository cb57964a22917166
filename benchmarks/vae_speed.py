"""scVI at scale (issue 16): time per epoch, epochs used, peak memory, and where the latent space stops improving.

Two parts, each run of a model in its own child process (peak RSS is that run's):

- ``speed``: simulated counts (``simulate_counts``, 2,000 genes, 8 types, 4 batches, batch effect 0.2) at
  ``--sizes`` cells (default 10k, 50k, 100k); our SCVI for ``--short-epochs`` (3) epochs -> seconds per epoch
  (linear in cells?) and that times the epochs of its default schedule (scvi-tools' rule; every epoch runs, as
  the stopper waits for the end of the KL warm-up), peak RSS against the size of the sparse input
  (``--full-largest``: the largest size trained at the defaults, with the held-out ELBO per epoch and k-means
  NMI / ARI and iLISI of 10,000 cells); scvi-tools' SCVI for
  ``--peer-epochs`` epochs (default 2) at each size -> its seconds per epoch (an upper bound: start-up
  included), extrapolated to its default schedule (``min(400, 400 * 20,000 / n)`` epochs, no early stopping)
  and reported as such.
- ``convergence``: one run at ``--convergence-cells`` (default 100k) for scvi-tools' full schedule (80 epochs),
  early stopping off, recording the held-out ELBO after every epoch and the NMI / ARI (k-means on 8 types,
  scikit-learn) and the batch mixing (iLISI) of the latent space of 10,000 cells every 5 epochs: at which epoch
  the latent space stops improving.

Usage::

    nice .venv/bin/python benchmarks/vae_speed.py                       # both parts (~1 h on 1 thread)
    nice .venv/bin/python benchmarks/vae_speed.py --part convergence
    SCINTEGRATE_SCVI_PYTHON=.venv-scvi/bin/python nice .venv/bin/python benchmarks/vae_speed.py --part speed

Writes ``benchmarks/results/vae_speed.json`` (each part replaces its own entry) and prints it.
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

OUT = HERE / "results" / "vae_speed.json"
GENES, TYPES, BATCHES = 2000, 8, 4


def simulate(n_cells: int, seed: int = 0):
    import scintegrate as si

    return si.datasets.simulate_counts(n_cells=n_cells, n_genes=GENES, n_types=TYPES, n_batches=BATCHES,
                                       batch_effect=0.2, seed=seed)


def _sparse_gb(adata) -> float:
    X = adata.X
    return (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 1e9


def eval_cells(n_cells: int, n_eval: int = 10_000):
    """The seeded subsample of cells whose latent space is scored (sorted indices)."""
    import numpy as np

    return np.sort(np.random.default_rng(0).choice(n_cells, size=min(n_eval, n_cells), replace=False))


def latent_scores(Z, labels, batches) -> dict:
    """k-means NMI / ARI (the simulated types) and iLISI of the latent space ``Z`` of cells with these labels."""
    from scintegrate.metrics import compute_metrics
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    pred = KMeans(TYPES, n_init=10, random_state=0).fit_predict(Z)
    return {"nmi": round(float(normalized_mutual_info_score(labels, pred)), 4),
            "ari": round(float(adjusted_rand_score(labels, pred)), 4),
            "ilisi": round(float(compute_metrics(Z, batches, labels, metrics=["ilisi"], seed=0)["ilisi"]), 4)}


def child_ours(n_cells: int, threads: int, max_epochs=None) -> dict:
    import torch

    torch.set_num_threads(threads)
    import torch._dynamo  # noqa: F401  (imported by the first optimiser: a one-time 2 s, not a cost per epoch)
    from scintegrate.models import SCVI
    from scintegrate.models._vae_base import default_max_epochs

    adata = simulate(n_cells)
    base = rss_gb()
    start = time.perf_counter()
    model = SCVI(seed=0, progress=False, max_epochs=max_epochs).fit(adata, batch_key="batch")
    wall = time.perf_counter() - start
    s = model.schedule_
    sub = eval_cells(n_cells)
    scores = {} if max_epochs is not None else latent_scores(
        model.embed()[sub], adata.obs["cell_type"].to_numpy()[sub], adata.obs["batch"].to_numpy()[sub])
    return {"cells": n_cells, "method": "scintegrate SCVI", "wall_s": round(wall, 1), **scores,
            "val_elbo": [round(v, 3) for v in model.history_.losses.get("val_elbo", [])],
            "training_s": model.timings_["training"], "epochs_used": s["epochs_used"], "max_epochs": s["max_epochs"],
            "s_per_epoch": round(model.timings_["training"] / s["epochs_used"], 3),
            "default_epochs": default_max_epochs(n_cells),
            "extrapolated_default_s": round(model.timings_["training"] / s["epochs_used"] * default_max_epochs(n_cells),
                                            1),
            "stopped_early": model.history_.stopped_early, "peak_rss_gb": round(rss_gb(), 3),
            "rss_before_fit_gb": round(base, 3), "sparse_input_gb": round(_sparse_gb(adata), 3),
            "nonzero_share": round(adata.X.nnz / (adata.n_obs * adata.n_vars), 4)}


def child_peer(n_cells: int, epochs: int, threads: int) -> dict:
    """scvi-tools' SCVI for ``epochs`` epochs on the integration features, in ``$SCINTEGRATE_SCVI_PYTHON``
    through the peer's child script, which times ``train`` alone (no start-up, no data preparation)."""
    import subprocess
    import tempfile

    import anndata as ad
    import numpy as np
    import pandas as pd
    from scintegrate.benchmark._prep import integration_data
    from scintegrate.models._vae_base import default_max_epochs

    python = os.environ.get("SCINTEGRATE_SCVI_PYTHON", "")
    if not os.path.isfile(python):
        raise SystemExit("set SCINTEGRATE_SCVI_PYTHON to the python of an environment with scvi-tools")
    adata = simulate(n_cells)
    work = integration_data(adata, batch_key="batch", n_features=2000)
    child = HERE.parent / "python" / "scintegrate" / "benchmark" / "_scvitools_child.py"
    with tempfile.TemporaryDirectory(prefix="vae_speed_") as tmp:
        tmp = Path(tmp)
        obs = pd.DataFrame({"batch": work.obs["batch"].astype(str).to_numpy()}, index=work.obs_names)
        ad.AnnData(X=work.layers["counts"], obs=obs).write_h5ad(tmp / "in.h5ad")
        (tmp / "params.json").write_text(json.dumps({"seed": 0, "accelerator": "cpu", "model": {},
                                                     "train": {"max_epochs": int(epochs)}}))
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        subprocess.run([python, str(child), str(tmp / "in.h5ad"), str(tmp / "params.json"), str(tmp / "out.npz")],
                       check=True, capture_output=True, env=env)
        with np.load(tmp / "out.npz") as out:
            seconds, peer_version = float(out["train_seconds"]), str(out["version"])
    default = default_max_epochs(n_cells)
    return {"cells": n_cells, "method": f"scvi-tools {peer_version} SCVI", "epochs_run": epochs,
            "train_s": round(seconds, 2), "s_per_epoch": round(seconds / epochs, 3), "default_epochs": default,
            "extrapolated_default_s": round(seconds / epochs * default, 1),
            "note": "train() seconds / epochs, times scvi-tools' default epochs (it does not stop early)"}


def child_convergence(n_cells: int, threads: int, every: int, n_eval: int, max_epochs=None) -> dict:
    import torch

    torch.set_num_threads(threads)
    import scintegrate.train as train_mod
    from scintegrate.models import SCVI

    adata = simulate(n_cells)
    sub = eval_cells(n_cells, n_eval)
    labels = adata.obs["cell_type"].to_numpy()[sub]
    batches = adata.obs["batch"].to_numpy()[sub]
    model = SCVI(seed=0, progress=False, patience=10 ** 6, max_epochs=max_epochs)
    trace, original = [], train_mod.train_loop
    state = {}

    def patched(module, make_batches, optimizer, **kw):
        start = time.perf_counter()

        def on_epoch_end(epoch, means):
            row = {"epoch": epoch + 1, "val_elbo": round(float(means["val_elbo"]), 4),
                   "elapsed_s": round(time.perf_counter() - start - state.get("eval_s", 0.0), 1)}
            if (epoch + 1) % every == 0 or epoch == 0:
                t = time.perf_counter()
                Z = model._encode(state["X"][sub], model.train_codes_[sub])
                module.train()
                row.update(latent_scores(Z, labels, batches))
                state["eval_s"] = state.get("eval_s", 0.0) + time.perf_counter() - t
            trace.append(row)
            print(json.dumps(row), flush=True)
        return original(module, make_batches, optimizer, on_epoch_end=on_epoch_end, **kw)

    original_values = SCVI._values

    def values(self, data, features, normalized=None):
        X = original_values(self, data, features, normalized)
        state["X"] = X
        return X

    SCVI._values = values
    train_mod.train_loop = patched
    try:
        model.fit(adata, batch_key="batch")
    finally:
        train_mod.train_loop, SCVI._values = original, original_values
    return {"cells": n_cells, "max_epochs": model.schedule_["max_epochs"], "trace": trace,
            "eval_cells": int(sub.size), "note": "elapsed_s excludes the time of the every-5-epoch evaluations"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=["speed", "convergence", "both"], default="both")
    ap.add_argument("--sizes", default="10000,50000,100000")
    ap.add_argument("--peer-epochs", type=int, default=2)
    ap.add_argument("--short-epochs", type=int, default=3,
                    help="speed: epochs of each run (its cost per epoch; the default schedule runs all epochs of "
                         "scvi-tools' rule, so the full time is this times the rule's epochs)")
    ap.add_argument("--full-largest", action="store_true",
                    help="speed: train the largest size at the defaults instead (scores its latent space too)")
    ap.add_argument("--convergence-cells", type=int, default=100_000)
    ap.add_argument("--every", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--max-epochs", type=int, default=None, help="convergence: epochs (default: scvi-tools' rule)")
    ap.add_argument("--reuse", help="convergence: the result JSON of a child run already made (e.g. to watch "
                                    "its progress: run it with --child convergence --result FILE first)")
    ap.add_argument("--child", choices=["ours", "peer", "convergence"])
    ap.add_argument("--cells", type=int)
    ap.add_argument("--result")
    args = ap.parse_args(argv)
    if args.child:
        if args.child == "ours":
            out = child_ours(args.cells, args.threads, args.max_epochs)
        elif args.child == "peer":
            out = child_peer(args.cells, args.peer_epochs, args.threads)
        else:
            out = child_convergence(args.cells, args.threads, args.every, 10_000, args.max_epochs)
        Path(args.result).write_text(json.dumps(out))
        return 0

    env_threads = {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    os.environ.update(env_threads)
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    base = [sys.executable, __file__, "--threads", str(args.threads)]
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "threads": args.threads, "cpus": os.cpu_count(),
            "torch": version("torch"), "scintegrate": version("scintegrate"), "genes": GENES, "types": TYPES,
            "batches": BATCHES, "command": " ".join(sys.argv)}
    if args.part in ("speed", "both"):
        rows = []
        sizes = [int(s) for s in args.sizes.split(",")]
        for n in sizes:  # --short-epochs (the cost per epoch); with --full-largest the largest at the defaults
            short = [] if (args.full_largest and n == max(sizes)) else ["--max-epochs", str(args.short_epochs)]
            rows.append(run_child(base + ["--child", "ours", "--cells", str(n), *short],
                                  {"cells": n, "method": "ours"}, args.timeout))
            print(json.dumps(rows[-1]), flush=True)
            rows.append(run_child(base + ["--child", "peer", "--cells", str(n), "--peer-epochs",
                                          str(args.peer_epochs)], {"cells": n, "method": "scvi-tools"},
                                  args.timeout))
            print(json.dumps(rows[-1]), flush=True)
        results["speed"] = {"meta": {**meta, "scvi_python": os.environ.get("SCINTEGRATE_SCVI_PYTHON", "")},
                            "rows": rows}
    if args.part in ("convergence", "both"):
        if args.reuse:
            out = json.loads(Path(args.reuse).read_text())
        else:
            extra = [] if args.max_epochs is None else ["--max-epochs", str(args.max_epochs)]
            out = run_child(base + ["--child", "convergence", "--cells", str(args.convergence_cells), "--every",
                                    str(args.every), *extra], {"cells": args.convergence_cells}, 3 * args.timeout)
        results["convergence"] = {"meta": meta, **out}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, OUT)
    print(json.dumps({k: v for k, v in results.items() if k != "convergence"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
