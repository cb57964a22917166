"""``run_benchmark``: integrate with our methods and the installed peers, score all, write a report.

Writes ``out_dir/metrics.csv`` (one row per method), ``out_dir/overview.png`` and
``out_dir/umap.png``; the embeddings are added to ``adata.obsm``. ``metrics.csv`` holds scintegrate's
definitions (:mod:`scintegrate.metrics.summary`: ``overall`` = 0.4 batch + 0.6 bio, NMI/ARI of a Leiden
resolution sweep); ``scorer="scib-metrics"`` or ``"both"`` writes ``metrics_scib.csv``, the unscaled
totals of scib-metrics' ``Benchmarker`` (:mod:`.scib_scorer`), whose ``Total`` is a different number.

Example
-------
>>> from pathlib import Path
>>> import scintegrate as si
>>> adata = si.datasets.simulate_counts(n_cells=300, n_genes=200, seed=0)
>>> df = si.benchmark.run_benchmark(adata, methods=["pca"], out_dir="/tmp/bench", progress=False)  # doctest: +SKIP
>>> sorted(p.name for p in Path("/tmp/bench").iterdir())  # doctest: +SKIP
['metrics.csv', 'overview.png', 'umap.png']
"""

from __future__ import annotations

import time
import warnings
from typing import Dict, Optional, Sequence, Union

import pandas as pd

from .. import __version__, api, registry
from .plots import plot_overview, plot_umap_grid
from .scib_scorer import SCIB_FILE, check_scorer, scib_benchmark
from .table import benchmark, check_inputs, ensure_unintegrated


def _resolve_methods(methods) -> list:
    if methods is None:
        return api.available_methods()
    methods = [methods] if isinstance(methods, str) else list(methods)
    known = registry.method_names()
    unknown = [m for m in methods if str(m).lower() not in known]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; available: {sorted(known)}")
    return [str(m).lower() for m in methods]


def _resolve_peers(peers) -> list:
    """Requested peers that are installed; the others are skipped with a warning."""
    if peers is None or peers is False:
        return []
    if peers is True or peers == "all":
        return registry.peer_names(installed=True)
    peers = [peers] if isinstance(peers, str) else list(peers)
    known = registry.peer_names()
    unknown = [p for p in peers if str(p).lower() not in known]
    if unknown:
        raise ValueError(f"unknown peer method(s) {unknown}; available: {sorted(known)}")
    installed = set(registry.peer_names(installed=True))
    for p in peers:
        if str(p).lower() not in installed:
            warnings.warn(f"peer {p!r} skipped: its package is not installed", UserWarning, stacklevel=3)
    return [str(p).lower() for p in peers if str(p).lower() in installed]


def _run(adata, names, *, batch_key, seed, device, progress, params) -> Dict[str, tuple]:
    """Fit every named method or peer and write its result; a peer that fails on this data is skipped."""
    runs = {}
    for name in names:
        spec = registry.get_spec(name)
        start = time.perf_counter()
        try:
            model = api.build_model(name, seed=seed, device=device, progress=progress, **params.get(name, {}))
            result = model.fit(adata, batch_key=batch_key).to_result()
        except (ImportError, ValueError) as err:  # broken install, or data the peer cannot take
            if spec.kind != "peer":
                raise
            warnings.warn(f"peer {name!r} skipped: {err}", UserWarning, stacklevel=3)
            continue
        api.write_result(adata, result, spec=spec, key=spec.obsm_key,
                         record={"method": name, "batch_key": batch_key, "seed": int(seed), "device": str(device),
                                 "version": __version__, "params": api._plain(params.get(name, {}))})
        kind = "scintegrate" if spec.kind == "method" else spec.kind
        runs[name] = (spec.obsm_key, kind, time.perf_counter() - start)
    return runs


def _with_baseline(adata, runs: dict, unintegrated: Optional[str], *, batch_key: str, seed: int) -> dict:
    """Make ``obsm[unintegrated]`` exist; add an ``"unintegrated"`` row unless the baseline (the same thing) ran."""
    if unintegrated is None:
        return runs
    baseline = [name for name, (_, kind, _) in runs.items() if kind == "baseline"]
    if baseline:
        if unintegrated not in adata.obsm:
            adata.obsm[unintegrated] = adata.obsm[runs[baseline[0]][0]].copy()
        return runs
    start = time.perf_counter()
    ensure_unintegrated(adata, unintegrated, batch_key=batch_key, seed=seed)
    return {"unintegrated": (unintegrated, "baseline", time.perf_counter() - start), **runs}


