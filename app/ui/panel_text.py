"""What a slice panel writes over its image, and in which colours: the title strip, the edge
letters, the SYNTHETIC labels and the corner line (slice number, position, window).

Shared by the interactive panel (``app.ui.slice_view.SliceView``) and the first image the window
paints before it (``app.ui.first_image``), so both say the same; no pyqtgraph here.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from app.core.display import WindowLevel
from app.core.planes import PLANE_AXES, Plane, slice_position_text
from app.core.volume import Volume

BLINDED_STUDY_LABEL = "BLINDED STUDY IMAGE — MAY BE SYNTHETIC"
# The title strip above a panel's image has a backing of its own, the same in every theme: on a
# light theme's window grey, the light title read at 1.1:1 (WCAG AA asks 4.5:1; this is 15:1).
TITLE_TEXT_COLOUR = "#e8e8e8"
TITLE_STRIP_COLOUR = "#15191e"
# A translucent backing keeps the letters readable over bright images (difference maps).
LETTER_STYLE = (
    "color: #ffd24a; font-weight: bold; font-size: 14px; background: rgba(0, 0, 0, 110); padding: 0 2px;"
)
SYNTHETIC_STYLE = "color: white; background: #c0001a; font-weight: bold; padding: 2px 4px;"


def window_number(value: float) -> str:
    """A window width or level as readers write it: whole numbers from 1000 up (30000, not
    3e+04, for 15-bit radiographs and scaled MR), four significant digits below."""
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def synthetic_labels(volumes: Iterable[Volume], label_blinded_study_images: bool = True) -> list[str]:
    """The SYNTHETIC labels of the synthesized volumes among ``volumes`` (those drawn in a
    panel), and the blinded-study label when one of them is a reader-study package image."""
    volumes = list(volumes)
    labels = [volume.provenance.label() for volume in volumes if volume.provenance is not None]
    if label_blinded_study_images and any(volume.blinded_study_image for volume in volumes):
        labels.append(BLINDED_STUDY_LABEL)
    return labels


def corner_text(volume: Volume, plane: Plane, cursor_lps_mm, window: WindowLevel) -> str:
    """Bottom-right corner: slice number / count of ``volume``, position, window."""
    normal_in_index = np.abs(volume.geometry.direction.T @ PLANE_AXES[plane].normal_lps)
    axis = int(np.argmax(normal_in_index))  # index axis the plane steps along
    index = volume.geometry.index_from_lps(cursor_lps_mm)[axis]
    count = volume.size_ijk[axis]
    number = int(np.floor(index + 0.5)) + 1
    slice_text = f"{number}/{count}" if 1 <= number <= count else f"-/{count}"
    # Colour is shown as it is: no window.
    shown = "  RGB" if volume.is_colour else f"  W {window_number(window.width)} L {window_number(window.center)}"
    return f"{slice_text}  {slice_position_text(plane, cursor_lps_mm)}{shown}"
