"""Segmentation consistency of a compared pair: segment both volumes, compare the label maps.

The one recipe behind ``compare --segment`` and the viewer's consistency check: the original is
segmented by one plugin, the synthesized volume by the same or (cross-modality) another; the
synthesized volume's labels are taken onto the original's grid (nearest) and compared there
(``app.analysis.seg_consistency``). Label maps come back as derived Volumes (``Volume.label_map``),
never marked synthetic; the disagreement map is one too (region index per voxel).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.analysis.seg_consistency import (
    LISTED_BY_DEFAULT,
    RegionFilter,
    SegmentationConsistency,
    compare_label_maps,
    labels_on_grid,
)
from app.core.label_map import LabelEntry, LabelMapProvenance, label_names
from app.core.label_overlays import DISAGREEMENT_COLOUR
from app.core.volume import Volume
from app.plugins.errors import InputMismatchError
from app.plugins.manifest import KIND_CHANGING_TASKS, PluginManifest
from app.plugins.runtime import CancelCallback, ProgressCallback, segment


@dataclass
class ConsistencyRun:
    """Both label maps (each on its own volume's grid), the comparison on the original's grid,
    the disagreement map (a derived label map: region index, 0 where the labels agree)."""

    original_labels: Volume
    synthesized_labels: Volume
    result: SegmentationConsistency
    disagreement: Volume
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The ``consistency`` block of ``compare --json``."""
        block = {
            "grid": "original",
            "segmentations": {
                "original": self.original_labels.label_map.to_dict(),
                "synthesized": self.synthesized_labels.label_map.to_dict(),
            },
            **self.result.to_dict(),
        }
        block["notes"] = self.notes + block["notes"]
        return block


def _stage(progress: ProgressCallback | None, low: float, high: float, role: str) -> ProgressCallback | None:
    """A plugin run's progress as part of the whole check (two runs: 0-0.5 and 0.5-1)."""
    if progress is None:
        return None
    return lambda fraction, message: progress(
        low + (high - low) * fraction, f"segmenting the {role}: {message}"
    )


def disagreement_volume(result: SegmentationConsistency, labels_original: Volume) -> Volume:
    """The disagreement regions as a derived label map on the original's label grid."""
    provenance = labels_original.label_map
    entries = (
        LabelEntry(0, "labels agree", (0, 0, 0)),
        *(LabelEntry(r.index, f"disagreement region {r.index}", DISAGREEMENT_COLOUR) for r in result.regions),
    )
    return Volume(
        voxels=result.region_map.astype(np.int32, copy=False),
        geometry=labels_original.geometry,
        modality="SEG",
        units="label",
        name="segmentation disagreement",
        label_map=LabelMapProvenance(
            plugin_name="segmentation consistency",
            plugin_version=provenance.plugin_version if provenance else "",
            labels=entries,
            source_description=labels_original.name,
        ),
    )


def domain_notes(original: Volume, synthesized: Volume, manifests: tuple[PluginManifest, PluginManifest]) -> list[str]:
    """Warnings (as notes) that a segmenter is run outside its training domain, and that the
    synthesized volume of a kind-changing generator is segmented by the original's segmenter."""
    from app.analysis.ood import check_domain

    notes = []
    for role, manifest, volume in (("original", manifests[0], original), ("synthesized", manifests[1], synthesized)):
        notes += [
            f"warning: segmenting the {role}: outside the training domain of {manifest.name}: {warning}"
            for warning in check_domain(volume, manifest).warnings
        ]
    # A kind-changing generator's output is outside what a segmenter made for its input was made
    # for (a different contrast is not refused by modality).
    task = synthesized.provenance.task if synthesized.provenance is not None else ""
    if task in KIND_CHANGING_TASKS and manifests[1].folder == manifests[0].folder:
        made_for = " ".join(filter(None, ("/".join(manifests[0].input_modalities), manifests[0].input_contrast)))
        notes.append(
            f"warning: the synthesized volume comes from a {task} generator"
            f" ({synthesized.provenance.plugin_name}) but is segmented by {manifests[0].name}, made for"
            f" {made_for or 'the original'} images: its labels may differ because the segmenter is out of"
            " its domain, not because anatomy changed; give --segment-synthesized PLUGIN2 made for the"
            " synthesized image's kind"
        )
    return notes


def _inside_overlap(labels_original: Volume, labels_synthesized: Volume) -> tuple[np.ndarray, str]:
    """The original's labels where the synthesized volume has voxels (background elsewhere, as
    the synthesized map has there), and a note when that leaves some out: a synthesized volume
    covering part of the original's field of view did not remove the anatomy outside it."""
    original = np.asarray(labels_original.voxels)
    if labels_synthesized.shape_kji == labels_original.shape_kji and labels_synthesized.geometry.allclose(
        labels_original.geometry
    ):
        return original, ""
    ones = labels_synthesized.with_voxels(np.ones(labels_synthesized.shape_kji, dtype=np.int16))
    covered = labels_on_grid(ones, labels_original.geometry, labels_original.shape_kji) > 0
    if covered.all():
        return original, ""
    if not covered.any():
        raise InputMismatchError(
            "the synthesized volume does not overlap the original in space: no label can be compared"
        )
    left_out = float(np.count_nonzero(~covered & (original != 0))) * float(
        np.prod(labels_original.geometry.spacing_mm)
    ) / 1000.0
    note = (
        f"the synthesized volume covers {100.0 * covered.mean():.1f} % of the original's voxels: labels"
        f" are compared inside that overlap only ({left_out:.3g} mL of the original's labels outside it"
        " left out, not counted as removed)"
    )
    return np.where(covered, original, 0).astype(original.dtype, copy=False), note


def run_consistency(
    original: Volume,
    synthesized: Volume,
    manifests: tuple[PluginManifest, PluginManifest],
    region_filter: RegionFilter = LISTED_BY_DEFAULT,
    progress: ProgressCallback | None = None,
    cancel: CancelCallback | None = None,
) -> ConsistencyRun:
    """Segment ``original`` with ``manifests[0]`` and ``synthesized`` with ``manifests[1]`` and
    compare the two label maps on the original's grid; ``region_filter`` says which disagreement
    regions are listed (by default those of 50 mm^3 or more, one-voxel boundary jitter ignored)."""
    first, second = manifests
    runs = {}
    for role, manifest, volume, stage in (
        ("original", first, original, (0.0, 0.5)),
        ("synthesized", second, synthesized, (0.5, 1.0)),
    ):
        try:
            runs[role] = segment(manifest, volume, progress=_stage(progress, *stage, role), cancel=cancel)
        except InputMismatchError as error:
            hint = " (give --segment-synthesized PLUGIN2 for its modality)" if role == "synthesized" else ""
            raise InputMismatchError(f"segmenting the {role} volume: {error}{hint}") from None
    labels_original = runs["original"].volume
    labels_synthesized = runs["synthesized"].volume
    on_grid = labels_on_grid(labels_synthesized, labels_original.geometry, labels_original.shape_kji)
    names = label_names(first.labels)
    compared, overlap_note = _inside_overlap(labels_original, labels_synthesized)
    result = compare_label_maps(compared, on_grid, labels_original.geometry, names, region_filter)
    notes = [f"segmenting the {role}: {message}" for role, run in runs.items() for message in run.messages]
    notes += domain_notes(original, synthesized, manifests)
    if overlap_note:
        notes.append(overlap_note)
    if label_names(second.labels) != names:
        notes.append(
            f"{first.name} and {second.name} name their labels differently: labels compared by value,"
            f" named as {first.name} names them"
        )
    if labels_synthesized.shape_kji != labels_original.shape_kji or not labels_synthesized.geometry.allclose(
        labels_original.geometry
    ):
        notes.append("the synthesized volume's labels were resampled (nearest) onto the original's grid")
    return ConsistencyRun(
        original_labels=labels_original,
        synthesized_labels=labels_synthesized,
        result=result,
        disagreement=disagreement_volume(result, labels_original),
        notes=notes,
    )
