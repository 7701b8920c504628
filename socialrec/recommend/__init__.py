"""Batch recommendations with reasons (DESIGN §6): faiss retrieval, candidates and blending, reasons.

Pure functions only; the stage that reads and writes tables is :mod:`socialrec.pipelines.recommend`.
"""
from __future__ import annotations
