"""3D volume rendering: real VTK rendering under X (Xvfb), a placeholder offscreen."""

import json
import os

import numpy as np
import pytest

from app.core.volume import Geometry, Volume
from app.ui.volume_3d import make_volume_3d_widget, vtk_image_from_volume
from tests.ui.child_process import run_python_child

# Runs in a child process: the test session's QApplication is on the offscreen platform, and a
# QVTKRenderWindowInteractor needs a real (X) window.
RENDER_SCRIPT = r"""
import json, sys
import numpy as np
from PySide6 import QtGui, QtWidgets
app = QtWidgets.QApplication([])
from app.core.orientation_phantom import orientation_phantom
from app.core.provenance import Provenance
from app.ui.volume_3d import Volume3DWidget
images = []
for direction in (np.eye(3), np.diag([-1.0, -1.0, 1.0])):
    volume = orientation_phantom(size_ijk=(33, 41, 25), direction=direction)
    volume.provenance = Provenance("toy", "1")
    widget = Volume3DWidget(volume)
    widget.resize(160, 160)
    widget.show()
    app.processEvents()
    cube = widget.orientation_marker.GetOrientationMarker()
    faces = [cube.GetXPlusFaceText(), cube.GetXMinusFaceText(), cube.GetYPlusFaceText(),
             cube.GetYMinusFaceText(), cube.GetZPlusFaceText(), cube.GetZMinusFaceText()]
    marker_on = bool(widget.orientation_marker.GetEnabled())
    widget.orientation_marker.SetEnabled(0)  # the brightness figures below are of the volume alone
    for _, plane_actor in widget.slice_planes.values():
        plane_actor.SetVisibility(0)
    camera = widget.renderer.GetActiveCamera()  # straight from the front for the left/right check
    center = np.mean(volume.bounds_lps_mm(), axis=0)
    camera.SetFocalPoint(*center)
    camera.SetPosition(center[0], center[1] - 1000.0, center[2])
    camera.SetViewUp(0, 0, 1)
    widget.renderer.ResetCamera()
    camera.Zoom(1.6)
    widget.render_now()
    image = widget.rendered_image().convertToFormat(QtGui.QImage.Format.Format_Grayscale8)
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    pixels = pixels[:, : image.width()].astype(int)
    images.append(pixels)
    label_shown = widget.synthetic_label.isVisible()
    widget.resize(110, 160)  # narrower than the label's one line: it wraps, whole
    app.processEvents()
    label = widget.synthetic_label
    label_fits = label.geometry().right() < widget.width() and "".join(label.text().split()) == "SYNTHETIC—toy1"
from app.core.viewer_state import ViewerState
state = ViewerState(volume)
widget = Volume3DWidget(volume, state)
widget.resize(160, 160)
widget.show()
app.processEvents()
target = state.cursor_lps_mm + np.array([3.0, -4.0, 6.0])
state.set_cursor(target)
planes = {axis: list(source.GetOrigin()) for axis, (source, _) in widget.slice_planes.items()}
follows = all(abs(planes[axis][axis] - target[axis]) < 1e-6 for axis in range(3))
direction = widget.renderer.GetActiveCamera().GetDirectionOfProjection()
mapper = widget.volume_actor.GetMapper()
widget.detach()
state.set_cursor(target + 1.0)  # a discarded widget no longer follows
still = all(abs(widget.slice_planes[a][0].GetOrigin()[a] - target[a]) < 1e-6 for a in range(3))
a, b = images
third = a.shape[1] // 3
print(json.dumps({"max": int(a.max()), "difference": float(np.abs(a - b).mean()),
                  "left_third": float(a[:, :third].mean()), "right_third": float(a[:, -third:].mean()),
                  "label": bool(label_shown), "faces": faces, "marker_on": marker_on, "label_fits": label_fits,
                  "planes_follow": follows and still, "direction": list(direction),
                  "sample_mm": mapper.GetSampleDistance(), "auto_adjust": mapper.GetAutoAdjustSampleDistances()}))
"""


