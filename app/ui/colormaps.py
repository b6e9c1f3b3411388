"""Lookup tables (256 x RGB uint8) for the grey-scale panels and the diverging difference panel.

Built locally from numbers (or pyqtgraph's bundled viridis table): nothing is fetched.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=16)
def lookup_table(name: str, invert: bool = False) -> np.ndarray:
    """256 x 3 uint8 table for ``name`` in ('gray', 'hot', 'bone', 'viridis', 'diverging' (white
    centre), 'diverging-dark' (black centre, the difference panel's default))."""
    ramp = np.linspace(0.0, 1.0, 256)
    if name == "gray":
        rgb = np.stack([ramp, ramp, ramp], axis=1)
    elif name == "hot":
        rgb = np.stack([np.clip(3 * ramp, 0, 1), np.clip(3 * ramp - 1, 0, 1), np.clip(3 * ramp - 2, 0, 1)], 1)
    elif name == "bone":
        rgb = (
            7 * np.stack([ramp, ramp, ramp], 1)
            + np.stack([np.clip(3 * ramp - 2, 0, 1), np.clip(3 * ramp - 1, 0, 1), np.clip(3 * ramp, 0, 1)], 1)
        ) / 8
    elif name == "viridis":
        import pyqtgraph as pg

        rgb = pg.colormap.get("viridis").getLookupTable(nPts=256)[:, :3] / 255.0
    elif name == "diverging-dark":
        # Dark-centred: zero is near black (a dark UI stays dark where the images agree);
        # negative values brighten through blue to cyan, positive ones through red to yellow,
        # so both signs stand out and the magnitude reads as brightness.
        t = np.abs(ramp - 0.5) * 2
        negative = ramp < 0.5
        red = np.where(negative, 0.05 + 0.25 * t**1.5, 0.05 + 0.95 * np.clip(1.6 * t, 0, 1))
        green = np.where(negative, 0.05 + 0.85 * np.clip(1.6 * t - 0.6, 0, 1) + 0.1 * t, 0.05 + 0.9 * np.clip(1.6 * t - 0.6, 0, 1))
        blue = np.where(negative, 0.05 + 0.95 * np.clip(1.6 * t, 0, 1), 0.05 + 0.1 * t)
        rgb = np.stack([red, green, blue], 1)
    elif name == "diverging":
        # Blue (negative) - white (zero) - red (positive): symmetric around the centre entry.
        below = ramp < 0.5
        t = np.where(below, ramp * 2, (ramp - 0.5) * 2)
        red = np.where(below, 0.15 + 0.85 * t, 1.0)
        green = np.where(below, 0.25 + 0.75 * t, 1.0 - 0.85 * t)
        blue = np.where(below, 1.0, 1.0 - 0.85 * t)
        rgb = np.stack([red, green, blue], 1)
    else:
        raise ValueError(f"unknown colormap {name!r}")
    table = np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    return table[::-1].copy() if invert else table


COLORMAP_NAMES = ("gray", "hot", "bone", "viridis")
DIVERGING_NAMES = ("diverging-dark", "diverging")  # signed maps: zero in the middle
DEFAULT_DIVERGING = "diverging-dark"
