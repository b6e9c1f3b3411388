"""Label overlays of a consistency check in the session model, without Qt: they belong to the
pair they were made from, survive a rebuilt compare of that pair, and never become open volumes."""

import numpy as np
import pytest

from app.core.label_map import LabelEntry, LabelMapProvenance
from app.core.label_overlays import SegmentationOverlays, label_colour_table
from app.core.orientation_phantom import orientation_phantom
from app.core.session import Session
from app.core.volume import Volume


def _labels(like: Volume, table=(LabelEntry(1, "grey matter", (200, 120, 120)),)) -> Volume:
    voxels = np.zeros(like.shape_kji, np.int16)
    voxels[2:4, 3:6, 3:7] = 1
    return Volume(voxels, like.geometry, "SEG", "label", label_map=LabelMapProvenance("seg", "1", table))


def _overlays(original: Volume, synthesized: Volume) -> SegmentationOverlays:
    return SegmentationOverlays(original, synthesized, _labels(original), _labels(synthesized), _labels(original))


def test_overlays_follow_their_pair_and_rebuild_the_compare_keeping_the_cursor():
    original, synthesized, other = (orientation_phantom() for _ in range(3))
    session = Session()
    session.show_compare(original, [synthesized])
    session.viewer.set_cursor(session.viewer.cursor_lps_mm + 3.0)
    cursor = session.viewer.cursor_lps_mm.copy()
    rebuilt, display = [], []
    session.view_changed.connect(lambda: rebuilt.append(session.segmentation))
    session.label_display_changed.connect(display.append)
    overlays = _overlays(original, synthesized)
    session.set_segmentation(overlays)
    assert rebuilt == [overlays] and np.allclose(session.viewer.cursor_lps_mm, cursor)
    session.set_label_display(shown=False, opacity=2.0)
    assert display[-1].shown is False and display[-1].opacity == 1.0 and len(rebuilt) == 1
    session.show_compare(original, [synthesized, other])  # a map column joins: same pair
    assert session.segmentation is not None and session.segmentation.shown is False
    session.show_compare(synthesized, [original])  # another pair: not drawn there
    assert session.segmentation is None
    session.set_label_display(shown=True)
    assert len(display) == 1  # nothing shown, nothing said
    assert all(not volume.is_label_map for volume in session.volumes)
    session.show_compare(original, [synthesized])
    assert session.segmentation is not None  # back to its pair
    session.set_segmentation(None)
    assert rebuilt[-1] is None


def test_only_label_maps_are_drawn_as_labels_and_their_colours_come_from_the_table():
    original = orientation_phantom()
    with pytest.raises(ValueError, match="not a label map"):
        SegmentationOverlays(original, original, original, _labels(original), _labels(original))
    labels = _labels(original)
    labels.voxels[0, 0, 0] = 3  # a value the table does not list: a default colour, drawn
    table = label_colour_table(labels)
    assert table.shape == (4, 4) and table[0, 3] == 0  # background transparent
    assert tuple(table[1]) == (200, 120, 120, 255) and table[3, 3] == 255
