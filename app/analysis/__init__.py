"""Hallucination checks and metrics: difference, residual and uncertainty maps (numpy only)."""
