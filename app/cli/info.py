"""``python main.py info PATH [--json]``: the studies and series found at a path.

For each series: size (columns x rows x slices), spacing in mm, orientation letters and any
warnings (uneven spacing, gantry tilt, missing slices, split series); then the files that were
skipped and why. NIfTI files are described the same way. Headers only: no pixels are read for
DICOM. Exit status 0 when at least one image was found, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from app.core.volume import Geometry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="DICOM folder, DICOM file or NIfTI file")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")


def describe(path: Path) -> dict:
    """A JSON-ready description of what ``path`` holds. Raises ``LoadError``."""
    from app.io.loader import load_volume, scan_path
    from app.io.nifti import is_nifti_path

    if path.is_file() and is_nifti_path(path):
        volume = load_volume(path)
        return {
            "path": str(path),
            "format": "nifti",
            "studies": [],
            "volumes": [
                {
                    "name": volume.name,
                    "size": list(volume.size_ijk),
                    "spacing_mm": [round(float(v), 6) for v in volume.geometry.spacing_mm],
                    "origin_lps_mm": [round(float(v), 4) for v in volume.geometry.origin_lps_mm],
                    "orientation": volume.geometry.orientation_code(),
                    "oblique": volume.geometry.is_oblique(),
                    "dtype": str(volume.voxels.dtype),
                    "synthetic": volume.is_synthetic,
                    "colour": volume.is_colour,
                    "label_map": volume.label_map.to_dict() if volume.is_label_map else None,
                }
            ],
            "skipped": [],
        }
    result = scan_path(path)
    studies = []
    for study in result.studies:
        series_list = []
        for series in study.series:
            series_list.append(
                {
                    "uid": series.uid,
                    "series_instance_uid": series.series_instance_uid,
                    "number": series.number,
                    "modality": series.modality,
                    "description": series.description,
                    "size": list(series.size_ijk),
                    "spacing_mm": [round(v, 6) for v in series.spacing_mm],
                    "origin_lps_mm": [round(v, 4) for v in series.origin_lps_mm],
                    "orientation": series.orientation,
                    "oblique": Geometry(np.zeros(3), np.ones(3), np.array(series.direction)).is_oblique(),
                    "files": len(series.files),
                    "transfer_syntax": series.transfer_syntax_uid,
                    "synthetic": series.synthetic,
                    "colour": series.samples_per_pixel == 3 or series.photometric == "PALETTE COLOR",
                    "photometric": series.photometric,
                    "warnings": list(series.warnings),
                }
            )
        studies.append(
            {
                "uid": study.uid,
                "description": study.description,
                "patient_name": study.patient_name,
                "patient_id": study.patient_id,
                "date": study.date,
                "series": series_list,
            }
        )
    skipped = [{"path": s.path, "reason": s.reason} for s in result.skipped]
    return {"path": str(path), "format": "dicom", "studies": studies, "volumes": [], "skipped": skipped}


def format_text(description: dict) -> str:
    lines = [f"{description['path']}"]
    for volume in description["volumes"]:
        lines.append(
            f"  NIfTI {volume['name']}: {' x '.join(map(str, volume['size']))} voxels, "
            f"spacing {' x '.join(f'{v:g}' for v in volume['spacing_mm'])} mm, {volume['orientation']}{' (oblique: nearest axes)' if volume['oblique'] else ''}"
            + ("  [SYNTHETIC]" if volume["synthetic"] else "")
            + (_label_map_text(volume["label_map"]) if volume.get("label_map") else "")
        )
    for study in description["studies"]:
        lines.append(
            f"Study {study['uid']}  {study['description'] or '(no description)'}  "
            f"patient {study['patient_name'] or '?'} ({study['patient_id'] or '?'})  {study['date']}"
        )
        for series in study["series"]:
            lines.append(
                f"  Series {series['number'] if series['number'] is not None else '-'} "
                f"{series['modality'] or '??'} {series['description'] or '(no description)'}"
                + (f"  [colour: {series['photometric']}]" if series["colour"] else "")
                + ("  [SYNTHETIC]" if series["synthetic"] else "")
            )
            lines.append(f"    uid {series['uid']}")
            lines.append(
                f"    {' x '.join(map(str, series['size']))} voxels, spacing "
                f"{' x '.join(f'{v:g}' for v in series['spacing_mm'])} mm, orientation "
                f"{series['orientation']}{' (oblique: nearest axes)' if series['oblique'] else ''},"
                f" {series['files']} file(s)"
            )
            for warning in series["warnings"]:
                lines.append(f"    warning: {warning}")
    if description["skipped"]:
        lines.append(f"Skipped {len(description['skipped'])} file(s):")
        for skipped in description["skipped"]:
            lines.append(f"  {skipped['path']}: {skipped['reason']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from app.io.errors import LoadError

    path = Path(args.path)
    try:
        description = describe(path)
    except LoadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(description, indent=2))
    else:
        print(format_text(description))
    found = description["volumes"] or any(study["series"] for study in description["studies"])
    if not found:
        print(f"error: no image series found in {path}", file=sys.stderr)
        return 1
    return 0


def _label_map_text(record: dict) -> str:
    source = ", of a SYNTHETIC image" if record.get("source_synthetic") else ""
    return f"  [LABEL MAP: {record.get('plugin_name', '')} {record.get('plugin_version', '')}, derived{source}, not an image]"
