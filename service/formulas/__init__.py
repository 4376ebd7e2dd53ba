"""Formulas: a safe symbolic layer (pure: no web framework)."""
