"""``python main.py export INPUT [--dicom DIR] [--nifti OUT.nii.gz] [--annotations A.json]
[--sr SR.dcm] [--seg SEG.dcm] [--mask-nifti MASK.nii.gz] [--source SRC] [--keep-study]
[--deidentify] [--series UID] [--measurements OUT.json [--measure-with OTHER ...]]``.

Exports a volume (synthesized or not) and its annotations headlessly:

* ``--dicom DIR``: a derived DICOM series (Synthetic Data = YES and a SYNTHETIC description
  for synthesized volumes); ``--source`` names the acquired series it derives from (default:
  the input itself when it is DICOM); ``--keep-study`` files it into that study.
* ``--nifti``: NIfTI with the JSON provenance sidecar.
* ``--annotations``: the JSON sidecar to export (default: ``INPUT.annotations.json`` when
  present); ``--sr`` writes its measurements as DICOM SR (TID 1500), ``--seg`` its label mask
  as DICOM SEG, ``--mask-nifti`` the mask as NIfTI. SR and SEG refer to a DICOM series: the
  series written by ``--dicom`` when given, else the input when it is DICOM.
* ``--measurements OUT.json``: the ROI measurements of the annotations (line profiles, noise
  SD, CNR / contrast-to-background, noise power spectra; app.annotations.measurements) on the
  input and, for each ``--measure-with`` volume (e.g. the synthesized one), on it and on its
  difference from the input, at the same world coordinates.
* ``--deidentify``: everything written is de-identified: the derived series follows the
  PS3.15 Annex E basic profile (UIDs become this installation's pseudonyms, so two exports of one
  study stay one study), SR/SEG (which then need ``--dicom``) refer to that series, the NIfTI
  sidecar loses the source's description, and labels lose the source's known identifiers (the
  free text that stays is listed in a warning). A source marked Burned In Annotation YES is
  refused unless ``--allow-burned-in`` (then the series keeps Burned In Annotation YES).

Exit codes: 0 done, 2 bad input or an export that cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.writable import add_force_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="volume to export: DICOM folder/file or NIfTI")
    parser.add_argument("--series", metavar="UID", default=None, help="series of a DICOM input")
    parser.add_argument("--dicom", metavar="DIR", default=None, help="write a derived DICOM series here")
    parser.add_argument("--nifti", metavar="OUT.nii.gz", default=None, help="write NIfTI + JSON sidecar")
    parser.add_argument("--source", metavar="SRC", default=None, help="acquired DICOM series it derives from")
    parser.add_argument("--keep-study", action="store_true", help="put the series in the source's study")
    parser.add_argument("--deidentify", action="store_true", help="DICOM basic de-identification profile")
    parser.add_argument(
        "--allow-burned-in",
        action="store_true",
        help="with --deidentify: export a source marked Burned In Annotation YES anyway (kept marked YES)",
    )
    parser.add_argument("--annotations", metavar="A.json", default=None, help="annotation sidecar to export")
    parser.add_argument("--sr", metavar="SR.dcm", default=None, help="measurements as DICOM SR (TID 1500)")
    parser.add_argument("--seg", metavar="SEG.dcm", default=None, help="label mask as DICOM SEG")
    parser.add_argument("--mask-nifti", metavar="MASK.nii.gz", default=None, help="label mask as NIfTI")
    parser.add_argument(
        "--measurements", metavar="OUT.json", default=None, help="ROI measurements of the annotations as JSON"
    )
    parser.add_argument(
        "--measure-with",
        metavar="OTHER",
        action="append",
        default=[],
        help="also measure on this volume and its difference from INPUT (repeatable)",
    )
    add_force_argument(parser)


def run(args: argparse.Namespace) -> int:
    from app.annotations.sidecar import AnnotationFileError
    from app.io.dicom_export import ExportError
    from app.io.errors import LoadError

    try:
        for line in export(args):
            print(line)
    except (LoadError, ExportError, AnnotationFileError, OSError, ValueError) as error:
        print(f"export: {error}", file=sys.stderr)
        return 2
    return 0


def export(args: argparse.Namespace) -> list[str]:
    """Do the exports asked for; return one line per file or series written."""
    from app.annotations.sidecar import load_annotations, sidecar_path_for
    from app.io import dicom_export
    from app.io.loader import load_volume

    wanted = [args.dicom, args.nifti, args.sr, args.seg, args.mask_nifti, args.measurements]
    if not any(wanted):
        raise ValueError(
            "nothing to do: give at least one of --dicom, --nifti, --sr, --seg, --mask-nifti, --measurements"
        )
    if args.measure_with and not args.measurements:
        raise ValueError("--measure-with needs --measurements OUT.json")
    annotations_path = Path(args.annotations) if args.annotations else sidecar_path_for(args.input)
    _check_outputs(args, annotations_path)
    volume = load_volume(args.input, series_uid=args.series)
    # De-identifying needs the source's header (its identifiers, Burned In Annotation): read once.
    source = _source(volume, args) if args.deidentify else args.source
    written: list[str] = []
    derived_dir: Path | None = None
    if args.dicom:
        paths = dicom_export.write_derived_series(
            volume,
            args.dicom,
            source=source,
            keep_study_uid=args.keep_study,
            deidentify=args.deidentify,
            allow_burned_in=args.allow_burned_in,
            replace=args.force,
        )
        derived_dir = Path(args.dicom)
        written.append(f"{args.dicom}: {len(paths)} DICOM files")
        if args.deidentify and dicom_export.burned_in_annotation(volume, source):
            written.append(
                "warning: the source is marked Burned In Annotation YES: the de-identified pixels may still "
                "show identifying text (the series says Burned In Annotation YES)"
            )
    if args.nifti:
        # Derived from a series marked synthetic: the sidecar says synthetic, as the series would.
        marked = dicom_export.with_source_marking(volume, dicom_export.source_of(volume, source))
        written.append(str(dicom_export.write_derived_nifti(marked, args.nifti, deidentify=args.deidentify)))
    if not (args.sr or args.seg or args.mask_nifti or args.measurements):
        return written

    if not annotations_path.exists():
        raise FileNotFoundError(f"no annotation file {annotations_path} (give --annotations)")
    document = load_annotations(annotations_path)
    if args.deidentify:
        from app.io.annotation_export import deidentified_document, free_text_warning

        known = dicom_export.known_identifiers(volume, source)
        document, kept = deidentified_document(document, known)
        if kept:
            written.append(f"warning: {free_text_warning(kept)}")
    if args.mask_nifti:
        written.append(_mask_nifti(document, args.mask_nifti))
    if args.measurements:
        written.append(_measurements(document, volume, args.measure_with, args.measurements))
    if args.sr or args.seg:
        evidence = _evidence(volume, derived_dir, args)
        if args.sr:
            from app.io.dicom_sr import write_measurement_sr

            measured = volume if derived_dir is None else _reloaded(derived_dir)
            written.append(str(write_measurement_sr(document, evidence, args.sr, measured, args.deidentify)))
        if args.seg:
            from app.io.dicom_seg import write_label_seg

            if document.mask is None or document.mask.voxel_count() == 0:
                raise ValueError(f"{annotations_path.name} has no painted label mask for --seg")
            mask = document.mask
            try:
                written.append(
                    str(
                        write_label_seg(
                            mask.labels, mask.geometry, evidence, args.seg, mask.names, args.deidentify
                        )
                    )
                )
            except dicom_export.ExportError as error:
                if derived_dir is not None:
                    raise
                # e.g. a gantry-tilted input, corrected (resampled) on load: the mask is on the new grid.
                raise dicom_export.ExportError(
                    f"{error}; add --dicom DIR to write the volume as a series the SEG can refer to"
                ) from None
    return written


def _check_outputs(args: argparse.Namespace, annotations_path: Path) -> None:
    """The output policy (app.cli.writable), before anything is loaded or written."""
    from app.cli.writable import check_outputs, file_output, input_paths, nifti_output, series_output

    outputs = [
        series_output(args.dicom) if args.dicom else None,
        nifti_output(args.nifti) if args.nifti else None,
        file_output(args.sr) if args.sr else None,
        file_output(args.seg) if args.seg else None,
        nifti_output(args.mask_nifti) if args.mask_nifti else None,
        file_output(args.measurements) if args.measurements else None,
    ]
    inputs = input_paths(args.input, args.source, annotations_path, *args.measure_with)
    check_outputs(outputs, inputs, args.force)


def _evidence(volume, derived_dir: Path | None, args: argparse.Namespace) -> list:
    """Headers of the DICOM series SR/SEG refer to: the written series, else the DICOM input."""
    from app.io.annotation_export import evidence_headers
    from app.io.dicom_export import ExportError

    if derived_dir is None and args.deidentify:
        # A de-identified SR/SEG must refer to de-identified images, or its references dangle.
        raise ExportError(
            "--deidentify with --sr/--seg needs --dicom DIR: they refer to that de-identified series"
        )
    try:
        return evidence_headers(volume, derived_dir)
    except ExportError:
        raise ExportError(
            "SR and SEG refer to a DICOM series: the input is not DICOM, so also give --dicom DIR"
        ) from None


def _source(volume, args: argparse.Namespace):
    """The acquired series the input derives from (``--source``, or the DICOM input itself)."""
    from app.io.dicom_export import ExportError, source_of

    try:
        return source_of(volume, args.source)
    except ExportError:
        return None


def _reloaded(folder: Path):
    from app.io.loader import load_volume

    return load_volume(folder)


def _mask_nifti(document, path: str) -> str:
    from app.io.mask_nifti import save_label_mask_nifti

    if document.mask is None:
        raise ValueError("the annotation file has no label mask for --mask-nifti")
    mask = document.mask
    return str(save_label_mask_nifti(mask.labels, mask.geometry, path, mask.names))


def _measurements(document, volume, others: list[str], path: str) -> str:
    """The measurements block on INPUT, each OTHER and its difference, written atomically."""
    import json

    from app.annotations.measurements import compare_volumes, measurements_block
    from app.io.atomic import write_text_atomic
    from app.io.loader import load_volume

    volumes = compare_volumes(volume, [load_volume(other) for other in others])
    block = measurements_block(document, volumes)
    return str(write_text_atomic(path, json.dumps({"measurements": block}, indent=1, allow_nan=False)))
