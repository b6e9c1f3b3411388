"""MONOCHROME1 images (most CR/DX radiographs) store low values for bright pixels: the viewer
starts them inverted, as DICOM PS3.3 C.7.6.3.1.2 asks, while readouts keep the stored values."""

import numpy as np
import pytest

from app.core.viewer_state import ViewerState, initial_invert
from app.core.volume import Geometry, Volume


def _radiograph(photometric: str | None) -> Volume:
    metadata = {"PhotometricInterpretation": photometric} if photometric else {}
    voxels = np.arange(12, dtype=np.uint16).reshape(1, 3, 4)
    return Volume(voxels, Geometry.identity(), modality="CR", metadata=metadata)


@pytest.mark.parametrize(
    ("photometric", "inverted"), [("MONOCHROME1", True), ("MONOCHROME2", False), (None, False)]
)
def test_monochrome1_starts_inverted(photometric, inverted):
    volume = _radiograph(photometric)
    assert initial_invert(volume) is inverted
    state = ViewerState(volume)
    assert state.display.invert is inverted
    assert volume.value_at_index((0, 0, 0)) == 0.0  # the stored value, not flipped
