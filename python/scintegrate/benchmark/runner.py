"""``run_benchmark``: integrate with our methods and the installed peers, score all, write a report.

Writes ``out_dir/metrics.csv`` (one row per method), ``out_dir/overview.png`` and
``out_dir/umap.png``; the embeddings are added to ``adata.obsm``.

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
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import pandas as pd

from .. import api
from .peers import PEERS, available_peers, run_peer
from .plots import plot_overview, plot_umap_grid
from .table import benchmark, check_inputs, ensure_unintegrated


def _resolve_methods(methods) -> list:
    if methods is None:
        return api.available_methods()
    methods = [methods] if isinstance(methods, str) else list(methods)
    unknown = [m for m in methods if str(m).lower() not in api.METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; available: {sorted(api.METHODS)}")
    return [str(m).lower() for m in methods]


def _resolve_peers(peers) -> list:
    """Requested peers that are installed; the others are skipped with a warning."""
    if peers is None or peers is False:
        return []
    if peers is True or peers == "all":
        return available_peers()
    peers = [peers] if isinstance(peers, str) else list(peers)
    unknown = [p for p in peers if str(p).lower() not in PEERS]
    if unknown:
        raise ValueError(f"unknown peer method(s) {unknown}; available: {sorted(PEERS)}")
    installed = set(available_peers())
    for p in peers:
        if str(p).lower() not in installed:
            warnings.warn(f"peer {p!r} skipped: its package is not installed", UserWarning, stacklevel=3)
    return [str(p).lower() for p in peers if str(p).lower() in installed]


def _run_methods(adata, methods, *, batch_key, seed, device, progress, params) -> Dict[str, tuple]:
    runs = {}
    for method in methods:
        key = api.DEFAULT_KEYS.get(method, f"X_{method}")
        start = time.perf_counter()
        api.integrate(adata, method=method, batch_key=batch_key, key_added=key, seed=seed, device=device,
                      progress=progress, **params.get(method, {}))
        runs[method] = (key, "baseline" if method == "pca" else "scintegrate", time.perf_counter() - start)
    return runs


def _run_peers(adata, peers, *, batch_key, seed, device, params) -> Dict[str, tuple]:
    runs = {}
    for peer in peers:
        extra = dict(params.get(peer, {}))
        if peer == "scvi":
            extra.setdefault("device", device)
        start = time.perf_counter()
        try:
            adata.obsm[f"X_{peer}"] = run_peer(adata, peer, batch_key=batch_key, seed=seed, **extra)
        except (ImportError, ValueError) as err:  # broken install, or data the peer cannot take
            warnings.warn(f"peer {peer!r} skipped: {err}", UserWarning, stacklevel=3)
            continue
        runs[peer] = (f"X_{peer}", "peer", time.perf_counter() - start)
    return runs


def _with_baseline(adata, runs: dict, unintegrated: Optional[str], *, batch_key: str, seed: int) -> dict:
    """Make ``obsm[unintegrated]`` exist; add an ``"unintegrated"`` row unless ``"pca"`` (the same thing) ran."""
    if unintegrated is None:
        return runs
    if "pca" in runs:
        if unintegrated not in adata.obsm:
            adata.obsm[unintegrated] = adata.obsm[runs["pca"][0]].copy()
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
) -> pd.DataFrame:
    """Integrate ``adata`` with each method and peer, score everything, write the report files.

    ``methods`` are names from :data:`scintegrate.api.METHODS` (default: all importable);
    ``peers`` are names from :data:`scintegrate.benchmark.peers.PEERS`, ``"all"`` for every
    installed one (default: none); peers that are not installed are skipped with a warning.
    The unintegrated PCA (``obsm[unintegrated]``, computed if missing) is the reference of
    ``pcr_comparison`` and is scored as row ``"unintegrated"``, unless the ``"pca"`` method ran
    (it is that same baseline, and fills ``obsm[unintegrated]`` when missing). ``method_params`` maps a name to extra keyword arguments; ``metrics``
    selects metrics as in :func:`benchmark`. Returns the table written to ``metrics.csv``:
    index = method, columns ``kind``, ``embedding``, ``seconds`` (integration time) and the
    metrics. ``umap=False`` skips ``umap.png``.
    """
    check_inputs(adata, batch_key, label_key)  # fail before any training
    methods, peers = _resolve_methods(methods), _resolve_peers(peers)
    if not methods and not peers:
        raise ValueError("nothing to benchmark: no method and no installed peer was selected")
    params = {k.lower(): v for k, v in (method_params or {}).items()}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = _run_methods(adata, methods, batch_key=batch_key, seed=seed, device=device, progress=progress,
                        params=params)
    runs.update(_run_peers(adata, peers, batch_key=batch_key, seed=seed, device=device, params=params))
    runs = _with_baseline(adata, runs, unintegrated, batch_key=batch_key, seed=seed)
    df = benchmark(adata, batch_key=batch_key, label_key=label_key, embeddings=[key for key, _, _ in runs.values()],
                   unintegrated=unintegrated, metrics=metrics, seed=seed, device=device, progress=progress)
    df.index = pd.Index(list(runs), name="method")
    info = pd.DataFrame({"kind": [kind for _, kind, _ in runs.values()],
                         "embedding": [key for key, _, _ in runs.values()],
                         "seconds": [round(sec, 2) for _, _, sec in runs.values()]}, index=df.index)
    df = pd.concat([info, df], axis=1)
    df.to_csv(out_dir / "metrics.csv")
    plot_overview(df, out_dir / "overview.png", title=f"{adata.n_obs} cells, batch = {batch_key!r}")
    if umap:
        plot_umap_grid(adata, {name: key for name, (key, _, _) in runs.items()}, batch_key=batch_key,
                       label_key=label_key, path=out_dir / "umap.png", seed=seed)
    return df
