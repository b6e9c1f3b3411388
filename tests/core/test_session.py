"""The session model, without Qt: what is open and shown, per-volume display, events."""

import numpy as np
import pytest

from app.core.display import WindowLevel
from app.core.orientation_phantom import orientation_phantom
from app.core.planes import Plane
from app.core.session import Layout, Session


def _volumes(count: int):
    volumes = [orientation_phantom() for _ in range(count)]
    for number, volume in enumerate(volumes):
        volume.name = f"volume {number}"
    return volumes


def test_show_and_compare_change_what_is_shown_and_say_so():
    original, synthesized, other = _volumes(3)
    session = Session()
    views, listed = [], []
    session.view_changed.connect(lambda: views.append((session.current, session.compare, session.layout)))
    session.volumes_changed.connect(listed.append)
    assert session.viewer is None and session.pair is None
    session.show(original)
    assert views[-1] == (original, (), Layout.MPR) and session.viewer.reference is original
    session.show_compare(original, [synthesized], planes=[Plane.AXIAL])
    assert views[-1] == (original, (synthesized,), Layout.COMPARE)
    assert session.pair == (original, synthesized) and session.compare_planes == (Plane.AXIAL,)
    session.add_volume(other)
    session.add_volume(other)  # listed once
    assert session.volumes == [original, synthesized, other] and len(listed) == 3
    session.set_layout(Layout.AXIAL)
    assert views[-1] == (original, (), Layout.AXIAL)
    session.show(synthesized)
    assert session.current is synthesized and session.layout is Layout.AXIAL


def test_compare_layout_needs_a_second_volume_and_unknown_layouts_are_refused():
    (only,) = _volumes(1)
    session = Session(layout=Layout.COMPARE)
    assert session.layout is Layout.MPR  # nothing to compare at the start
    session.show(only)
    assert session.set_layout("compare") is False and session.layout is Layout.MPR
    with pytest.raises(ValueError):
        session.set_layout("3x3")
    with pytest.raises(ValueError):
        session.show_compare(only, [])
    other = _volumes(1)[0]
    session.add_volume(other)
    assert session.set_layout("compare") is True and session.pair == (only, other)


def test_window_level_is_kept_per_volume_when_a_map_is_chosen_or_the_compare_changes():
    original, synthesized, residual_map, other = _volumes(4)
    session = Session()
    session.show_compare(original, [synthesized])
    reading = WindowLevel(123.0, 45.0)
    session.viewer.set_window(reading)
    session.viewer.set_display(colormap="bone")
    cursor = session.viewer.cursor_lps_mm + np.array([2.0, 3.0, 4.0])
    session.viewer.set_cursor(cursor)
    session.show_compare(original, [synthesized, residual_map])  # a map chosen
    assert session.viewer.display.window == reading and session.viewer.display.colormap == "bone"
    assert np.allclose(session.viewer.cursor_lps_mm, cursor)  # the reader stays where they were
    session.show_compare(original, [other])  # another partner
    assert session.viewer.display.window == reading
    session.show(original)  # back to one volume
    assert session.viewer.display.window == reading
    session.show(other)  # another volume: its own display, starting from its default
    assert session.viewer.display.window != reading and session.display_of(other) is not None
    session.viewer.set_window(WindowLevel(1.0, 2.0))
    session.show(original)
    assert session.viewer.display.window == reading
    assert session.display_of(other).window == WindowLevel(1.0, 2.0)


def test_a_discarded_viewer_no_longer_writes_into_the_session():
    first, second = _volumes(2)
    session = Session()
    session.show(first)
    old_viewer = session.viewer
    session.show(second)
    remembered = session.display_of(second), session.display_of(first)
    old_viewer.set_window(WindowLevel(9.0, 9.0))
    assert (session.display_of(second), session.display_of(first)) == remembered


def test_default_colormap_applies_to_a_volume_shown_for_the_first_time():
    (volume,) = _volumes(1)
    changes = []
    session = Session(default_colormap="hot")
    session.display_changed.connect(lambda shown, display: changes.append((shown, display.colormap)))
    session.show(volume)
    assert session.viewer.display.colormap == "hot" and changes[-1] == (volume, "hot")


def test_a_volume_read_again_replaces_its_stale_copy_where_it_was():
    stale, other, fresh = _volumes(3)
    session = Session()
    session.show(other)
    session.show(stale)
    session.viewer.set_display(window=WindowLevel(40, 80))
    cursor = np.array(session.viewer.cursor_lps_mm) + [2.0, 0.0, 0.0]
    session.viewer.set_cursor(cursor)
    views = []
    session.view_changed.connect(lambda: views.append(session.current))
    session.replace_volume(stale, fresh)
    assert session.volumes == [other, fresh] and session.current is fresh and views == [fresh]
    assert session.viewer.reference is fresh
    assert session.viewer.display.window == WindowLevel(40, 80)  # the reader's window kept
    assert np.allclose(session.viewer.cursor_lps_mm, cursor)
    # Not shown: replaced in the list only, what is shown stays.
    session.show(other)
    views.clear()
    newer = orientation_phantom()
    session.replace_volume(fresh, newer)
    assert session.volumes == [other, newer] and session.current is other and views == []
    # In a compare: swapped in place.
    session.show_compare(other, [newer])
    newest = orientation_phantom()
    session.replace_volume(newer, newest)
    assert session.pair == (other, newest) and session.layout is Layout.COMPARE
