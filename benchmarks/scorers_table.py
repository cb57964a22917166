"""Every method scored twice in one run: scintegrate's metrics beside scib-metrics' Benchmarker (issue 14).

On each shared real counts set (default: mixology_3cl, pbmc_10x_chemistries, pancreas_baron_donors,
pbmc_kang_ctrl_donors) this runs ``scintegrate.benchmark.run_benchmark(..., scorer="both")`` with our
methods (default: pca, bermuda, deepbid) and the installed peers (Harmony, Scanorama, ComBat, scVI where
installed) in the same process, so every method of a set sees the same data, seed and unintegrated PCA,
and both scorers score the same embeddings. Two definitions are reported side by side, and they are not
the same number:

- ours (``scintegrate.metrics.summary``): ``overall = 0.4 * batch_score + 0.6 * bio_score``; NMI/ARI of
  the best clustering of a Leiden resolution sweep; bio adds kNN accuracy, batch adds EBM;
- scib-metrics (``scintegrate.benchmark.scib_scorer``): ``Benchmarker`` with its default metrics, k-means
  NMI/ARI, its own neighbour search, and ``get_results(min_max_scale=False)`` (unscaled ``Total = 0.4 *
  Batch correction + 0.6 * Bio conservation``, as papers report it).

Each (data set, seed) runs in a child process (this script with a hidden ``--child`` flag), so the peak
RSS reported is that run's own, and a crash or error in one set is recorded with its message while the
others go on. Each seed is a separate run: all rows are kept, and the Markdown shows the mean over
seeds. Torch runs on ``--threads`` threads (1 by default: the 2-core machine is shared, and OpenMP
spin-waiting makes two threads slower than one there); the BLAS / OpenMP pools of the child get the same.
A run replaces the previous tables in ``--out-dir`` (they are not merged), so run every set at once.

Usage::

    nice .venv/bin/python benchmarks/scorers_table.py                        # every set, method and peer
    nice .venv/bin/python benchmarks/scorers_table.py --seeds 0,1,2
    nice .venv/bin/python benchmarks/scorers_table.py --methods bermuda --params '{"bermuda": {"code_norm": "none"}}'
    nice .venv/bin/python benchmarks/scorers_table.py --datasets mixology_3cl --methods pca --peers none \\
        --out-dir /tmp/scorers_check                                         # a quick look (~2 minutes)

Writes to ``--out-dir`` (default ``benchmarks/results``), each file whole (temporary file + rename):
``scorers_table.csv`` (long format: one row per data set, seed and method; our metrics under our names,
scib-metrics' under its own names, integration seconds, peak RSS; a failed set is one row with its
``error``), ``scorers_table.json`` (the same rows, the mean over seeds, and the run's metadata: package
versions, date, threads, cores, command line) and ``scorers_table.md`` (one table per data set:
"ours: overall", "scib-metrics: Total", "seconds"), and prints the Markdown.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
STEM = "scorers_table"
DATASETS = ("mixology_3cl", "pbmc_10x_chemistries", "pancreas_baron_donors", "pbmc_kang_ctrl_donors")
METHODS = ("pca", "bermuda", "deepbid")
#: our columns kept in the long table (all of ``compute_metrics``' scIB-style metrics and the aggregates)
OURS = ["batch_score", "bio_score", "overall", "nmi", "ari", "graph_connectivity", "asw_label", "asw_batch",
        "ilisi", "clisi", "isolated_label_f1", "isolated_label_asw", "pcr_comparison", "kbet", "ebm",
        "knn_accuracy"]
#: scib-metrics' columns, under its own names (``get_results`` of its default metrics)
#: (scib-metrics 0.5.10 reports ``BRAS`` where older versions had ``Silhouette batch``; absent ones are left out)
SCIB = ["Isolated labels", "KMeans NMI", "KMeans ARI", "Silhouette label", "cLISI", "Silhouette batch", "BRAS",
        "iLISI", "KBET", "Graph connectivity", "PCR comparison", "Batch correction", "Bio conservation", "Total"]
PACKAGES = ("scintegrate", "torch", "numpy", "scib-metrics", "harmonypy", "scanorama", "jax", "anndata", "scanpy",
            "scvi-tools", "pandas", "scikit-learn")
DEFINITIONS = [
    "- **ours: overall** — scintegrate's definition (`scintegrate.metrics.summary`): "
    "0.4 · batch + 0.6 · bio; NMI/ARI of the best clustering of a Leiden resolution sweep; bio includes "
    "kNN accuracy, batch includes EBM.",
    "- **scib-metrics: Total** — scib-metrics' `Benchmarker` with its default metrics "
    "(`BioConservation()`, `BatchCorrection()`), k-means NMI/ARI, unscaled `get_results(min_max_scale=False)`: "
    "0.4 · Batch correction + 0.6 · Bio conservation.",
    "- **seconds** — integration time of the method (fit + embedding; scoring not included).",
    "",
    "The two totals use different metrics, so their values differ; compare methods within a column.",
]


# ---------------------------------------------------------------------------------------------------- child
def child(name: str, seed: int, args, result_path: Path) -> int:
    """Load one data set and run ``run_benchmark(scorer="both")``; write the rows (or the error) as JSON."""
    t_start = time.perf_counter()
    out = {"dataset": name, "seed": seed}
    try:
        import warnings

        import pandas as pd

        from scintegrate.benchmark import run_benchmark
        from scintegrate.datasets import load_shared

        t0 = time.perf_counter()
        adata = load_shared(name)
        out.update(load_seconds=round(time.perf_counter() - t0, 2), n_cells=int(adata.n_obs),
                   n_genes=int(adata.n_vars), n_batches=int(adata.obs["batch"].nunique()),
                   n_labels=int(adata.obs["cell_type"].nunique()))
        if "note" in adata.uns:  # the "not counts" sets; run anyway, but say so
            out["data_note"] = str(adata.uns["note"])[:300]
        with tempfile.TemporaryDirectory(prefix="scorers_table_") as tmp, \
                warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            df = run_benchmark(adata, methods=args.methods, peers=args.peers, scorer="both", out_dir=tmp,
                               seed=seed, progress=False, umap=False, method_params=json.loads(args.params))
        scib = pd.DataFrame.from_dict(df.attrs["scib_metrics"], orient="tight")
        rows = []
        for method in df.index:
            row = {"method": str(method), "kind": str(df.loc[method, "kind"]),
                   "embedding": str(df.loc[method, "embedding"]), "seconds": float(df.loc[method, "seconds"])}
            row.update({c: _num(df.loc[method, c]) for c in OURS if c in df.columns})
            if method in scib.index:
                row.update({c: _num(scib.loc[method, c]) for c in scib.columns
                            if c not in ("kind", "embedding", "seconds", "scorer")})
            rows.append(row)
        out["rows"] = rows
        out["scib_scorer"] = str(scib["scorer"].iloc[0]) if "scorer" in scib.columns and len(scib) else None
        out["warnings"] = sorted({f"{w.category.__name__}: {str(w.message)[:200]}" for w in caught})[:40]
        status = 0
    except BaseException as err:  # noqa: BLE001 — recorded, the parent goes on with the next set
        out["error"] = f"{type(err).__name__}: {err}"[:2000]
        out["traceback"] = traceback.format_exc()[-4000:]
        status = 1
    out["run_seconds"] = round(time.perf_counter() - t_start, 2)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    below = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out["peak_rss_gb"] = round(max(own, below) / 1024 ** 2, 3)  # Linux: KiB
    result_path.write_text(json.dumps(_clean(out)))
    return status


def _num(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _clean(obj):
    """JSON-safe: NaN / inf to null, numpy scalars to Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# --------------------------------------------------------------------------------------------------- parent
