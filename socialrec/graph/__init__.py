"""The social graph (DESIGN §4): pure ``DataFrame -> DataFrame`` functions, Spark built-ins only.

* :mod:`~socialrec.graph.edges`: one directed edge per ordered user pair with a tie strength.
* :mod:`~socialrec.graph.sampling`: seeded weighted sampling of 1-hop and 2-hop neighbourhoods.
* :mod:`~socialrec.graph.proof`: social proof per (user, item), as of a cutoff.
* :mod:`~socialrec.graph.stats`: degrees, weakly connected components, PageRank (Spark, or igraph on the
  driver below a configured size).

The stage that reads silver and writes the gold tables is :mod:`socialrec.pipelines.graph`.
"""
from __future__ import annotations

from socialrec.graph.edges import OVERLAP_EVENT_TYPES, build_social_graph
from socialrec.graph.proof import social_proof
from socialrec.graph.sampling import hash_uniform, sample_social_neighbourhoods
from socialrec.graph.stats import (
    connected_components,
    degree_buckets,
    degree_distribution,
    degrees,
    pagerank,
    user_graph_features,
)

__all__ = [
    "OVERLAP_EVENT_TYPES",
    "build_social_graph",
    "connected_components",
    "degree_buckets",
    "degree_distribution",
    "degrees",
    "hash_uniform",
    "pagerank",
    "sample_social_neighbourhoods",
    "social_proof",
    "user_graph_features",
]
