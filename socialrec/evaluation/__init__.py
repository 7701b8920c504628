"""Evaluation (DESIGN §7): full-ranking metrics in Spark and an independent reference implementation."""