def figures_from_render_script(script: str, *arguments: str) -> dict:
    """Run ``script`` in a child process on the X display; the JSON of its last output line."""
    result = run_python_child(script, *arguments, QT_QPA_PLATFORM="xcb")
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_offscreen_gets_a_placeholder_not_a_crash(qtbot, phantom):
    widget = make_volume_3d_widget(phantom)
    qtbot.addWidget(widget)
    assert "3D view" in widget.text()


@pytest.mark.display
@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display (run under xvfb-run)")
def test_volume_rendering_seen_from_the_front_whatever_the_array_order():
    figures = figures_from_render_script(RENDER_SCRIPT)
    assert figures["max"] > 100  # something was rendered
    assert figures["difference"] < 0.5  # LPS- and RAS-ordered arrays render the same patient
    # Seen from the front, the patient's left marker is on the screen's right.
    assert figures["right_third"] > figures["left_third"] + 1
    assert figures["label"] and figures["label_fits"]
    # The orientation cube names the patient's sides on the LPS world axes (+x is left).
    assert figures["marker_on"] and figures["faces"] == ["L", "R", "P", "A", "S", "I"]
    # Seen a little from the left and above: three faces of the cube (A, L, S), not "A" alone.
    x, y, z = figures["direction"]
    assert y > 0.7 and abs(x) > 0.2 and z < -0.2
    # The slice planes of the 2D panels are drawn and follow the cursor (until detached).
    assert figures["planes_follow"]
    # Fine, fixed sampling: no voxel-sized staircase.
    assert figures["sample_mm"] <= 0.5 and figures["auto_adjust"] == 0


def rotation_deg(axis: int, angle_deg: float) -> np.ndarray:
    """Right-handed rotation about LPS axis ``axis`` (0 x, 1 y, 2 z)."""
    cos, sin = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    first, second = [a for a in range(3) if a != axis]
    rotation = np.eye(3)
    rotation[first, first] = rotation[second, second] = cos
    rotation[first, second], rotation[second, first] = -sin, sin
    return rotation


OBLIQUE_DIRECTION = rotation_deg(2, 30.0) @ rotation_deg(0, 30.0)  # tilted ~30 deg about S and L
MARKER_LPS_MM = np.array([12.0, -4.0, 4.0])  # left, anterior and superior of the box's centre
MARKER_VALUE = 1000.0


def oblique_marker_phantom(direction=OBLIQUE_DIRECTION) -> Volume:
    """A CT-valued box (air inside, soft-tissue edges) with a 4 mm bright ball at ``MARKER_LPS_MM``.

    The box is centred on the LPS origin whatever ``direction``, so the marker's patient position
    (left, anterior, superior of the centre) is the same for every direction."""
    size_ijk = np.array([48, 44, 36])
    spacing_mm = np.array([1.0, 1.25, 1.5])
    direction = np.asarray(direction, float)
    origin = -direction @ (spacing_mm * (size_ijk - 1) / 2)
    geometry = Geometry(origin, spacing_mm, direction)
    ni, nj, nk = size_ijk
    k, j, i = np.meshgrid(np.arange(nk), np.arange(nj), np.arange(ni), indexing="ij")
    ijk = np.stack([i, j, k], axis=-1)
    on_face = (ijk <= 1) | (ijk >= size_ijk - 2)
    voxels = np.full((nk, nj, ni), -1000.0, dtype=np.float32)
    voxels[on_face.sum(axis=-1) >= 2] = 60.0  # the box's twelve edges (2 voxels thick) show its tilt
    lps = geometry.lps_from_index(ijk.reshape(-1, 3)).reshape(nk, nj, ni, 3)
    voxels[np.linalg.norm(lps - MARKER_LPS_MM, axis=-1) <= 4.0] = MARKER_VALUE
    return Volume(voxels, geometry, modality="CT", units="HU", name="oblique marker phantom")


def marker_point_of_image(image) -> np.ndarray:
    """The mean image point (VTK's frame, before the prop's matrix) of the marker's voxels."""
    from vtkmodules.util.numpy_support import vtk_to_numpy

    values = vtk_to_numpy(image.GetPointData().GetScalars())
    return np.mean([image.GetPoint(int(index)) for index in np.flatnonzero(values >= MARKER_VALUE)], axis=0)


def apply(affine: np.ndarray, point) -> np.ndarray:
    return affine[:3, :3] @ np.asarray(point, float) + affine[:3, 3]


