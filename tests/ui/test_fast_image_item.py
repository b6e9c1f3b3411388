"""WindowedImageItem draws exactly what pyqtgraph's ImageItem drew, as a 32-bit image Qt draws
without converting it (pyqtgraph's Indexed8 image was converted on every paint)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6 import QtGui

from app.ui.colormaps import lookup_table
from app.ui.fast_image_item import WindowedImageItem


def _pixels(item) -> np.ndarray:
    item.render()
    image = item.qimage.convertToFormat(QtGui.QImage.Format.Format_ARGB32_Premultiplied)
    return np.frombuffer(image.constBits(), np.uint32).reshape(image.height(), image.width()).copy()


def _slice(dtype) -> np.ndarray:
    data = np.random.default_rng(0).normal(100, 300, (40, 56))
    if np.dtype(dtype).kind == "f":
        data[3:5, 7:9] = np.nan  # outside a resampled partner's grid: drawn transparent
        data[0, :2] = (np.inf, -np.inf)
        return data.astype(dtype)
    return np.abs(data).astype(dtype) if np.dtype(dtype).kind == "u" else data.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.uint16])
@pytest.mark.parametrize("colormap", ["gray", "hot", "diverging-dark"])
@pytest.mark.parametrize("levels", [(-200.0, 450.0), (100.0, 100.0)])  # a zero-width window too
def test_same_pixels_as_pyqtgraph(qtbot, dtype, colormap, levels):
    data, table = _slice(dtype), lookup_table(colormap)
    reference, windowed = pg.ImageItem(axisOrder="row-major"), WindowedImageItem(axisOrder="row-major")
    for item in (reference, windowed):
        item.setImage(data, autoLevels=False, levels=levels, lut=table)
    assert np.array_equal(_pixels(windowed), _pixels(reference))
    assert windowed.qimage.format() == QtGui.QImage.Format.Format_ARGB32_Premultiplied
    assert reference.qimage.format() != windowed.qimage.format()  # the check compares two paths
    # What other code reads back is what it set.
    assert np.array_equal(windowed.image, data, equal_nan=data.dtype.kind == "f")
    assert tuple(windowed.levels) == levels


def test_colour_and_rgba_images_go_through_pyqtgraph(qtbot):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[2:4, 2:4] = (60, 255, 120, 255)
    item = WindowedImageItem(axisOrder="row-major")
    item.setImage(rgba, autoLevels=False, levels=None)
    pixels = _pixels(item)
    assert pixels[0, 0] == 0 and pixels[2, 2] == 0xFF3CFF78