def run_benchmark(
    adata,
    *,
    batch_key: str = "batch",
    label_key: str = "cell_type",
    methods: Optional[Sequence[str]] = None,
    peers: Union[Sequence[str], str, bool, None] = None,
    out_dir="scintegrate_benchmark",
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    unintegrated: Optional[str] = "X_pca",
    metrics=None,
    method_params: Optional[Dict[str, dict]] = None,
    umap: bool = True,
    scorer: str = "scintegrate",
) -> pd.DataFrame:
    """Integrate ``adata`` with each method and peer, score everything, write the report files.

    ``methods`` are registered method names (:mod:`scintegrate.registry`; default: all installed);
    ``peers`` are registered peer names, ``"all"`` for every installed one (default: none); peers that are
    not installed are skipped with a warning. The unintegrated PCA (``obsm[unintegrated]``, computed if
    missing) is the reference of ``pcr_comparison`` and is scored as row ``"unintegrated"``, unless the
    registry's baseline ran (it is that same PCA, and fills ``obsm[unintegrated]`` when missing).
    ``method_params`` maps a name to extra keyword arguments (semi-supervised methods, whose spec names a
    ``labels_param``, are given ``label_key`` there unless set: they see every label); ``metrics``
    selects metrics as in :func:`benchmark`. Returns the table written to ``metrics.csv``:
    index = method, columns ``kind``, ``embedding``, ``seconds`` (integration time) and the
    metrics. ``umap=False`` skips ``umap.png``.

    ``scorer`` chooses who computes the numbers: ``"scintegrate"`` (default; ``metrics.csv``, our
    definitions), ``"scib-metrics"`` (``metrics_scib.csv`` only, no ``overview.png``: scib-metrics'
    ``Benchmarker`` with its default metrics, ``get_results(min_max_scale=False)``; needs
    ``pip install scib-metrics``) or ``"both"``. The scib table has columns ``kind``, ``embedding``,
    ``seconds``, ``scorer`` (the scib-metrics version), scib-metrics' own metric names, ``Batch correction``,
    ``Bio conservation`` and ``Total``; it is returned for ``"scib-metrics"``, and for ``"both"`` the
    returned table is ours with the scib table in ``df.attrs["scib_metrics"]`` as a ``"tight"`` dict:
    ``pd.DataFrame.from_dict(df.attrs["scib_metrics"], orient="tight")``.

    >>> df = run_benchmark(adata, methods=["pca"], scorer="both", out_dir="bench")  # doctest: +SKIP
    >>> scib = pd.DataFrame.from_dict(df.attrs["scib_metrics"], orient="tight")  # doctest: +SKIP
    >>> df.loc["pca", "overall"], scib.loc["pca", "Total"]  # doctest: +SKIP
    """
    from .._files import atomic_write, check_output_dir

    check_inputs(adata, batch_key, label_key)  # fail before any training
    scorer = check_scorer(scorer)  # an uninstalled scib-metrics, too
    methods, peers = _resolve_methods(methods), _resolve_peers(peers)
    if not methods and not peers:
        raise ValueError("nothing to benchmark: no method and no installed peer was selected")
    params = {k.lower(): dict(v) for k, v in (method_params or {}).items()}
    for name in methods + peers:  # semi-supervised methods learn from the label column the benchmark scores with
        spec = registry.get_spec(name)
        if spec.labels_param:
            params.setdefault(name, {}).setdefault(spec.labels_param, label_key)
    for name in methods + peers:  # parameter names and types, seed and device: before any training
        api.build_model(name, seed=seed, device=device, progress=False, **params.get(name, {}))
    out_dir = check_output_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = _run(adata, methods + peers, batch_key=batch_key, seed=seed, device=device, progress=progress,
                params=params)
    runs = _with_baseline(adata, runs, unintegrated, batch_key=batch_key, seed=seed)
    index = pd.Index(list(runs), name="method")
    info = pd.DataFrame({"kind": [kind for _, kind, _ in runs.values()],
                         "embedding": [key for key, _, _ in runs.values()],
                         "seconds": [round(sec, 2) for _, _, sec in runs.values()]}, index=index)
    df = scib = None
    if scorer in ("scintegrate", "both"):
        df = benchmark(adata, batch_key=batch_key, label_key=label_key,
                       embeddings=[key for key, _, _ in runs.values()], unintegrated=unintegrated, metrics=metrics,
                       seed=seed, device=device, progress=progress)
        df.index = index
        df = pd.concat([info, df], axis=1)
        with atomic_write(out_dir / "metrics.csv") as tmp:
            df.to_csv(tmp)
        plot_overview(df, out_dir / "overview.png", title=f"{adata.n_obs} cells, batch = {batch_key!r}")
    if scorer in ("scib-metrics", "both"):
        scib = scib_benchmark(adata, batch_key=batch_key, label_key=label_key,
                              embeddings={name: key for name, (key, _, _) in runs.items()},
                              unintegrated=unintegrated, progress=progress)
        scib = pd.concat([info[["kind"]], scib[["embedding"]], info[["seconds"]], scib.drop(columns="embedding")],
                         axis=1)
        with atomic_write(out_dir / SCIB_FILE) as tmp:
            scib.to_csv(tmp)
    if umap:
        plot_umap_grid(adata, {name: key for name, (key, _, _) in runs.items()}, batch_key=batch_key,
                       label_key=label_key, path=out_dir / "umap.png", seed=seed)
    if df is None:
        return scib
    df.attrs["scorer"] = "scintegrate"
    if scib is not None:
        df.attrs["scib_metrics"] = scib.to_dict(orient="tight")
    return df