@pytest.mark.parametrize("max_voxels", [10_000_000, 10_000])  # whole, and every 2nd voxel
def test_oblique_volume_is_placed_by_its_full_direction(max_voxels):
    import vtkmodules.vtkRenderingOpenGL2  # noqa: F401 - the mapper's helpers (no window opened)
    import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401
    from vtkmodules.vtkRenderingCore import vtkVolume
    from vtkmodules.vtkRenderingVolume import vtkFixedPointVolumeRayCastMapper

    volume = oblique_marker_phantom()
    assert volume.geometry.is_oblique()
    marker_ijk = volume.geometry.index_from_lps(MARKER_LPS_MM)
    assert np.all((marker_ijk > 4) & (marker_ijk < np.array(volume.size_ijk) - 5))  # well inside
    image, matrix = vtk_image_from_volume(volume, max_voxels)
    assert image.GetDimensions() == ((48, 44, 36) if max_voxels > 48 * 44 * 36 else (24, 22, 18))
    affine = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    # Every image point lands where the volume's own index -> LPS mapping puts that voxel.
    step = round(image.GetSpacing()[0] / volume.geometry.spacing_mm[0])
    for index in [(0, 0, 0), (3, 5, 2), (image.GetDimensions()[0] - 1, 0, 4)]:
        point = image.GetPoint(image.ComputePointId(index))
        assert np.allclose(apply(affine, point), volume.geometry.lps_from_index(np.multiply(index, step)))
    # The marker drawn by VTK sits at its LPS position (within a voxel when decimated).
    drawn_marker = apply(affine, marker_point_of_image(image))
    assert np.linalg.norm(drawn_marker - MARKER_LPS_MM) < (0.3 if step == 1 else 1.5)
    # A vtkVolume with that user matrix has the volume's LPS bounding box.
    prop = vtkVolume()
    mapper = vtkFixedPointVolumeRayCastMapper()
    mapper.SetInputData(image)
    prop.SetMapper(mapper)
    prop.SetUserMatrix(matrix)
    low, high = np.array(prop.GetBounds()).reshape(3, 2).T
    expected_low, expected_high = volume.bounds_lps_mm()
    tolerance_mm = 1e-6 if step == 1 else 2.0 * step  # decimation may drop the last voxel plane
    assert np.allclose(low, expected_low, atol=tolerance_mm)
    assert np.allclose(high, expected_high, atol=tolerance_mm)


def test_axis_aligned_volume_keeps_the_identity_matrix():
    from app.core.orientation_phantom import orientation_phantom

    ras_ordered = orientation_phantom(size_ijk=(9, 7, 5), direction=np.diag([-1.0, -1.0, 1.0]))
    image, matrix = vtk_image_from_volume(ras_ordered)
    assert all(matrix.GetElement(r, c) == (1.0 if r == c else 0.0) for r in range(4) for c in range(4))
    low, _ = ras_ordered.bounds_lps_mm()
    assert np.allclose(image.GetOrigin(), low)


