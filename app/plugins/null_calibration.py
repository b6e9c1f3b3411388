"""A plugin's healthy-residual calibration (``calibration.json`` beside its manifest).

The file is plain JSON data (``app.analysis.detection.NullCalibration``): false regions per
litre of the plugin's residual z map on lesion-free inputs. ``compare`` and the viewer's
hallucination panel read it for the plugin named in the synthesized volume's provenance, so
the default operating point knows how much this generator changes healthy tissue.
"""

from __future__ import annotations

import re

from app.analysis.detection import CALIBRATION_FILE, NullCalibration
from app.core.volume import Volume


def calibration_for_plugin(name_or_folder: str) -> tuple[NullCalibration | None, str]:
    """(calibration, note): the note says why there is none, or which file was used."""
    from app.plugins.discovery import find_plugin

    try:
        manifest = find_plugin(name_or_folder)
    except Exception as error:  # noqa: BLE001 - a missing plugin only loses its calibration
        return None, f"no null calibration: plugin {name_or_folder!r} not found ({error})"
    path = manifest.folder / CALIBRATION_FILE
    if not path.is_file():
        return None, f"no null calibration for {manifest.name} (no {CALIBRATION_FILE} in its folder)"
    try:
        calibration = NullCalibration.load(path)
    except (OSError, ValueError, KeyError, TypeError) as error:
        return None, f"{path}: unreadable null calibration ignored ({error})"
    measured = _WEIGHTS_IN_SOURCE.search(calibration.source)
    if measured and not manifest.weights.sha256.lower().startswith(measured.group(1).lower()):
        # Weights retrained or replaced after the calibration: it measured another generator.
        return None, (
            f"{path}: null calibration ignored: measured for weights sha256 {measured.group(1)}, the plugin's"
            f" weights are {manifest.weights.sha256[:12]} (run app.plugins.training.calibrate_null again)"
        )
    return calibration, f"null calibration of {manifest.name}: {calibration.source}"


# calibrate_null records the weights it ran in its source line ("...; weights sha256 6bfa8709bc9e").
_WEIGHTS_IN_SOURCE = re.compile(r"weights sha256 ([0-9a-fA-F]{8,64})\b")


def calibration_for_volume(synthesized: Volume) -> tuple[NullCalibration | None, str]:
    """The calibration of the plugin that made ``synthesized`` (from its provenance)."""
    provenance = synthesized.provenance
    if provenance is None or not provenance.plugin_name:
        return None, ""
    return calibration_for_plugin(provenance.plugin_name)
