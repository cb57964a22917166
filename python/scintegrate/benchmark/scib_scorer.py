"""scib-metrics' ``Benchmarker`` as a second scorer: the numbers papers report, next to ours.

:func:`scib_benchmark` runs ``scib_metrics.benchmark.Benchmarker`` with its default metrics
(``BioConservation()``, ``BatchCorrection()``), its own neighbour search (pynndescent, ``n_jobs=1``) and
its own definitions, and returns ``get_results(min_max_scale=False)``: unscaled metrics and the totals
``Batch correction``, ``Bio conservation`` and ``Total = 0.4 * batch + 0.6 * bio``, as papers report
them. This is **not** scintegrate's ``overall`` (:mod:`scintegrate.metrics.summary`: Leiden-sweep
NMI/ARI, kNN accuracy, EBM, ...); the two are written to different files (``metrics_scib.csv`` vs
``metrics.csv``) and the ``scorer`` column of this table names the scib-metrics version.

scib-metrics is an optional extra (``pip install scib-metrics``, or ``pip install 'scintegrate[bench]'``).
Its ``Benchmarker`` needs the pre-integration embedding in ``obsm`` (else it runs its own PCA of
``adata.X``, which here would be raw counts): pass ``unintegrated``; with ``unintegrated=None`` its
``pcr_comparison`` is left out (with a warning) and the totals average the rest.

Example
-------
>>> import scintegrate as si
>>> from scintegrate.benchmark.scib_scorer import scib_benchmark
>>> adata = si.datasets.simulate_counts(n_cells=300, n_genes=200, seed=0)
>>> si.integrate(adata, method="pca", progress=False)  # doctest: +SKIP
>>> df = scib_benchmark(adata, embeddings=["X_pca_baseline"], unintegrated="X_pca_baseline")  # doctest: +SKIP
>>> df.loc["X_pca_baseline", "Total"]  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from typing import Mapping, Optional, Sequence, Union

import numpy as np
import pandas as pd

from .table import check_inputs, get_embedding

#: the totals scib-metrics adds after its metric columns
SCIB_AGGREGATES = ["Batch correction", "Bio conservation", "Total"]
#: file name of the scib-metrics table written beside ``metrics.csv``
SCIB_FILE = "metrics_scib.csv"
#: the values of ``scorer=``
SCORERS = ("scintegrate", "scib-metrics", "both")


def check_scorer(scorer: str) -> str:
    """``scorer`` as one of :data:`SCORERS`; for a scib-metrics scorer the package must import."""
    if scorer not in SCORERS:
        raise ValueError(f"unknown scorer {scorer!r}; choose from {list(SCORERS)}")
    if scorer != "scintegrate":
        require_scib_metrics()
    return scorer


def require_scib_metrics():
    """The installed ``scib_metrics`` module, or one ImportError line saying how to install it."""
    try:
        import scib_metrics
        import scib_metrics.benchmark  # noqa: F401  (pulls in jax and pynndescent: a broken install fails here)
    except ImportError as err:
        raise ImportError(f"scorer 'scib-metrics' needs the scib-metrics package: pip install scib-metrics "
                          f"(or pip install 'scintegrate[bench]'); import failed: {err}") from None
    return scib_metrics


def scib_source() -> str:
    """What the ``scorer`` column of a scib-metrics table says, e.g. ``"scib-metrics 0.5.10 (unscaled)"``."""
    return f"scib-metrics {require_scib_metrics().__version__} (unscaled)"


def scib_benchmark(
    adata,
    *,
    batch_key: str = "batch",
    label_key: str = "cell_type",
    embeddings: Union[Sequence[str], Mapping[str, str]],
    unintegrated: Optional[str] = "X_pca",
    n_jobs: int = 1,
    progress: bool = False,
) -> pd.DataFrame:
    """Score ``obsm`` embeddings with scib-metrics' ``Benchmarker`` (default metrics, unscaled totals).

    ``embeddings`` lists ``obsm`` keys, or maps row names to ``obsm`` keys (``{"harmony": "X_harmony"}``);
    ``unintegrated`` is the ``obsm`` key of the pre-integration embedding (scib-metrics'
    ``pre_integrated_embedding_obsm_key``, the reference of its ``pcr_comparison``). Runs on a bare copy
    that holds only the batch and label columns and these embeddings, so ``adata`` is not changed. Returns one
    row per embedding (index name ``"embedding"``, or ``"method"`` for a mapping): ``embedding`` (the
    ``obsm`` key), ``scorer`` (:func:`scib_source`), scib-metrics' metric columns under its own names,
    then :data:`SCIB_AGGREGATES`. Its "Metric Type" row is dropped.

    >>> scib_benchmark(adata, embeddings={"pca": "X_pca_baseline"}, unintegrated="X_pca")  # doctest: +SKIP
    """
    import anndata as ad

    require_scib_metrics()
    from scib_metrics.benchmark import BatchCorrection, Benchmarker, BioConservation

    check_inputs(adata, batch_key, label_key)
    named = isinstance(embeddings, Mapping)
    rows = dict(embeddings) if named else {key: key for key in ([embeddings] if isinstance(embeddings, str)
                                                               else embeddings)}
    if not rows:
        raise ValueError("no embeddings given; pass obsm keys, e.g. embeddings=['X_pca']")
    keys = list(dict.fromkeys(rows.values()))
    obsm = {key: _as_given(adata, key) for key in keys + ([unintegrated] if unintegrated is not None else [])}
    batch_correction = BatchCorrection()
    if unintegrated is None:
        warnings.warn("scib-metrics: no unintegrated embedding, its pcr_comparison is left out of "
                      "'Batch correction' and 'Total'; pass unintegrated=<obsm key>", UserWarning, stacklevel=2)
        batch_correction = BatchCorrection(pcr_comparison=False)
    obs = pd.DataFrame({"batch": adata.obs[batch_key].to_numpy(), "labels": adata.obs[label_key].to_numpy()},
                       index=adata.obs_names.copy())
    bare = ad.AnnData(obs=obs, obsm=obsm)
    bench = Benchmarker(bare, batch_key="batch", label_key="labels", embedding_obsm_keys=keys,
                        pre_integrated_embedding_obsm_key=unintegrated,
                        bio_conservation_metrics=BioConservation(), batch_correction_metrics=batch_correction,
                        n_jobs=n_jobs, progress_bar=progress)
    bench.benchmark()
    res = bench.get_results(min_max_scale=False)
    res = res.drop(index="Metric Type").astype(float)
    out = res.loc[list(rows.values())]
    out.index = pd.Index(list(rows), name="method" if named else "embedding")
    out.columns.name = None
    info = pd.DataFrame({"embedding": list(rows.values()), "scorer": scib_source()}, index=out.index)
    return pd.concat([info, out], axis=1)


def _as_given(adata, key: str) -> np.ndarray:
    """``obsm[key]`` checked (finite, one row per cell); a dense array is passed on unchanged."""
    checked = get_embedding(adata, key)
    value = adata.obsm[key]
    return value if isinstance(value, np.ndarray) and value.dtype.kind == "f" else checked
