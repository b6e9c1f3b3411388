"""Qt-free data model: volumes with LPS geometry, display settings, study model, provenance."""
