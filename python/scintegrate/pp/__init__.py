"""Seurat 4.3-faithful preprocessing (AnnData in/out, scanpy style).

Chain: :func:`log_normalize` -> :func:`find_variable_features` (vst; per batch with
``batch_key``) / :func:`select_integration_features` -> :func:`scale_data` (dense scaled matrix of
the selected features in ``obsm["scaled"]``) -> :func:`run_pca` (``obsm["X_pca"]``) ->
:func:`find_neighbors` (SNN in ``obsp["snn"]``) -> :func:`find_clusters`
(``obs["seurat_clusters"]``; per batch with ``batch_key``). Array-level pieces: :func:`vst`,
:func:`scale_matrix`, :func:`pca`, :func:`snn_graph`, :func:`cluster_graph`. Importing this package
loads only numpy/scipy/pandas. (Method-specific input transforms live with their models.)

>>> import scintegrate.pp as pp
>>> callable(pp.select_integration_features)
True
"""

from .cluster import cluster_graph, find_clusters, seurat_cluster_labels
from .graph import find_neighbors, snn_from_knn, snn_graph
from .hvg import (find_variable_features, integration_features_from_lists, normalize_and_select,
                  select_features_any, select_integration_features, vst)
from .normalize import log_normalize, log_normalize_matrix
from .pca import pca, run_pca
from .scale import scale_data, scale_matrix

__all__ = [
    "log_normalize", "log_normalize_matrix",
    "find_variable_features", "select_integration_features", "integration_features_from_lists", "select_features_any",
    "normalize_and_select", "vst",
    "scale_data", "scale_matrix",
    "run_pca", "pca",
    "snn_graph", "snn_from_knn", "find_neighbors", "cluster_graph", "find_clusters", "seurat_cluster_labels",
]
