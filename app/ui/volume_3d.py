"""3D volume rendering (VTK, GPU ray casting when available) for the 2x2 layout.

VTK needs an OpenGL context: under Xvfb or a real display it works; on Qt's offscreen
platform there is none, so a plain label stands in rather than crashing the viewer.
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from app.core.display import default_window
from app.core.resample import reorient_towards_lps
from app.core.volume import Geometry, Volume
from app.ui.slice_view import wrap_to_width

MAX_RENDER_VOXELS = 8_000_000
# Faces of the orientation cube: world axes are LPS (+x left, +y posterior, +z superior).
ORIENTATION_FACES = {"XPlus": "L", "XMinus": "R", "YPlus": "P", "YMinus": "A", "ZPlus": "S", "ZMinus": "I"}


def make_volume_3d_widget(volume: Volume, state=None) -> QtWidgets.QWidget:
    """A VTK volume rendering of ``volume`` in LPS space, or a placeholder without OpenGL.
    With the viewer ``state``, the three slice planes at its cursor are drawn in it and follow it."""
    if QtGui.QGuiApplication.platformName() in ("offscreen", "minimal"):
        return _placeholder("3D view needs a display with OpenGL (not available offscreen)")
    try:
        return Volume3DWidget(volume, state)
    except Exception as error:  # noqa: BLE001 - a missing GL driver must not take the viewer down
        return _placeholder(f"3D view unavailable: {error}")


def _placeholder(text: str) -> QtWidgets.QLabel:
    label = QtWidgets.QLabel(text)
    label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
    label.setWordWrap(True)
    return label


def vtk_image_from_volume(volume: Volume, max_voxels: int = MAX_RENDER_VOXELS):
    """The voxels as vtkImageData (decimated if huge) and the vtkMatrix4x4 placing it in LPS.

    VTK's volume mappers ignore an image's direction matrix, so the array is first re-indexed
    towards L, P, S (exact, ``reorient_towards_lps``) and the image keeps the identity direction
    with the volume's origin and spacing; what is left of the direction (the identity for
    axis-aligned volumes, a rotation for oblique ones) goes into the matrix, meant as the
    vtkVolume's UserMatrix: it turns the image about its first voxel, so image point ``p``
    lands at LPS ``origin + direction @ (p - origin)``.
    """
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData

    volume = reorient_towards_lps(volume)

    step = max(1, int(np.ceil((volume.voxels.size / max_voxels) ** (1 / 3))))
    voxels = np.ascontiguousarray(volume.voxels[::step, ::step, ::step], dtype=np.float32)
    image = vtkImageData()
    nk, nj, ni = voxels.shape
    image.SetDimensions(ni, nj, nk)
    image.SetSpacing(*(volume.geometry.spacing_mm * step))
    image.SetOrigin(*volume.geometry.origin_lps_mm)
    image.GetPointData().SetScalars(numpy_to_vtk(voxels.reshape(-1), deep=True))
    return image, _vtk_matrix(lps_from_image_point(volume.geometry))


def lps_from_image_point(geometry: Geometry) -> np.ndarray:
    """4x4 affine from a point of an image laid out axis-aligned at ``geometry``'s origin and
    spacing (what VTK draws) to where ``geometry`` puts it in LPS: a rotation about the origin."""
    affine = np.eye(4)
    affine[:3, :3] = geometry.direction
    affine[:3, 3] = geometry.origin_lps_mm - geometry.direction @ geometry.origin_lps_mm
    return affine


def _vtk_matrix(affine: np.ndarray):
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    matrix = vtkMatrix4x4()
    for row in range(4):
        for column in range(4):
            matrix.SetElement(row, column, float(affine[row, column]))
    return matrix


class Volume3DWidget(QtWidgets.QWidget):
    """QVTKRenderWindowInteractor showing a ray-cast rendering, camera from the patient's front."""

    def __init__(self, volume: Volume, state=None, parent=None) -> None:
        super().__init__(parent)
        import vtkmodules.vtkRenderingOpenGL2  # noqa: F401 - registers the OpenGL backend
        import vtkmodules.vtkRenderingVolumeOpenGL2  # noqa: F401
        from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
        from vtkmodules.vtkRenderingCore import (
            vtkColorTransferFunction,
            vtkRenderer,
            vtkVolume,
            vtkVolumeProperty,
        )
        from vtkmodules.vtkRenderingVolume import vtkFixedPointVolumeRayCastMapper

        self.interactor = QVTKRenderWindowInteractor(self)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.interactor)

        window = default_window(volume.voxels, volume.modality)
        mapper = vtkFixedPointVolumeRayCastMapper()
        image, lps_from_image = vtk_image_from_volume(volume)
        mapper.SetInputData(image)
        # Samples at a quarter of the finest voxel and one ray per pixel: no staircase of
        # voxel-sized steps (the default adapts the sampling down while it renders).
        mapper.SetAutoAdjustSampleDistances(0)
        mapper.SetSampleDistance(float(min(image.GetSpacing())) / 4)
        mapper.SetImageSampleDistance(1.0)
        from vtkmodules.vtkCommonDataModel import vtkPiecewiseFunction

        opacity = vtkPiecewiseFunction()
        opacity.AddPoint(window.low, 0.0)
        opacity.AddPoint(window.high, 0.6)
        colors = vtkColorTransferFunction()
        colors.AddRGBPoint(window.low, 0, 0, 0)
        colors.AddRGBPoint(window.high, 1, 1, 1)
        properties = vtkVolumeProperty()
        properties.SetScalarOpacity(opacity)
        properties.SetColor(colors)
        properties.SetInterpolationTypeToLinear()
        actor = vtkVolume()
        actor.SetMapper(mapper)
        actor.SetProperty(properties)
        actor.SetUserMatrix(lps_from_image)  # oblique volumes turned into place; identity otherwise
        self.volume_actor = actor
        self.renderer = vtkRenderer()
        self.renderer.AddVolume(actor)
        self.renderer.SetBackground(0, 0, 0)
        self.interactor.GetRenderWindow().AddRenderer(self.renderer)
        # Look from anterior (-y in LPS) with superior up: the patient faces the viewer.
        camera = self.renderer.GetActiveCamera()
        center = np.mean(volume.bounds_lps_mm(), axis=0)
        camera.SetFocalPoint(*center)
        camera.SetPosition(center[0], center[1] - 1000.0, center[2])
        camera.SetViewUp(0, 0, 1)
        # A little from the patient's left and above: the cube shows three labelled faces
        # (A, L, S) rather than "A" alone, and the anatomy reads as a volume.
        camera.Azimuth(30)
        camera.Elevation(20)
        camera.OrthogonalizeViewUp()
        self.renderer.ResetCamera()
        camera.Zoom(1.6)  # ResetCamera leaves a wide margin around the bounding box
        self.slice_planes = self._add_slice_planes(volume)
        self.state = state
        self.show_cursor(state.cursor_lps_mm if state is not None else center, render=False)
        if state is not None:
            state.cursor_changed.connect(self.show_cursor)
        self.interactor.Initialize()
        self.orientation_marker = self._add_orientation_marker()
        self.synthetic_label: QtWidgets.QLabel | None = None
        if volume.provenance is not None:
            label = QtWidgets.QLabel(volume.provenance.label(), self)
            label.setStyleSheet("color: white; background: #c0001a; font-weight: bold; padding: 2px 4px;")
            label.adjustSize()
            label.move(4, 4)
            label.raise_()
            self.synthetic_label = label
            self._synthetic_text = volume.provenance.label()

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:
        """Keep the SYNTHETIC label whole: wrapped to the view's width, never cut."""
        super().resizeEvent(event)
        label = getattr(self, "synthetic_label", None)
        if label is not None:
            label.ensurePolished()
            room = max(self.width() - 8 - 12, 1)  # margins and the style sheet's padding
            label.setText(
                "\n".join(wrap_to_width(self._synthetic_text, room, label.fontMetrics().horizontalAdvance))
            )
            label.adjustSize()
            label.raise_()

    def _add_slice_planes(self, volume: Volume) -> dict:
        """The outlines of the axial, coronal and sagittal slices shown in the 2D panels."""
        from vtkmodules.vtkFiltersSources import vtkPlaneSource
        from vtkmodules.vtkRenderingCore import vtkActor, vtkPolyDataMapper

        self._bounds_lps = volume.bounds_lps_mm()
        planes = {}
        for axis, color in ((2, (1.0, 0.82, 0.29)), (1, (0.4, 0.85, 1.0)), (0, (0.6, 1.0, 0.5))):
            source = vtkPlaneSource()
            mapper = vtkPolyDataMapper()
            mapper.SetInputConnection(source.GetOutputPort())
            actor = vtkActor()
            actor.SetMapper(mapper)
            actor.GetProperty().SetRepresentationToWireframe()
            actor.GetProperty().SetColor(*color)
            actor.GetProperty().SetLineWidth(2)
            actor.GetProperty().LightingOff()
            self.renderer.AddActor(actor)
            planes[axis] = (source, actor)
        return planes

    def detach(self) -> None:
        """Stop following the viewer's cursor (before the widget is discarded)."""
        if self.state is not None:
            self.state.cursor_changed.disconnect(self.show_cursor)
            self.state = None

    def show_cursor(self, lps_mm, render: bool = True) -> None:
        """Move the three slice outlines to the cursor (LPS mm): the planes the 2D panels show."""
        planes = getattr(self, "slice_planes", None)
        if not planes:
            return
        low, high = self._bounds_lps
        cursor = np.clip(np.asarray(lps_mm, dtype=float), low, high)
        for axis, (source, _) in planes.items():
            u, v = [a for a in range(3) if a != axis]
            origin = low.copy()
            origin[axis] = cursor[axis]
            first, second = origin.copy(), origin.copy()
            first[u], second[v] = high[u], high[v]
            source.SetOrigin(*origin)
            source.SetPoint1(*first)
            source.SetPoint2(*second)
            source.Modified()
        if render:
            self.interactor.GetRenderWindow().Render()

    def _add_orientation_marker(self):
        """A cube in the bottom-left corner labelled with the patient's sides (LPS world: +x is
        the patient's left, +y posterior, +z superior); it turns with the camera."""
        from vtkmodules.vtkInteractionWidgets import vtkOrientationMarkerWidget
        from vtkmodules.vtkRenderingAnnotation import vtkAnnotatedCubeActor

        cube = vtkAnnotatedCubeActor()
        for face, letter in ORIENTATION_FACES.items():
            getattr(cube, f"Set{face}FaceText")(letter)
        cube.SetFaceTextScale(0.6)
        cube.GetCubeProperty().SetColor(0.25, 0.25, 0.3)
        cube.GetTextEdgesProperty().SetColor(1.0, 0.82, 0.29)
        for face in ("X", "Y", "Z"):
            for side in ("Plus", "Minus"):
                getattr(cube, f"Get{face}{side}FaceProperty")().SetColor(1.0, 0.82, 0.29)
        marker = vtkOrientationMarkerWidget()
        marker.SetOrientationMarker(cube)
        marker.SetInteractor(self.interactor)
        marker.SetViewport(0.0, 0.0, 0.18, 0.18)
        marker.SetEnabled(1)
        marker.InteractiveOff()
        return marker

    def render_now(self) -> None:
        """Render the VTK window immediately (tests and screenshots)."""
        self.interactor.GetRenderWindow().Render()

    def rendered_image(self) -> QtGui.QImage:
        """The VTK window's pixels as a QImage (``QWidget.grab`` cannot read an OpenGL surface)."""
        from vtkmodules.util.numpy_support import vtk_to_numpy
        from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter

        self.render_now()
        grabber = vtkWindowToImageFilter()
        grabber.SetInput(self.interactor.GetRenderWindow())
        grabber.Update()
        image = grabber.GetOutput()
        width, height, _ = image.GetDimensions()
        rgb = vtk_to_numpy(image.GetPointData().GetScalars()).reshape(height, width, -1)[::-1, :, :3]
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        return QtGui.QImage(rgb.data, width, height, 3 * width, QtGui.QImage.Format.Format_RGB888).copy()
