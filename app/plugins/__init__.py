"""Plugin API and runtime: manifests, discovery, safe weight loading, inference (torch lives here)."""
