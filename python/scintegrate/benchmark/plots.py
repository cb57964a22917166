"""Benchmark figures: the scIB-style overview table and a UMAP grid, written as PNG.

Figures are drawn on a bare ``matplotlib.figure.Figure`` with the Agg canvas, so no pyplot state
or global backend is touched (safe in scripts, servers and notebooks alike).

Example
-------
>>> import pandas as pd
>>> from scintegrate.benchmark import plot_overview
>>> df = pd.DataFrame({"ilisi": [0.2, 0.6], "nmi": [0.9, 0.8], "batch_score": [0.3, 0.6],
...                    "bio_score": [0.9, 0.8], "overall": [0.66, 0.72]}, index=["pca", "bermuda"])
>>> plot_overview(df, "/tmp/overview.png")  # doctest: +ELLIPSIS
PosixPath('/tmp/overview.png')
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

from .table import AGGREGATES, BATCH_METRICS, BERMUDA_METRICS, BIO_METRICS, LOWER_IS_BETTER, get_embedding

_LABELS = {"divergence_score": "Divergence", "entropy_score": "Entropy", "ilisi": "iLISI",
           "asw_batch": "ASW batch", "pcr_comparison": "PCR comparison", "graph_connectivity": "Graph conn.",
           "kbet": "kBET", "ebm": "EBM", "silhouette_score": "Silhouette", "clisi": "cLISI", "nmi": "NMI",
           "ari": "ARI", "asw_label": "ASW label", "isolated_label_f1": "Isol. label F1",
           "isolated_label_asw": "Isol. label ASW", "knn_accuracy": "kNN accuracy",
           "batch_score": "Batch correction", "bio_score": "Bio conservation", "overall": "Overall"}


_BAR_GAP = 1.0  # room for the value printed after each bar


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=150)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    from .._files import atomic_write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        fig.savefig(tmp, dpi=150, bbox_inches="tight", facecolor="white", format=path.suffix.lstrip(".") or "png")
    return path


def minmax_goodness(values: pd.Series, lower_is_better: bool = False) -> np.ndarray:
    """Per-column min-max scaling to [0, 1] with 1 = best; equal values all get 1, NaN stays NaN."""
    v = values.to_numpy(dtype=float)
    v = -v if lower_is_better else v
    finite = np.isfinite(v)
    if not finite.any():
        return v
    lo, hi = np.nanmin(v), np.nanmax(v)
    if hi - lo < 1e-12:
        return np.where(finite, 1.0, np.nan)
    return (v - lo) / (hi - lo)


def _columns(df: pd.DataFrame):
    """Metric groups to draw as circles, and the aggregate columns; all-NaN columns are left out."""
    present = [c for c in df.columns if df[c].notna().any()]
    groups = [("Batch correction", [c for c in BATCH_METRICS if c in present]),
              ("Bio conservation", [c for c in BIO_METRICS if c in present]),
              ("BERMUDA", [c for c in BERMUDA_METRICS if c in present])]
    groups = [(name, cols) for name, cols in groups if cols]
    return groups, [c for c in AGGREGATES if c in present]


def _draw_circles(ax, df, cols, x0, cmap):
    for j, col in enumerate(cols):
        good = minmax_goodness(df[col], col in LOWER_IS_BETTER)
        for i, (value, g) in enumerate(zip(df[col].to_numpy(dtype=float), good)):
            if not np.isfinite(value):
                ax.text(x0 + j, i, "n/a", ha="center", va="center", fontsize=6, color="0.5")
                continue
            ax.scatter([x0 + j], [i + 0.08], s=40 + 400 * g, color=cmap(0.15 + 0.85 * g), edgecolors="0.3",
                       linewidths=0.4, zorder=3)
            ax.text(x0 + j, i - 0.36, f"{value:.2f}", ha="center", va="center", fontsize=5.5, color="0.25")


def _draw_bars(ax, df, cols, x0, width, cmap):
    for j, col in enumerate(cols):
        left = x0 + j * (width + _BAR_GAP)
        for i, value in enumerate(df[col].to_numpy(dtype=float)):
            if not np.isfinite(value):
                ax.text(left, i, "n/a", ha="left", va="center", fontsize=6, color="0.5")
                continue
            frac = float(np.clip(value, 0.0, 1.0))
            ax.barh(i, width * frac, left=left, height=0.6, color=cmap(0.2 + 0.8 * frac), zorder=3)
            ax.text(left + width * frac + 0.08, i, f"{value:.2f}", ha="left", va="center", fontsize=7)


def plot_overview(df: pd.DataFrame, path, *, title: Optional[str] = None) -> Path:
    """scIB-style overview: rows = methods (best ``overall`` first), one circle per metric.

    Circles are grouped as scIB batch correction, bio conservation and BERMUDA's three scores;
    size and colour show the per-column min-max-scaled score (large / dark = best among the
    methods; divergence and raw cLISI are inverted since lower is better), the raw value is
    printed under it; the batch / bio / overall aggregates are bars on a 0-1 scale. Columns
    that are all NaN are left out. Returns the PNG path.
    """
    import matplotlib

    if len(df) == 0:
        raise ValueError("the metrics table has no rows")
    groups, aggs = _columns(df)
    if not groups and not aggs:
        raise ValueError(f"no metric columns to plot (or all NaN); columns are {list(df.columns)}")
    if "overall" in df:
        df = df.sort_values("overall", ascending=False, na_position="last")
    df = df.iloc[::-1]  # best row at the top
    n_circles = sum(len(cols) for _, cols in groups)
    bar_w, gap = 1.6, 0.8
    x_bars = n_circles + (len(groups) - 1) * 0.4 + gap
    x_max = x_bars + len(aggs) * (bar_w + _BAR_GAP)
    fig = _new_figure(1.6 + 0.5 * x_max, 1.7 + 0.55 * len(df))
    ax = fig.add_subplot(1, 1, 1)
    cmap_c, cmap_b = matplotlib.colormaps["viridis_r"], matplotlib.colormaps["YlGnBu"]
    x, ticks, labels = 0.0, [], []
    for name, cols in groups:
        _draw_circles(ax, df, cols, x, cmap_c)
        ax.text(x + (len(cols) - 1) / 2, len(df) + 1.55, name, ha="center", va="bottom", fontsize=8,
                fontweight="bold")
        ax.plot([x - 0.3, x + len(cols) - 0.7], [len(df) + 1.45] * 2, color="0.3", lw=0.8)
        ticks += [x + j for j in range(len(cols))]
        labels += [_LABELS.get(c, c) + (" (↓)" if c in LOWER_IS_BETTER else "") for c in cols]
        x += len(cols) + 0.4
    _draw_bars(ax, df, aggs, x_bars, bar_w, cmap_b)
    ticks += [x_bars + j * (bar_w + _BAR_GAP) + bar_w / 2 for j in range(len(aggs))]
    labels += [_LABELS.get(c, c) for c in aggs]
    for pos, label in zip(ticks, labels):
        ax.text(pos, len(df) - 0.35, label, rotation=40, ha="left", va="bottom", fontsize=7)
    if aggs:
        ax.axvline(x_bars - gap / 2, color="0.6", lw=0.6)
    for i in range(len(df) - 1):
        ax.axhline(i + 0.5, color="0.85", lw=0.5, zorder=1)
    ax.set_yticks(range(len(df)), [str(v) for v in df.index], fontsize=8, fontweight="bold")
    ax.set_xticks([])
    ax.set_xlim(-0.6, x_max)
    ax.set_ylim(-0.6, len(df) + 2.2)
    ax.text(-0.6, -0.75, "circles: min-max scaled per column among these methods (larger, darker = better); "
            "bars: aggregate scores on a 0-1 scale", ha="left", va="top", fontsize=6, color="0.4")
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="y", length=0)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _as_mapping(embeddings) -> Dict[str, str]:
    if isinstance(embeddings, str):
        return {embeddings: embeddings}
    if isinstance(embeddings, Mapping):
        return dict(embeddings)
    return {key: key for key in embeddings}


def umap_2d(X: np.ndarray, *, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.3) -> np.ndarray:
    """Seeded 2-D UMAP of ``X`` (returned unchanged when it already has 2 columns)."""
    if X.shape[1] <= 2:
        return X
    import warnings

    import umap

    n_neighbors = int(min(n_neighbors, X.shape[0] - 1))
    reducer = umap.UMAP(n_neighbors=n_neighbors, min_dist=min_dist, random_state=seed, n_components=2, n_jobs=1)
    with warnings.catch_warnings():  # "n_jobs overridden by setting random_state": seeded on purpose
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        return reducer.fit_transform(X)


def _palette(levels: Sequence[str], small: str = "tab10") -> Dict[str, tuple]:
    import matplotlib

    n_small = matplotlib.colormaps[small].N
    cmap = matplotlib.colormaps[small if len(levels) <= n_small else "tab20"]
    if len(levels) > 20:
        cmap = matplotlib.colormaps["turbo"].resampled(len(levels))
    return {lev: cmap(i % cmap.N) for i, lev in enumerate(levels)}


def _natural_sort(levels) -> list:
    """``type2`` before ``type10``."""
    import re

    return sorted(levels, key=lambda s: [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", s)])


def _scatter(ax, Y, values, colors, order, size):
    ax.scatter(Y[order, 0], Y[order, 1], c=[colors[v] for v in values[order]], s=size, linewidths=0,
               rasterized=True)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_umap_grid(
    adata,
    embeddings: Union[Sequence[str], Mapping[str, str]],
    *,
    batch_key: str = "batch",
    label_key: str = "cell_type",
    path="umap.png",
    seed: int = 0,
    max_cells: Optional[int] = 30_000,
) -> Path:
    """Methods x (coloured by batch | by cell type): a seeded UMAP of each embedding, as a PNG.

    ``embeddings`` is a list of ``obsm`` keys or a ``{row title: obsm key}`` mapping. Above
    ``max_cells`` cells the same seeded random subset is drawn for every method.

    >>> plot_umap_grid(adata, {"PCA": "X_pca", "BERMUDA": "X_bermuda"}, path="umap.png")  # doctest: +SKIP
    """
    from .table import check_inputs

    rows = _as_mapping(embeddings)
    if not rows:
        raise ValueError("no embeddings given to plot")
    batch, labels = check_inputs(adata, batch_key, label_key)
    matrices = {title: get_embedding(adata, key) for title, key in rows.items()}
    rng = np.random.default_rng(seed)
    cells = np.arange(adata.n_obs)
    if max_cells is not None and adata.n_obs > max_cells:
        cells = np.sort(rng.choice(adata.n_obs, size=max_cells, replace=False))
    order = rng.permutation(len(cells))  # no batch painted systematically on top
    batch, labels = batch[cells], labels[cells]
    colors = {"batch": _palette(list(pd.unique(batch)), "Dark2"), "label": _palette(_natural_sort(pd.unique(labels)))}
    size = float(np.clip(12_000 / len(cells), 0.5, 8))
    fig = _new_figure(7.6, 3.3 * len(rows) + 0.4)
    axes = fig.subplots(len(rows), 2, squeeze=False)
    for r, (title, X) in enumerate(matrices.items()):
        Y = umap_2d(X[cells], seed=seed)
        _scatter(axes[r, 0], Y, batch, colors["batch"], order, size)
        _scatter(axes[r, 1], Y, labels, colors["label"], order, size)
        axes[r, 0].set_ylabel(title, fontsize=10, fontweight="bold")
    axes[0, 0].set_title(f"by batch ({batch_key})", fontsize=9)
    axes[0, 1].set_title(f"by cell type ({label_key})", fontsize=9)
    for c, key in enumerate(("batch", "label")):
        _legend(axes[-1, c], colors[key])
    fig.subplots_adjust(hspace=0.08, wspace=0.05)
    return _save(fig, path)


def _legend(ax, colors: Dict[str, tuple]) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", linestyle="", color=col, markersize=5, label=str(lev))
               for lev, col in colors.items()]
    ncol = 1 if len(handles) <= 4 else 2 if len(handles) <= 12 else 3
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.03), ncol=ncol, fontsize=7,
              frameon=False, handletextpad=0.2, columnspacing=0.8)
