"""3D volume rendering: real VTK rendering under X (Xvfb), a placeholder offscreen."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.ui.volume_3d import make_volume_3d_widget

ROOT = Path(__file__).resolve().parents[2]

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
a, b = images
third = a.shape[1] // 3
print(json.dumps({"max": int(a.max()), "difference": float(np.abs(a - b).mean()),
                  "left_third": float(a[:, :third].mean()), "right_third": float(a[:, -third:].mean()),
                  "label": bool(label_shown), "faces": faces, "marker_on": marker_on, "label_fits": label_fits}))
"""


def test_offscreen_gets_a_placeholder_not_a_crash(qtbot, phantom):
    widget = make_volume_3d_widget(phantom)
    qtbot.addWidget(widget)
    assert "3D view" in widget.text()


@pytest.mark.display
@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs an X display (run under xvfb-run)")
def test_volume_rendering_seen_from_the_front_whatever_the_array_order():
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", RENDER_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["max"] > 100  # something was rendered
    assert figures["difference"] < 0.5  # LPS- and RAS-ordered arrays render the same patient
    # Seen from the front, the patient's left marker is on the screen's right.
    assert figures["right_third"] > figures["left_third"] + 1
    assert figures["label"] and figures["label_fits"]
    # The orientation cube names the patient's sides on the LPS world axes (+x is left).
    assert figures["marker_on"] and figures["faces"] == ["L", "R", "P", "A", "S", "I"]