def run_one(name: str, seed: int, args, data_dir: Path) -> dict:
    """Run one (data set, seed) in a child process; its record, with an ``error`` if it failed."""
    threads = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
               SCINTEGRATE_SHARED_DATA=str(data_dir))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--datasets", name, "--seeds", str(seed),
           "--methods", ",".join(args.methods), "--peers", ",".join(args.peers) or "none",
           "--threads", threads, "--params", args.params]
    with tempfile.TemporaryDirectory(prefix="scorers_table_") as tmp:
        result_path, log_path = Path(tmp) / "result.json", Path(tmp) / "log.txt"
        t0 = time.perf_counter()
        with open(log_path, "w") as log:
            proc = subprocess.Popen(cmd + ["--result", str(result_path)], stdout=log, stderr=subprocess.STDOUT,
                                    env=env, cwd=str(ROOT))
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, even when it crashed
            proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        log_tail = log_path.read_text(errors="replace")[-3000:]
        if result_path.exists():
            record = json.loads(result_path.read_text())
        else:  # killed (memory, signal) before it could write
            last = [line for line in log_tail.splitlines() if line.strip()]
            record = {"dataset": name, "seed": seed,
                      "error": f"child exited with status {proc.returncode}" + (f": {last[-1][:500]}" if last else "")}
    record.update(returncode=proc.returncode, child_wall_seconds=round(wall, 2),
                  peak_rss_gb=round(usage.ru_maxrss / 1024 ** 2, 3))
    if record.get("error"):
        record["log_tail"] = log_tail
    return record


