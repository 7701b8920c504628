"""Cleaning: bronze -> silver with quarantine and audit (rules in docs/cleaning.md)."""
