"""socialrec: Spark-native social recommendations with explainable reasons."""
from __future__ import annotations

__version__ = "0.1.0"
