"""Benchmarks on AnnData: metric tables, overview / UMAP figures, peer methods, full runs.

- :func:`benchmark` — score several ``obsm`` embeddings (one row each);
- :func:`score_embedding` — score one embedding computed anywhere (e.g. exported from Seurat);
- :func:`plot_overview`, :func:`plot_umap_grid` — PNG figures;
- :func:`run_benchmark` — integrate with our methods and installed peers (Harmony, Scanorama,
  scVI, ComBat), score, and write ``metrics.csv``, ``overview.png``, ``umap.png``.

>>> import scintegrate as si
>>> adata = si.datasets.simulate_counts(n_cells=300, n_genes=200, seed=0)
>>> df = si.benchmark.run_benchmark(adata, methods=["pca"], out_dir="bench", progress=False)  # doctest: +SKIP
>>> df.loc["pca", "overall"]  # doctest: +SKIP
"""

from .peers import available_peers, run_peer
from .plots import plot_overview, plot_umap_grid
from .runner import run_benchmark
from .table import (AGGREGATES, BATCH_METRICS, BERMUDA_METRICS, BIO_METRICS, LOWER_IS_BETTER, METRIC_COLUMNS,
                    benchmark, score_embedding)

__all__ = ["benchmark", "score_embedding", "plot_overview", "plot_umap_grid", "run_benchmark", "run_peer",
           "available_peers", "METRIC_COLUMNS", "BATCH_METRICS", "BIO_METRICS", "BERMUDA_METRICS", "AGGREGATES",
           "LOWER_IS_BETTER"]
