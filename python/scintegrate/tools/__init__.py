"""Analysis tools shared by models: MetaNeighbor cluster similarity and cluster matching.

>>> from scintegrate.tools import metaneighbor_us, match_clusters
"""

from .metaneighbor import (cluster_pairs, match_clusters, metaneighbor_us, rank_standardize,
                           unmatched_clusters)

__all__ = ["metaneighbor_us", "match_clusters", "cluster_pairs", "unmatched_clusters", "rank_standardize"]
