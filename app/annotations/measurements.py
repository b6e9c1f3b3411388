"""Every ROI measurement of a document, mirrored on each compare volume, as one JSON block.

For each volume (panel: original, synthesized, difference, ...) the block holds, at the same
world coordinates: the line profile along every ruler; mean, noise SD and voxel count in every
planar ROI; the noise power spectrum of every ROI that lies in a plane of that volume's grid
and covers at least 8 x 8 voxels (otherwise the reason); and CNR / contrast-to-background for
every (signal, background) pair. Without explicit pairs, ROIs labelled "background..." (or
"bg...") are backgrounds and every other ROI is measured against each of them.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.annotations.document import AnnotationDocument
from app.annotations.line_profile import compare_line_profile
from app.annotations.nps import nps_2d
from app.annotations.roi_contrast import cnr, noise_sd
from app.annotations.roi_stats import volume_units
from app.annotations.shapes import PlanarRegion, Ruler
from app.core.compare_pair import difference
from app.core.volume import Volume

BACKGROUND_PREFIXES = ("background", "bg")

DEFINITIONS = {
    "line_profile": "trilinear samples along the ruler; distance_mm from its start; null outside the volume",
    "noise_sd": "sample standard deviation (n - 1) of the voxels in the ROI",
    "cnr": "|mean_signal - mean_background| / sd_background",
    "contrast_to_background": "(mean_signal - mean_background) / mean_background",
    "nps": "radially averaged 2D NPS = dx dy / (Nx Ny) |DFT(ROI - trend)|^2, cycles/mm (AAPM TG-233)",
}


def compare_volumes(original: Volume, others: list[Volume]) -> dict[str, Volume]:
    """The panels of a comparison, named as the viewer heads them: the original, each other
    volume ("synthesized" / "acquired", numbered when several) and its difference map."""
    volumes = {"synthesized (reference)" if original.is_synthetic else "original": original}
    for number, other in enumerate(others, start=1):
        suffix = f" {number}" if len(others) > 1 else ""
        volumes[("synthesized" if other.is_synthetic else "acquired") + suffix] = other
        volumes["difference" + suffix] = difference(original, other).volume
    return volumes


def is_background(region: PlanarRegion) -> bool:
    return region.label.strip().lower().startswith(BACKGROUND_PREFIXES)


def default_contrast_pairs(regions: Iterable[PlanarRegion]) -> list[tuple[str, str]]:
    """(signal id, background id) for every non-background ROI against every background ROI."""
    regions = list(regions)
    backgrounds = [region for region in regions if is_background(region)]
    return [
        (signal.annotation_id, background.annotation_id)
        for signal in regions
        if not is_background(signal)
        for background in backgrounds
    ]


def measurements_block(
    document: AnnotationDocument,
    volumes: dict[str, Volume],
    contrast_pairs: list[tuple[str, str]] | None = None,
    step_mm: float | None = None,
) -> dict:
    """The ``measurements`` block of an annotation export (JSON-ready: NaN written as null)."""
    scalar = {name: volume for name, volume in volumes.items() if not volume.is_colour}
    rulers = [item for item in document if isinstance(item, Ruler)]
    regions = [item for item in document if isinstance(item, PlanarRegion)]
    by_id = {region.annotation_id: region for region in regions}
    pairs = default_contrast_pairs(regions) if contrast_pairs is None else contrast_pairs
    panels: dict[str, dict] = {
        name: {"units": volume_units(volume), "line_profiles": [], "noise": [], "nps": [], "contrast": []}
        for name, volume in scalar.items()
    }
    for ruler in rulers:
        try:
            profiles = {
                name: profile.to_dict()
                for name, profile in compare_line_profile(scalar, ruler.start_lps, ruler.end_lps, step_mm).items()
            }
        except ValueError as error:
            profiles = {name: {"not_measured": str(error)} for name in scalar}
        for name, profile in profiles.items():
            panels[name]["line_profiles"].append(_tagged(ruler, profile))
    for region in regions:
        for name, volume in scalar.items():
            panels[name]["noise"].append(_tagged(region, noise_sd(volume, region).to_dict()))
            try:
                spectrum = nps_2d(volume, region).to_dict()
            except ValueError as error:
                spectrum = {"not_measured": str(error)}
            panels[name]["nps"].append(_tagged(region, spectrum))
    for signal_id, background_id in pairs:
        if signal_id not in by_id or background_id not in by_id:
            raise ValueError(f"contrast pair ({signal_id}, {background_id}) names an ROI not in the document")
        signal, background = by_id[signal_id], by_id[background_id]
        for name, volume in scalar.items():
            entry = {
                "signal_id": signal_id,
                "signal_label": signal.label,
                "background_id": background_id,
                "background_label": background.label,
            }
            entry.update(cnr(volume, signal, background).to_dict())
            panels[name]["contrast"].append(entry)
    return {"coordinate_system": "LPS_mm", "definitions": dict(DEFINITIONS), "volumes": panels}


def _tagged(annotation, values: dict) -> dict:
    return {"annotation_id": annotation.annotation_id, "label": annotation.label, **values}
