"""Annotations and measurements in world (LPS) coordinates, with ROI statistics."""
