"""How many exact Manhattan neighbours Scanorama's approximate searches find, and what that changes downstream.

On the embedding Scanorama matches on (simulated counts, ``scintegrate.datasets.simulate_counts`` with 2,000
genes, 6 cell types and 10 batches, through our preprocessing, randomized SVD to 100 dimensions, cells scaled
to unit length), for a few pairs of batches: the share of each cell's exact 20 Manhattan neighbours in the other
batch that each search returns (recall@20), and its time on one thread:

- ours, ``knn_method="ivf"`` (torch k-means lists, ``sqrt(n)`` lists per batch) at several probed shares;
- pynndescent (our ``knn_method="nndescent"``, its default settings, ``n_neighbors=30``);
- Annoy with the scanorama package's settings (``n_trees=10``, ``search_k=-1``: what ``scanorama.integrate``
  uses by default), when ``annoy`` is installed.

Then the whole fit with ``knn_method="exact"`` and ``"ivf"``: MNN pairs kept, 15-NN cell-type accuracy and
batch entropy on 5,000 cells, and the correlation of the embeddings (first 10 dimensions).

Simulated counts are a hard case for inverted lists: within a cell type the embedding is noise spread over
all 100 dimensions, so a cell's exact neighbours are scattered over many lists.

Usage::

    python benchmarks/scanorama_recall.py                      # 50,000 cells, ~5 minutes on one thread
    python benchmarks/scanorama_recall.py --n-cells 20000 --out /tmp/recall.json

Writes ``benchmarks/results/scanorama_recall.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _bench import version  # noqa: E402

OUT = HERE / "results" / "scanorama_recall.json"
SHARES = (0.05, 0.1, 0.15, 0.25)
PAIRS = ((0, 1), (3, 7), (9, 4))


def _recall(found, exact) -> float:
    return float(np.mean([len(set(a) & set(b)) / exact.shape[1] for a, b in zip(found, exact)]))


def _annoy(R, Q, k):
    from annoy import AnnoyIndex

    index = AnnoyIndex(R.shape[1], metric="manhattan")
    for i, row in enumerate(R):
        index.add_item(i, row)
    index.build(10)
    return np.array([index.get_nns_by_vector(q, k, search_k=-1) for q in Q])


def searches(U, batch, k: int = 20) -> list:
    """Recall@k and seconds of each search on the pairs of batches in :data:`PAIRS`."""
    import torch

    from scintegrate.models import _scanorama_core as core

    rows = []
    for i, j in PAIRS:
        Q, R = torch.as_tensor(U[batch == i]), torch.as_tensor(U[batch == j])
        start = time.perf_counter()
        exact, _ = core._knn_into_exact(Q, R, k, "manhattan")
        rows.append({"pair": [i, j], "search": "exact", "seconds": time.perf_counter() - start, "recall": 1.0})
        start = time.perf_counter()
        lists = core._kmeans_lists(R, max(2, round(R.shape[0] ** 0.5)), seed=0)
        build = time.perf_counter() - start
        for share in SHARES:
            start = time.perf_counter()
            found, _ = core._knn_into_ivf(Q, R, k, lists, int(np.ceil(share * lists[0].shape[0])), "manhattan")
            rows.append({"pair": [i, j], "search": f"ivf, {share:.0%} of lists", "recall": _recall(found, exact),
                         "seconds": build + time.perf_counter() - start})
        from pynndescent import NNDescent

        NNDescent(R.numpy()[:500], metric="manhattan", n_neighbors=30, random_state=0).prepare()  # compile first
        start = time.perf_counter()
        index = NNDescent(R.numpy(), metric="manhattan", n_neighbors=30, random_state=0)
        index.prepare()
        found = index.query(Q.numpy(), k=k)[0]
        rows.append({"pair": [i, j], "search": "pynndescent", "recall": _recall(found, exact),
                     "seconds": time.perf_counter() - start})
        try:
            start = time.perf_counter()
            found = _annoy(R.numpy(), Q.numpy(), k)
            rows.append({"pair": [i, j], "search": "annoy (package settings)", "recall": _recall(found, exact),
                         "seconds": time.perf_counter() - start})
        except ImportError:
            pass
    return rows


def fits(adata, seed: int = 0) -> list:
    """The whole fit with exact and inverted-list matching: matches, kNN accuracy, mixing, correlation."""
    from sklearn.neighbors import NearestNeighbors

    from scintegrate.models.scanorama import Scanorama

    labels = adata.obs["cell_type"].astype(str).to_numpy()
    batches = adata.obs["batch"].astype(str).to_numpy()
    sub = np.random.default_rng(seed).choice(adata.n_obs, min(5000, adata.n_obs), replace=False)
    rows, first = [], None
    for method in ("exact", "ivf"):
        model = Scanorama(seed=seed, knn_method=method, progress=False)
        start = time.perf_counter()
        model.fit(adata, batch_key="batch")
        seconds = time.perf_counter() - start
        Z = model.embed()
        idx = NearestNeighbors(n_neighbors=16).fit(Z).kneighbors(Z[sub], return_distance=False)[:, 1:]
        entropy = []
        for row in batches[idx]:
            p = np.unique(row, return_counts=True)[1] / row.size
            entropy.append(float(-(p * np.log(p)).sum() / np.log(len(np.unique(batches)))))
        first = Z if first is None else first
        rows.append({"knn_method": method, "seconds": seconds, "timings": model.timings_,
                     "mnn_pairs": model.n_matches_, "knn_accuracy": float(np.mean(labels[idx] == labels[sub][:, None])),
                     "batch_entropy": float(np.mean(entropy)),
                     "r_with_exact": float(np.mean([np.corrcoef(first[:, d], Z[:, d])[0, 1] for d in range(10)]))})
    return rows


def markdown(result) -> str:
    lines = [f"# Scanorama's neighbour searches: recall of the exact Manhattan neighbours ({result['n_cells']:,} "
             f"simulated cells, 10 batches, {result['date']})", "",
             "| search | recall@20 (mean over pairs) | seconds per pair (one thread) |", "|---|---|---|"]
    names = list(dict.fromkeys(r["search"] for r in result["searches"]))
    for name in names:
        rs = [r for r in result["searches"] if r["search"] == name]
        lines.append(f"| {name} | {np.mean([r['recall'] for r in rs]):.3f} | {np.mean([r['seconds'] for r in rs]):.2f} |")
    lines += ["", "| fit, knn_method | seconds | matching s | MNN pairs | 15-NN type accuracy | batch entropy | "
              "r with exact |", "|---|---|---|---|---|---|---|"]
    for r in result["fits"]:
        lines.append(f"| {r['knn_method']} | {r['seconds']:.1f} | {r['timings'].get('matching', float('nan')):.1f} | "
                     f"{r['mnn_pairs']:,} | {r['knn_accuracy']:.4f} | {r['batch_entropy']:.4f} | "
                     f"{r['r_with_exact']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-cells", type=int, default=50_000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    import torch

    import scintegrate as si
    from scintegrate import pp
    from scintegrate.models import _scanorama_core as core
    from scintegrate.models._exact_knn import l2_normalize_rows

    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    adata = si.datasets.simulate_counts(n_cells=args.n_cells, n_genes=2000, n_batches=10, n_types=6, seed=0)
    work = adata.copy()  # log-normalised in place, as Scanorama's input step
    features, _ = pp.normalize_and_select(work, batch_key="batch", n_features=2000, counts=True)
    E = core.randomized_pca(l2_normalize_rows(work[:, list(features)].X), 100, seed=0).numpy()
    U = E / np.linalg.norm(E, axis=1, keepdims=True)
    names = sorted(adata.obs["batch"].astype(str).unique())
    batch = np.searchsorted(names, adata.obs["batch"].astype(str).to_numpy())
    result = {"n_cells": args.n_cells, "date": _dt.date.today().isoformat(), "threads": args.threads,
              "versions": {p: version(p) for p in ("torch", "pynndescent", "annoy", "scanorama")},
              "fits": fits(adata),  # first: run after pynndescent and Annoy, the inverted-list fit was 7x slower (cause not found)
              "searches": searches(U, batch)}
    out = Path(args.out)
    out.write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
