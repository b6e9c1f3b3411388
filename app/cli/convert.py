"""``python main.py convert INPUT OUTPUT.nii.gz [--series UID]``: write a series as NIfTI.

The affine is the RAS one dcm2niix users expect (sform and qform, code 1). When INPUT holds
several series, ``--series`` picks one (the UID printed by ``info``); without it the command
refuses and lists them rather than guess. A synthesized input keeps its provenance sidecar.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.writable import add_force_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="DICOM folder, DICOM file or NIfTI file")
    parser.add_argument("output", help="output .nii or .nii.gz file")
    parser.add_argument("--series", metavar="UID", default=None, help="series UID (see `info`)")
    add_force_argument(parser)


def run(args: argparse.Namespace) -> int:
    from app.cli.writable import OutputRefused, check_outputs, input_paths, nifti_output
    from app.io.atomic import WriteFailed
    from app.io.errors import LoadError
    from app.io.loader import load_volume, scan_path
    from app.io.nifti import is_nifti_path, save_nifti

    source, output = Path(args.input), Path(args.output)
    if not is_nifti_path(output):
        print(f"error: {output} must end in .nii or .nii.gz", file=sys.stderr)
        return 2
    try:
        check_outputs([nifti_output(output)], input_paths(source), args.force)
    except OutputRefused as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        if not args.series and source.exists() and not is_nifti_path(source):
            found = scan_path(source).all_series()
            if len(found) > 1:
                print(
                    f"error: {source} holds {len(found)} series; choose one with --series UID:",
                    file=sys.stderr,
                )
                for series in found:
                    size = " x ".join(map(str, series.size_ijk))
                    print(f"  {series.uid}  {series.modality} {series.description!r} {size}", file=sys.stderr)
                return 2
        volume = load_volume(source, series_uid=args.series)
        save_nifti(volume, output)
    except (LoadError, WriteFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: cannot write {output} ({error})", file=sys.stderr)
        return 1
    size = " x ".join(map(str, volume.size_ijk))
    print(f"wrote {output} ({size} voxels, {volume.geometry.orientation_code()}, {volume.voxels.dtype})")
    for warning in volume.load_warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0