def long_table(records):
    """One row per (data set, seed, method); a failed set is one row with ``error`` set."""
    import pandas as pd

    per_run = ["n_cells", "n_genes", "n_batches", "run_seconds", "peak_rss_gb", "error"]
    rows = []
    for rec in records:
        base = {"dataset": rec["dataset"], "seed": rec["seed"]}
        extra = {k: rec.get(k) for k in per_run}
        if rec.get("error") or not rec.get("rows"):
            rows.append({**base, "method": None, **extra, "error": rec.get("error") or "no rows"})
            continue
        for row in rec["rows"]:
            rows.append({**base, **row, **extra})
    df = pd.DataFrame(rows)
    for col in ("n_cells", "n_genes", "n_batches"):
        if col in df:
            df[col] = df[col].astype("Int64")
    front = ["dataset", "seed", "method", "kind", "embedding", "seconds"] + OURS + SCIB
    front = [c for c in front if c in df.columns]
    return df[front + [c for c in df.columns if c not in front]]


def seed_means(df):
    """Mean over seeds per (data set, method) of the numeric columns, with the number of seeds."""
    ok = df[df["method"].notna()]
    if ok.empty:
        return ok
    numeric = [c for c in ok.columns if c not in ("dataset", "seed", "method", "kind", "embedding", "error",
                                                  "n_cells", "n_genes", "n_batches")
               and ok[c].dtype.kind in "fiu"]
    grouped = ok.groupby(["dataset", "method"], sort=False)
    mean = grouped[numeric].mean()
    mean.insert(0, "n_seeds", grouped["seed"].nunique())
    mean.insert(0, "kind", grouped["kind"].first())
    return mean.reset_index()


def _fmt(value, digits=3):
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}f}"


def markdown(df, means, records, meta) -> str:
    lines = ["# scintegrate's metrics beside scib-metrics' Benchmarker (generated by benchmarks/scorers_table.py)",
             "", *DEFINITIONS, "",
             f"Seeds: {', '.join(map(str, meta['seeds']))} (each a separate run; the tables show the mean over "
             f"seeds). {meta['date']}, torch threads {meta['threads']}, {meta['cores']} cores; "
             f"scintegrate {meta['versions'].get('scintegrate')}, scib-metrics {meta['versions'].get('scib-metrics')}.",
             ""]
    for name in dict.fromkeys(r["dataset"] for r in records):
        runs = [r for r in records if r["dataset"] == name]
        first = next((r for r in runs if r.get("n_cells")), {})
        shape = (f" — {first['n_cells']} cells × {first['n_genes']} genes, {first['n_batches']} batches"
                 if first else "")
        lines += [f"## {name}{shape}", ""]
        for r in runs:
            if r.get("error"):
                lines += [f"**seed {r['seed']} failed**: `{r['error'][:300]}`", ""]
        sub = means[means["dataset"] == name] if len(means) else means
        if len(sub):
            lines += ["| method | kind | ours: overall | scib-metrics: Total | seconds |", "|---|---|---|---|---|"]
            for _, row in sub.iterrows():
                lines.append(f"| {row['method']} | {row['kind']} | {_fmt(row.get('overall'))} | "
                             f"{_fmt(row.get('Total'))} | {_fmt(row.get('seconds'), 1)} |")
            lines.append("")
            best = {col: sub.loc[sub[col].idxmax(), "method"] for col in ("overall", "Total")
                    if col in sub and sub[col].notna().any()}
            ok = [r for r in runs if not r.get("error")]
            rss = max((r.get("peak_rss_gb") or 0) for r in ok) if ok else None
            lines += [f"Best by ours: {best.get('overall', '—')}; best by scib-metrics: {best.get('Total', '—')}. "
                      f"Run time per seed (all methods, both scorers): "
                      f"{', '.join(_fmt(r.get('run_seconds'), 0) + ' s' for r in ok)}; peak RSS {_fmt(rss, 2)} GB.",
                      ""]
    return "\n".join(lines) + "\n"


def metadata(args, data_dir: Path) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    git = {}
    try:
        git["commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                       timeout=20).stdout.strip() or None
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
                               timeout=20).stdout.strip()
        git["uncommitted_changes"] = bool(dirty)
    except (OSError, subprocess.SubprocessError):
        pass
    return {"script": "benchmarks/scorers_table.py",
            "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": shlex.join([sys.executable] + sys.argv), "datasets": args.datasets, "methods": args.methods,
            "peers": args.peers, "params": json.loads(args.params), "seeds": args.seeds, "threads": args.threads,
            "cores": os.cpu_count(),
            "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "load_avg_before": list(os.getloadavg()), "machine": platform.platform(),
            "python": platform.python_version(), "data_dir": str(data_dir), "versions": versions, "git": git}


