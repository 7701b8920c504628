"""Seeded synthetic social e-commerce platform in the canonical feed format (docs/feeds.md)."""
from __future__ import annotations

from socialrec.synth.generator import GeneratorReport, ensure_platform, generate_platform

__all__ = ["GeneratorReport", "ensure_platform", "generate_platform"]
