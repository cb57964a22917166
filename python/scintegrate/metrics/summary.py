"""``compute_metrics``: every score of an embedding in one call, sharing the expensive pieces.

The kNN graph (up to 89 other cells, enough for LISI), the label distance sums (silhouettes), the
Leiden resolution sweep (NMI, ARI, isolated-label F1) and BERMUDA's 2-D UMAP are each computed once
and only when a requested metric needs them.

Aggregate scores (scIB, Luecken et al. 2022; scArches' EBM and kNN accuracy added, all in [0, 1],
higher is better):

- ``batch_score`` = mean of :data:`BATCH_METRICS`: ``asw_batch``, ``pcr_comparison``,
  ``graph_connectivity``, ``kbet``, ``ebm`` and iLISI scaled as scIB does, ``(median iLISI - 1) / (B - 1)``.
- ``bio_score`` = mean of :data:`BIO_METRICS`: ``nmi``, ``ari``, ``asw_label``, ``isolated_label_f1``,
  ``isolated_label_asw``, ``knn_accuracy`` and cLISI scaled as scIB does, ``(L - median cLISI) / (L - 1)``.
- ``overall`` = 0.4 * batch_score + 0.6 * bio_score.

Means skip components that are NaN (e.g. ``pcr_comparison`` without ``X_unintegrated``). The reported
``ilisi``/``clisi`` are the un-scaled medians (DeepBID's numbers). BERMUDA's three scores are reported
but are not part of the aggregates (different scales and directions).

Example
-------
>>> import numpy as np
>>> from scintegrate.metrics import compute_metrics
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(200, 5)) + np.repeat(np.eye(5)[:2] * 6, 100, axis=0)
>>> res = compute_metrics(X, np.tile(["a", "b"], 100), np.repeat(["t1", "t2"], 100), metrics="fast")
>>> round(res["knn_accuracy"], 2), bool(np.isnan(res["divergence_score"]))
(1.0, True)
"""

from __future__ import annotations

import warnings
from typing import Iterable, Union

import numpy as np

from . import bermuda_scores as bs
from . import clustering, mixing, scib
from ._checks import MetricWarning, as_codes, as_embedding, check_same_rows
from ._graph import resolve_graph
from .lisi import lisi, median_lisi

METRIC_KEYS = (
    "divergence_score", "entropy_score", "silhouette_score", "ilisi", "clisi", "nmi", "ari",
    "asw_label", "asw_batch", "pcr_comparison", "graph_connectivity", "isolated_label_f1",
    "isolated_label_asw", "kbet", "ebm", "knn_accuracy", "batch_score", "bio_score", "overall",
)
#: metrics averaged into ``batch_score`` (``ilisi`` enters scaled to [0, 1])
BATCH_METRICS = ("asw_batch", "pcr_comparison", "graph_connectivity", "kbet", "ilisi", "ebm")
#: metrics averaged into ``bio_score`` (``clisi`` enters scaled to [0, 1])
BIO_METRICS = ("nmi", "ari", "asw_label", "isolated_label_f1", "isolated_label_asw", "clisi", "knn_accuracy")
#: metrics that need two or more batches (NaN, with one warning, for a single batch)
NEEDS_BATCHES = BATCH_METRICS + ("divergence_score", "entropy_score", "batch_score", "overall")
#: named subsets for ``metrics=``: "fast" skips the UMAP and the clustering sweep
PRESETS = {
    "all": METRIC_KEYS,
    "fast": ("ilisi", "clisi", "asw_label", "asw_batch", "pcr_comparison",
             "graph_connectivity", "isolated_label_asw", "kbet", "ebm", "knn_accuracy"),
    "bermuda_scores": ("divergence_score", "entropy_score", "silhouette_score"),
    "scib": BATCH_METRICS + BIO_METRICS + ("batch_score", "bio_score", "overall"),
}
LISI_NEIGHBORS = 89  # 3 * perplexity 30, the cell itself being the 90th


