"""Integration metrics: arrays and neighbour graphs in, numbers out.

Nothing heavy is imported here (no torch, UMAP, igraph or scikit-learn at import time).

- BERMUDA (Wang et al. 2019): :func:`divergence_score`, :func:`entropy_score`, :func:`silhouette_score`
  (:mod:`.bermuda_scores`).
- LISI (Korsunsky et al. 2019): :func:`lisi` per cell; iLISI = LISI of the batch, cLISI of the cell type.
- Clustering agreement: :func:`ari`, :func:`nmi`, :func:`resolution_sweep` (Leiden/Louvain, scIB's
  resolutions), :func:`kmeans_nmi_ari`.
- scIB (Luecken et al. 2022): :func:`asw_label`, :func:`asw_batch`, :func:`pcr`, :func:`pcr_comparison`,
  :func:`graph_connectivity`, :func:`isolated_label_f1`, :func:`isolated_label_asw`, :func:`kbet`;
  scArches: :func:`ebm`, :func:`knn_accuracy`.
- :func:`compute_metrics`: all of them at once, with ``batch_score``, ``bio_score`` and ``overall``.

>>> import numpy as np
>>> import scintegrate.metrics as sm
>>> sm.nmi([0, 0, 1, 1], [0, 0, 1, 1])
1.0
"""

from ._checks import MetricWarning
from ._graph import NeighborGraph
from .bermuda_scores import bermuda_umap, divergence_score, entropy_score, knn_kl_divergence, silhouette_score
from .clustering import RESOLUTIONS, ari, cluster_graph, kmeans_nmi_ari, nmi, resolution_sweep
from .lisi import lisi, simpson_index
from .mixing import ebm, graph_connectivity, kbet, kbet_acceptance, knn_accuracy
from .scib import asw_batch, asw_label, isolated_label_asw, isolated_label_f1, isolated_labels, pcr, pcr_comparison
from .summary import BATCH_METRICS, BIO_METRICS, METRIC_KEYS, PRESETS, compute_metrics, resolve_metrics

__all__ = [
    "compute_metrics", "resolve_metrics", "METRIC_KEYS", "BATCH_METRICS", "BIO_METRICS", "PRESETS",
    "divergence_score", "entropy_score", "silhouette_score", "bermuda_umap", "knn_kl_divergence",
    "lisi", "simpson_index", "ari", "nmi", "resolution_sweep", "cluster_graph", "kmeans_nmi_ari", "RESOLUTIONS",
    "asw_label", "asw_batch", "isolated_labels", "isolated_label_asw", "isolated_label_f1", "pcr",
    "pcr_comparison", "graph_connectivity", "kbet", "kbet_acceptance", "ebm", "knn_accuracy",
    "NeighborGraph", "MetricWarning",
]
