"""``python main.py synthesize --plugin NAME_OR_FOLDER INPUT OUTPUT [--device cpu|cuda]``.

INPUT: a study or DICOM folder, a DICOM file, or a NIfTI file. OUTPUT: a ``.nii``/``.nii.gz``
file (with a JSON provenance sidecar) or a folder, which receives a derived DICOM series (new
UIDs, DERIVED\\SECONDARY, Synthetic Data YES, derivation description). A plugin given as a
folder path needs no installation. Exit status 0 on success, 2 on a clear, reported error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.writable import add_force_argument

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", required=True, help="plugin name (see 'plugins list') or plugin folder")
    parser.add_argument("input", help="study/DICOM folder, DICOM file or NIfTI file")
    parser.add_argument("output", help="output .nii/.nii.gz file, or a folder for a derived DICOM series")
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda", "mps"),
        default="auto",
        help="where the generator runs (default auto: a CUDA or Apple GPU when present, else the CPU)",
    )
    parser.add_argument("--series", default=None, help="SeriesInstanceUID to use when INPUT holds several")
    parser.add_argument("--batch-size", type=int, default=8, help="slices per forward pass (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="random seed recorded in the provenance")
    parser.add_argument("--no-amp", action="store_true", help="no float16 mixed precision on the GPU")
    parser.add_argument(
        "--allow-modality-mismatch",
        action="store_true",
        help="run even if the input modality is not the plugin's",
    )
    parser.add_argument(
        "--strict-domain",
        action="store_true",
        help="refuse to run when the input is outside the plugin's declared training domain",
    )
    parser.add_argument(
        "--keep-spacing",
        action="store_true",
        help="run at the input's voxel spacing instead of resampling to the plugin's training spacing_mm",
    )
    parser.add_argument(
        "--output-grid",
        choices=("auto", "input"),
        default="auto",
        help="auto: the input's grid, except a super-resolution plugin's output, kept on its finer training"
        " grid; input: always the input's grid",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    add_force_argument(parser)


def load_input_volume(path: str, series_uid: str | None = None):
    """The input as a Volume (``app.io.loader``: DICOM or NIfTI), imported when first needed."""
    from app.io.loader import load_volume

    return load_volume(path, series_uid=series_uid)


def write_output(volume, output: str, input_path: str, replace: bool = False) -> str:
    """NIfTI + sidecar for a .nii/.nii.gz path, else a derived DICOM series in that folder."""
    if output.lower().endswith(NIFTI_SUFFIXES):
        from app.io.nifti import save_nifti

        return str(save_nifti(volume, output))
    from app.io.dicom_export import write_derived_series

    source = input_path if not input_path.lower().endswith(NIFTI_SUFFIXES) else None
    files = write_derived_series(volume, output, source=source, replace=replace)
    return f"{output} ({len(files)} DICOM files)"


def domain_allows_run(manifest, volume, strict: bool) -> bool:
    """Print the out-of-distribution warnings (always, even with --quiet); False to refuse (strict)."""
    from app.analysis.ood import check_domain

    warnings = check_domain(volume, manifest).warnings
    for warning in warnings:
        print(f"warning: outside the training domain of {manifest.name}: {warning}", file=sys.stderr)
    if warnings and strict:
        print(
            f"synthesize: error: refused by --strict-domain ({len(warnings)} training-domain warning(s))",
            file=sys.stderr,
        )
        return False
    return True


def run(args: argparse.Namespace) -> int:
    from app.io.errors import LoadError
    from app.plugins.discovery import find_plugin
    from app.plugins.errors import PluginError

    def say(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr)

    try:
        manifest = find_plugin(args.plugin)
        if not Path(args.input).exists():
            raise FileNotFoundError(f"{args.input} does not exist")
        # Before the run, not after minutes of inference.
        from app.cli.writable import check_outputs, input_paths, nifti_output, series_output

        nifti = args.output.lower().endswith(NIFTI_SUFFIXES)
        output = nifti_output(args.output) if nifti else series_output(args.output)
        check_outputs([output], input_paths(args.input, manifest.folder), args.force)
        volume = load_input_volume(args.input, args.series)
        if not domain_allows_run(manifest, volume, args.strict_domain):
            return 2
        from app.plugins.runtime import RunOptions, synthesize

        options = RunOptions(
            device=args.device,
            batch_size=args.batch_size,
            mixed_precision=not args.no_amp,
            seed=args.seed,
            allow_modality_mismatch=args.allow_modality_mismatch,
            match_training_spacing=not args.keep_spacing,
            output_grid=args.output_grid,
        )
        say(
            f"{manifest.name} {manifest.version} on {volume.name} {volume.voxels.shape} ({volume.modality or '?'})"
        )
        last_tenth = [-1]

        def progress(fraction: float, message: str) -> None:
            tenth = int(fraction * 10)
            if tenth != last_tenth[0]:
                last_tenth[0] = tenth
                say(f"  {fraction:4.0%} {message}")

        result = synthesize(manifest, volume, options, progress=progress)
        for message in result.messages:
            say(f"note: {message}")
        written = write_output(result.volume, args.output, args.input, replace=args.force)
    except (PluginError, LoadError, OSError, ValueError) as error:
        print(f"synthesize: error: {error}", file=sys.stderr)
        return 2
    print(
        f"wrote {written}: SYNTHETIC ({manifest.name} {manifest.version}, {result.device}, {result.duration_s:.1f} s)"
    )
    return 0
