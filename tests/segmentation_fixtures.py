"""Test data of the segmentation-consistency checks, shared by the command-line, viewer and plugin
tests: a tissue phantom whose "synthesized" copy lost a ventricle, and the MNI152 head's central
half with its largest central CSF component (the lateral ventricles)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume

Box = tuple[slice, slice, slice]  # k, j, i

GREY, WHITE = 100.0, 200.0  # the test segmenter's (tests.plugins.plugin_factory) grey / white intensities


@dataclass(frozen=True)
class VentriclePhantom:
    """Background 0, a grey block holding a white band and a white 'ventricle'; the synthesized
    volume has the ventricle filled with grey (the structure a generator removed)."""

    shape: tuple[int, int, int]
    grey: Box
    white_band: Box
    ventricle: Box

    def original(self) -> np.ndarray:
        voxels = np.zeros(self.shape, np.float32)
        voxels[self.grey] = GREY
        voxels[self.white_band] = WHITE
        voxels[self.ventricle] = WHITE
        return voxels

    def filled(self) -> np.ndarray:
        voxels = self.original()
        voxels[self.ventricle] = GREY
        return voxels

    def ventricle_voxels(self) -> int:
        return int(np.prod([s.stop - s.start for s in self.ventricle]))

    def volumes(self, geometry: Geometry, name: str = "T1") -> tuple[Volume, Volume]:
        """(original, filled): the filled one a plugin output ('filler' 1.0)."""
        return (
            Volume(self.original(), geometry, "MR", name=name),
            Volume(self.filled(), geometry, "MR", name=f"{name} filled", provenance=Provenance("filler", "1.0")),
        )


def mni_centre(head: Volume) -> Volume:
    """The central half of the head along each axis (the ventricles lie in its middle): an eighth
    of the voxels, so that the tests run a plugin on real anatomy quickly."""
    start = [n // 4 for n in head.shape_kji]
    box = tuple(slice(s, s + n // 2) for s, n in zip(start, head.shape_kji, strict=True))
    geometry = Geometry(head.geometry.lps_from_index(start[::-1]), head.geometry.spacing_mm, head.geometry.direction)
    return Volume(np.ascontiguousarray(head.voxels[box]), geometry, "MR", name="MNI152 centre")


def largest_central_csf(labels: np.ndarray, csf: int) -> np.ndarray:
    """The largest CSF component in the central third of a label map along each axis: on the
    MNI152 head's centre, the lateral ventricles."""
    centre = tuple(slice(n // 6, 5 * n // 6) for n in labels.shape)
    mask = np.zeros(labels.shape, dtype=bool)
    mask[centre] = labels[centre] == csf
    components, _ = ndimage.label(mask)
    return components == np.argmax(np.bincount(components.ravel())[1:]) + 1