OBLIQUE_RENDER_SCRIPT = r"""
import json, sys
import numpy as np
from PySide6 import QtGui, QtWidgets
app = QtWidgets.QApplication([])
from tests.ui.test_volume_3d import MARKER_LPS_MM, marker_point_of_image, oblique_marker_phantom
from app.ui.volume_3d import Volume3DWidget
out_dir = sys.argv[1]
volume = oblique_marker_phantom()
widget = Volume3DWidget(volume)
widget.resize(260, 260)
widget.show()
app.processEvents()
actor = widget.volume_actor
matrix = actor.GetMatrix()
affine = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
image = actor.GetMapper().GetInput()
marker_drawn_at = affine[:3, :3] @ marker_point_of_image(image) + affine[:3, 3]
renderer = widget.renderer
camera = renderer.GetActiveCamera()
# The widget opens a little turned (three faces of the cube in view); the checks below look
# straight from the front, as a radiologist's anterior view.
centre_lps = np.mean(volume.bounds_lps_mm(), axis=0)
camera.SetFocalPoint(*centre_lps)
camera.SetPosition(centre_lps[0], centre_lps[1] - 1000.0, centre_lps[2])
camera.SetViewUp(0, 0, 1)
renderer.ResetCamera()
camera.Zoom(1.6)
view_up = np.array(camera.GetViewUp())
looking = np.array(camera.GetDirectionOfProjection())
screen_right = np.cross(looking, view_up)
def on_screen(lps):
    renderer.SetWorldPoint(*lps, 1.0)
    renderer.WorldToDisplay()
    x, y, _ = renderer.GetDisplayPoint()
    return [x, widget.interactor.GetRenderWindow().GetSize()[1] - 1 - y]  # rows from the top
def bright_centre(name):  # saves the view with its cube, finds the ball (brightest pixels) without
    widget.orientation_marker.SetEnabled(1)
    widget.rendered_image().save(f"{out_dir}/{name}_with_cube.png")
    widget.orientation_marker.SetEnabled(0)
    grey = widget.rendered_image().convertToFormat(QtGui.QImage.Format.Format_Grayscale8)
    pixels = np.frombuffer(grey.constBits(), np.uint8).reshape(grey.height(), grey.bytesPerLine())
    rows, columns = np.nonzero(pixels[:, : grey.width()] > 215)
    return int(rows.size), [float(columns.mean()), float(rows.mean())] if rows.size else None
bright_pixels, front_centre = bright_centre("oblique_3d_front")
front_marker, front_volume_centre = on_screen(MARKER_LPS_MM), on_screen(np.mean(volume.bounds_lps_mm(), axis=0))
# Turned towards the patient's left and from above: the ball's depth now shows on screen too.
camera.Azimuth(40)
camera.Elevation(25)
camera.OrthogonalizeViewUp()
renderer.ResetCameraClippingRange()
_, turned_centre = bright_centre("oblique_3d_turned")
cube = widget.orientation_marker.GetOrientationMarker()
print(json.dumps({
    "marker_drawn_at": marker_drawn_at.tolist(),
    "bounds": list(actor.GetBounds()),
    "bright_pixels": bright_pixels, "bright_centre": front_centre,
    "marker_on_screen": front_marker, "centre_on_screen": front_volume_centre,
    "turned_bright_centre": turned_centre, "turned_marker_on_screen": on_screen(MARKER_LPS_MM),
    "screen_right": screen_right.tolist(), "view_up": view_up.tolist(),
    "cube_right_face": cube.GetXPlusFaceText(), "cube_top_face": cube.GetZPlusFaceText(),
}))
"""


@pytest.mark.display
@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display (run under xvfb-run)")
def test_oblique_volume_renders_its_marker_where_the_orientation_cube_says(tmp_path):
    figures = figures_from_render_script(OBLIQUE_RENDER_SCRIPT, str(tmp_path))
    assert (tmp_path / "oblique_3d_front_with_cube.png").stat().st_size > 0
    # The rendered prop maps the marker's image voxels to the marker's LPS position.
    assert np.linalg.norm(np.array(figures["marker_drawn_at"]) - MARKER_LPS_MM) < 0.3
    low, high = np.array(figures["bounds"]).reshape(3, 2).T
    assert np.allclose(low, oblique_marker_phantom().bounds_lps_mm()[0], atol=1e-3)
    # Camera from the front: screen right is the patient's left (+x), up is superior (+z),
    # which is what the cube's L and S faces show.
    assert np.allclose(figures["screen_right"], [1, 0, 0]) and figures["cube_right_face"] == "L"
    assert np.allclose(figures["view_up"], [0, 0, 1]) and figures["cube_top_face"] == "S"
    # The bright ball is drawn where its LPS point projects: right of and above the centre.
    assert figures["bright_pixels"] > 20
    bright, expected = np.array(figures["bright_centre"]), np.array(figures["marker_on_screen"])
    assert np.linalg.norm(bright - expected) < 4.0, (bright, expected)
    centre = np.array(figures["centre_on_screen"])
    assert bright[0] > centre[0] + 10 and bright[1] < centre[1] - 10
    # Seen from another side the ball still sits on its LPS point, so its depth is right too.
    turned, expected = np.array(figures["turned_bright_centre"]), np.array(figures["turned_marker_on_screen"])
    assert np.linalg.norm(turned - expected) < 4.0, (turned, expected)