def _write(path: Path, text: str) -> None:
    from scintegrate._files import atomic_write

    with atomic_write(path) as tmp:
        tmp.write_text(text)


def _list(text: str) -> list:
    return [x.strip() for x in str(text).split(",") if x.strip()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma list of shared data sets")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"),
                    help="folder of the shared .h5ad files (default: ../shared/data from the repository root)")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma list of scintegrate methods")
    ap.add_argument("--peers", default=None,
                    help="comma list of peers, or 'none' (default: every installed peer)")
    ap.add_argument("--seeds", default="0", help="comma list of seeds; each is a separate run")
    ap.add_argument("--params", default="{}",
                    help='JSON of non-default parameters per method, e.g. \'{"bermuda": {"code_norm": "none"}}\'')
    ap.add_argument("--threads", type=int, default=1,
                    help="torch / BLAS threads (1 is faster on a shared, oversubscribed 2-core box)")
    ap.add_argument("--out-dir", default=str(RESULTS))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from scintegrate import registry

    args.datasets = _list(args.datasets)
    args.methods = [m.lower() for m in _list(args.methods)]
    args.seeds = [int(s) for s in _list(args.seeds)]
    if args.peers is None:
        args.peers = registry.peer_names(installed=True)
    elif args.peers.strip().lower() in ("none", ""):
        args.peers = []
    else:
        args.peers = [p.lower() for p in _list(args.peers)]
    if args.child:
        return child(args.datasets[0], args.seeds[0], args, Path(args.result))

    bad = [m for m in args.methods if m not in registry.method_names()]
    bad += [p for p in args.peers if p not in registry.peer_names()]
    if bad or not (args.methods or args.peers) or not args.datasets or not args.seeds:
        ap.error(f"nothing to run, or unknown method / peer {bad}; methods: {registry.method_names()}, "
                 f"peers: {registry.peer_names()}")
    missing = [p for p in args.peers if p not in registry.peer_names(installed=True)]
    if missing:
        print(f"peers not installed, skipped: {missing}", flush=True)
        args.peers = [p for p in args.peers if p not in missing]
    data_dir = Path(args.data_dir).expanduser()
    data_dir = (data_dir if data_dir.is_absolute() else ROOT / data_dir).resolve()
    from scintegrate._files import check_output_dir

    out_dir = check_output_dir(Path(args.out_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = metadata(args, data_dir)

    records = []
    for name in args.datasets:
        for seed in args.seeds:
            print(f"{name} seed {seed}: methods {args.methods}, peers {args.peers} ...", flush=True)
            rec = run_one(name, seed, args, data_dir)
            records.append(rec)
            if rec.get("error"):
                print(f"  FAILED: {rec['error'][:300]}", flush=True)
            else:
                for row in rec["rows"]:
                    print(f"  {row['method']:12s} ours {_fmt(row.get('overall'))}  scib {_fmt(row.get('Total'))}  "
                          f"{_fmt(row['seconds'], 1)} s", flush=True)
                print(f"  run {rec['run_seconds']:.0f} s, peak RSS {rec['peak_rss_gb']:.2f} GB", flush=True)
    meta["load_avg_after"] = list(os.getloadavg())
    scib_scorer = next((r.get("scib_scorer") for r in records if r.get("scib_scorer")), None)
    meta["scib_scorer"] = scib_scorer

    df = long_table(records)
    means = seed_means(df)
    _write(out_dir / f"{STEM}.csv", df.to_csv(index=False))
    runs = [{k: v for k, v in r.items() if k != "rows"} for r in records]
    summary = {"metadata": meta, "definitions": DEFINITIONS[:3], "runs": runs,
               "rows": df.astype(object).where(df.notna(), None).to_dict(orient="records"),
               "mean_over_seeds": means.astype(object).where(means.notna(), None).to_dict(orient="records")}
    _write(out_dir / f"{STEM}.json", json.dumps(_clean(summary), indent=2, default=str))
    md = markdown(df, means, records, meta)
    _write(out_dir / f"{STEM}.md", md)
    print(md)
    print(f"wrote {out_dir / STEM}.csv, .json, .md", flush=True)
    failed = sum(bool(r.get("error")) for r in records)
    if failed:
        print(f"{failed} of {len(records)} runs failed (recorded in the tables)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
