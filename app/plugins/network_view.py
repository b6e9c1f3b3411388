"""The slice a 2D / 2.5D plugin is given, as an image, to check the orientation convention.

``plugins check PLUGIN --show-input VOLUME OUT.png`` writes the centre slice of a real volume
as the runtime presents it to the network (plane, rows and columns, flips, input scaling; before
any resampling to ``spacing_mm``), so a researcher can put it beside a training image: the same
way up and the same side left, or the manifest's ``plane`` (or the training export) is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.volume import Volume
from app.plugins.errors import PluginError
from app.plugins.manifest import PluginManifest
from app.plugins.normalization import DEFAULT_NETWORK_RANGE, fit_input_scaling, to_network
from app.plugins.plane_stack import plane_layout


@dataclass(frozen=True)
class NetworkInputSlice:
    image: np.ndarray  # (rows, columns) float32, in the network range
    index: int  # position in the plugin's stack order
    count: int
    network_range: tuple[float, float]

    def grey_pixels(self) -> np.ndarray:
        """uint8 grey levels: the network range's low end black, its high end white."""
        low, high = self.network_range
        scaled = (np.clip(self.image, low, high) - low) * (255.0 / (high - low))
        return np.rint(scaled).astype(np.uint8)


def network_input_slice(manifest: PluginManifest, volume: Volume) -> NetworkInputSlice:
    if manifest.task == "generation":
        raise PluginError(f"{manifest.name} generates from noise: it takes no image to show")
    if manifest.dimensionality == "3D":
        raise PluginError(
            f"{manifest.name} is a 3D plugin: it is given the whole array as stored, not slices;"
            " --show-input shows what a 2D or 2.5D plugin is given"
        )
    layout = plane_layout(volume.geometry.direction, manifest.plane or "axial")
    stack = layout.to_stack(volume.voxels)
    index = stack.shape[0] // 2
    fitted = fit_input_scaling(volume.voxels, manifest.normalization)
    image = to_network(np.array(stack[index], dtype=np.float32), fitted)
    low, high = manifest.normalization.get("network_range", DEFAULT_NETWORK_RANGE)
    return NetworkInputSlice(image, index, stack.shape[0], (float(low), float(high)))