def resolve_metrics(metrics: Union[None, str, Iterable[str]]) -> list:
    """The requested metric keys (a preset name, a list of keys, or None for all) plus dependencies."""
    if metrics is None:
        metrics = "all"
    names = list(PRESETS[metrics]) if isinstance(metrics, str) and metrics in PRESETS else (
        [metrics] if isinstance(metrics, str) else list(metrics))
    unknown = [m for m in names if m not in METRIC_KEYS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {list(METRIC_KEYS)} or a preset {list(PRESETS)}")
    wanted = set(names)
    if "overall" in wanted:
        wanted |= {"batch_score", "bio_score"}
    if "batch_score" in wanted:
        wanted |= set(BATCH_METRICS)
    if "bio_score" in wanted:
        wanted |= set(BIO_METRICS)
    return [m for m in METRIC_KEYS if m in wanted]


class _Shared:
    """Lazily computed pieces several metrics use."""

    def __init__(self, X, bcodes, lcodes, knn_graph, seed, device, k_graph):
        self.X, self.b, self.l, self.seed = X, bcodes, lcodes, seed
        self.torch_device = device if device is not None and str(device).startswith("cuda") else None
        self._knn_graph, self._k_graph = knn_graph, k_graph
        self._cache = {}

    def get(self, name, make):
        if name not in self._cache:
            self._cache[name] = make()
        return self._cache[name]

    @property
    def graph(self):
        return self.get("graph", lambda: resolve_graph(self.X, self._knn_graph, self._k_graph,
                                                       device=self.torch_device, seed=self.seed))

    @property
    def label_sums(self):
        from ._silhouette import group_distance_sums

        return self.get("sums", lambda: group_distance_sums(self.X, self.l, int(self.l.max()) + 1,
                                                            device=self.torch_device))

    @property
    def sweep(self):
        return self.get("sweep", lambda: clustering.resolution_sweep(
            self.graph.connectivities(15), self.l, seed=self.seed))

    @property
    def x2d(self):
        return self.get("x2d", lambda: bs.to_2d(self.X, seed=self.seed))


def _compute_one(name: str, s: _Shared, X_unint) -> dict:
    X, b, l, seed, dev = s.X, s.b, s.l, s.seed, s.torch_device
    if name == "divergence_score":
        return {name: bs.divergence_score(s.x2d, b, l, seed=seed)}
    if name == "entropy_score":
        return {name: bs.entropy_score(s.x2d, b, l, seed=seed)}
    if name == "silhouette_score":
        # on the seeded 2-D UMAP like the other two BERMUDA scores (the paper's evaluation); BERMUDA's
        # released script instead uses cosine on 20 PCs: bs.silhouette_score(X, l) reproduces that.
        return {name: bs.silhouette_score(s.x2d, l, metric="euclidean", n_pcs=0, seed=seed, device=dev)}
    if name in ("ilisi", "clisi"):
        codes, n_lev = (b, np.unique(b).size) if name == "ilisi" else (l, np.unique(l).size)
        med = median_lisi(lisi(None, codes, knn=s.graph), name)
        if n_lev < 2:
            return {name: med, f"_{name}_scaled": float("nan")}
        scaled = (med - 1) / (n_lev - 1) if name == "ilisi" else (n_lev - med) / (n_lev - 1)
        return {name: med, f"_{name}_scaled": scaled}
    if name in ("nmi", "ari"):
        return {"nmi": s.sweep.best_nmi, "ari": s.sweep.best_ari}
    if name == "asw_label":
        return {name: scib.asw_label(X, l, sums=s.label_sums)}
    if name == "asw_batch":
        return {name: scib.asw_batch(X, b, l, device=dev)}
    if name == "pcr_comparison":
        return {name: float("nan") if X_unint is None else scib.pcr_comparison(X_unint, X, b, seed=seed)}
    if name == "graph_connectivity":
        return {name: mixing.connectivity_of(s.graph.adjacency(15), l)}
    if name == "isolated_label_f1":
        return {name: scib.isolated_label_f1(b, l, s.sweep.clusterings)}
    if name == "isolated_label_asw":
        return {name: scib.isolated_label_asw(X, b, l, sums=s.label_sums)}
    if name == "kbet":
        return {name: mixing.kbet(X, b, l, device=dev, seed=seed)}
    if name == "ebm":
        return {name: mixing.ebm(None, b, knn=s.graph, seed=seed)}
    if name == "knn_accuracy":
        return {name: mixing.knn_accuracy(None, l, knn=s.graph)}
    raise KeyError(name)


def _aggregate(out: dict) -> None:
    def mean_of(keys):
        vals = [out.get(f"_{k}_scaled", out[k]) if k in ("ilisi", "clisi") else out[k] for k in keys]
        vals = [v for v in vals if v is not None and np.isfinite(v)]
        return float(np.mean(vals)) if vals else float("nan")

    out["batch_score"] = mean_of(BATCH_METRICS)
    out["bio_score"] = mean_of(BIO_METRICS)
    out["overall"] = 0.4 * out["batch_score"] + 0.6 * out["bio_score"]


def compute_metrics(
    X,
    batch,
    labels,
    *,
    X_unintegrated=None,
    metrics: Union[None, str, Iterable[str]] = None,
    knn_graph=None,
    seed: int = 0,
    device=None,
    progress: bool = False,
) -> dict:
    """All metrics of embedding ``X`` (n x d) given per-cell ``batch`` and cell-type ``labels``.

    Returns a dict with exactly the keys :data:`METRIC_KEYS`; metrics not requested or undefined are
    NaN (undefined ones with a :class:`MetricWarning` saying why). ``X_unintegrated`` (the embedding or
    PCA before integration) enables ``pcr_comparison``. ``knn_graph`` may be a precomputed
    :class:`NeighborGraph`, ``(indices, distances)`` pair or sparse distance matrix of ``X``.
    ``metrics`` is None (all), a list of keys, or a preset of :data:`PRESETS`. ``device="cuda"``
    runs the kNN search and the silhouette distances on the GPU.

    Bad input (NaN/inf in ``X``, vectors of the wrong length, missing labels, unknown metric names)
    raises ``ValueError``. Degenerate data is scored where it can be: with a single batch every
    metric of :data:`NEEDS_BATCHES` is NaN (one warning names them) and the rest is computed; a label
    carried by a single cell counts as its own cell type (silhouette 0 for that cell, as scikit-learn;
    skipped by ASW batch and kBET, which need several cells; usually one of the isolated labels).
    """
    X = as_embedding(X)
    n = X.shape[0]
    bcodes, bnames = as_codes(batch, n, "batch")
    lcodes, _ = as_codes(labels, n, "labels")
    if X_unintegrated is not None:
        X_unintegrated = as_embedding(X_unintegrated, "X_unintegrated")
        check_same_rows(X, X_unintegrated, "X_unintegrated")
    wanted = resolve_metrics(metrics)
    out = {k: float("nan") for k in METRIC_KEYS}
    if bnames.size < 2:
        skipped = [m for m in wanted if m in NEEDS_BATCHES]
        warnings.warn(f"only one batch ({bnames[0]!r}): batch-mixing metrics are NaN: {skipped}",
                      MetricWarning, stacklevel=2)
        wanted = [m for m in wanted if m not in NEEDS_BATCHES]
    k_graph = LISI_NEIGHBORS if {"ilisi", "clisi"} & set(wanted) else 15
    shared = _Shared(X, bcodes, lcodes, knn_graph, seed, _torch_device(device), k_graph)
    # the "nmi" step fills "ari" too (same sweep); the aggregates come last
    steps = [m for m in wanted if m not in ("batch_score", "bio_score", "overall")
             and not (m == "ari" and "nmi" in wanted)]
    from tqdm.auto import tqdm

    for name in tqdm(steps, desc="metrics", disable=not progress):
        out.update(_compute_one(name, shared, X_unintegrated))
    if {"batch_score", "bio_score", "overall"} & set(wanted):
        _aggregate(out)
    return {k: float(out[k]) for k in METRIC_KEYS}


def _torch_device(device):
    """A CUDA device string when ``device`` asks for one, else None (numpy paths)."""
    if device is None or str(device) == "cpu":
        return None
    from .._device import resolve_device

    dev = resolve_device(device)
    return str(dev) if dev.type == "cuda" else None
