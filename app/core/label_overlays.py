"""Label maps shown over a compared pair's panels: what a consistency check produced, and how shown.

Qt-free. The label maps are derived data (``Volume.label_map``): they are drawn over the panel of
the volume they were made from, never listed as open volumes, never windowed as images; the
synthesized panel under its overlay stays labelled SYNTHETIC (its volume is unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from app.core.label_map import DEFAULT_COLOURS
from app.core.volume import Volume

DEFAULT_LABEL_OPACITY = 0.4
DISAGREEMENT_COLOUR = (255, 0, 255)  # magenta: no tissue label's, neither sign's of the difference maps
DISAGREEMENT_OPACITY = 0.8  # the disagreement column shows nothing else: drawn strongly


@dataclass(frozen=True)
class SegmentationOverlays:
    """The label maps of one compared pair (``original`` / ``synthesized``: the images they were
    made from) and the disagreement map on the original's label grid; ``shown`` and ``opacity``
    apply to the two label maps (the disagreement column is always drawn)."""

    original: Volume
    synthesized: Volume
    original_labels: Volume
    synthesized_labels: Volume
    disagreement: Volume
    shown: bool = True
    opacity: float = DEFAULT_LABEL_OPACITY

    def __post_init__(self) -> None:
        for volume in (self.original_labels, self.synthesized_labels, self.disagreement):
            if not volume.is_label_map:
                raise ValueError(f"{volume.name!r} is not a label map")

    def belongs_to(self, original: Volume | None, synthesized: Volume | None) -> bool:
        return original is self.original and synthesized is self.synthesized

    def with_display(self, shown: bool | None = None, opacity: float | None = None) -> SegmentationOverlays:
        return replace(
            self,
            shown=self.shown if shown is None else bool(shown),
            opacity=self.opacity if opacity is None else float(np.clip(opacity, 0.0, 1.0)),
        )


def label_colour_table(labels: Volume) -> np.ndarray:
    """RGBA per label value (row = value) from a label map's table; value 0 (background) and
    values the table does not list get a default colour; background is transparent."""
    entries = labels.label_map.labels if labels.label_map is not None else ()
    top = max([entry.value for entry in entries] + [int(np.max(labels.voxels, initial=0))] + [0])
    table = np.zeros((top + 1, 4), dtype=np.uint8)
    for value in range(1, top + 1):
        table[value, :3] = DEFAULT_COLOURS[value % len(DEFAULT_COLOURS)]
        table[value, 3] = 255
    for entry in entries:
        if entry.value > 0:
            table[entry.value] = (*entry.colour_rgb, 255)
    return table
