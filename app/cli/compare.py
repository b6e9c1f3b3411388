"""``python main.py compare ORIGINAL SYNTHESIZED [--reference REF] [--json OUT.json] [--report OUT.html]``.

Computes the hallucination maps and metrics headlessly (no Qt): the residual's flagged regions
(centroid in LPS mm, volume in mL, peak residual) and MAE/MSE/PSNR/SSIM/NCC with the data range
stated. Prints a summary; ``--json`` writes the full result, ``--report`` the HTML report.
Exit codes: 0 done, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.cli.writable import add_force_argument
from app.core.json_values import json_safe

# The smoothing matches lesions of a few mm; beyond a few cm it blurs the head into one value
# (and an infinite sigma crashed scipy, a huge one asked for tens of GB).
MAX_SIGMA_MM = 50.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("original", help="the generator's input (DICOM folder/file or NIfTI)")
    parser.add_argument("synthesized", help="the generator's output (DICOM folder/file or NIfTI)")
    parser.add_argument(
        "--reference", metavar="REF", default=None, help="a real acquisition of the target kind"
    )
    parser.add_argument("--json", metavar="OUT.json", default=None, help="write regions and metrics as JSON")
    parser.add_argument(
        "--report", metavar="OUT.html", default=None, help="write the HTML hallucination report"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="flag the smoothed |residual| above this, in image units, instead of the calibrated z map",
    )
    parser.add_argument(
        "--false-regions",
        metavar="N",
        type=float,
        default=None,
        help="the default operating point: expected false regions per healthy volume (default 1)",
    )
    parser.add_argument("--sigma-mm", type=float, default=1.0, help="Gaussian smoothing of the residual (mm)")
    parser.add_argument("--min-volume-ml", type=float, default=0.0, help="ignore smaller regions")
    parser.add_argument(
        "--cycle",
        metavar="RECON",
        default=None,
        help="G_BA(G_AB(original)) from a CycleGAN's reverse generator",
    )
    parser.add_argument(
        "--ensemble",
        metavar="PATH",
        nargs="+",
        default=None,
        help="other outputs of the same task (checkpoints, MC-dropout or TTA runs): adds a per-voxel SD map",
    )
    parser.add_argument(
        "--plugin",
        metavar="NAME",
        default=None,
        help="the plugin that made SYNTHESIZED: checks ORIGINAL against its training domain and runs it again"
        " for --tta / --perturbation",
    )
    parser.add_argument(
        "--field-metrics",
        action="store_true",
        help="also MI, NMI, UQI, VIF-p and MS-SSIM (against the reference, else the original when of the same kind)",
    )
    parser.add_argument(
        "--lpips-weights",
        metavar="PATH",
        default=None,
        help="with the field metrics: LPIPS from this file, the state dict of lpips.LPIPS(net='alex') (never"
        " downloaded; the figure is not validated for medical images)",
    )
    parser.add_argument(
        "--fid-weights",
        metavar="PATH",
        default=None,
        help="with the field metrics: FID between the two volumes' axial slices (a small-sample figure) from"
        " this file, pytorch-fid's FID Inception weights (never downloaded; not validated for medical images)",
    )
    parser.add_argument(
        "--segment",
        metavar="PLUGIN",
        default=None,
        help="a segmentation plugin run on both volumes: adds a consistency block (per-label Dice, volume"
        " change, HD95, disagreement regions)",
    )
    parser.add_argument(
        "--segment-synthesized",
        metavar="PLUGIN2",
        default=None,
        help="with --segment: the segmentation plugin for the synthesized volume (a cross-modality pair)",
    )
    parser.add_argument(
        "--segment-min-region-mm3",
        metavar="MM3",
        type=float,
        default=None,
        help="with --segment: list disagreement regions of at least this volume (default 50 mm^3)",
    )
    parser.add_argument(
        "--segment-keep-jitter",
        action="store_true",
        help="with --segment: also list one-voxel boundary jitter (ignored by default: a boundary that moved by"
        " one voxel is not a region)",
    )
    parser.add_argument("--tta", action="store_true", help="with --plugin: test-time augmentation SD map")
    parser.add_argument(
        "--perturbation",
        metavar="FRACTION",
        type=float,
        default=None,
        help="with --plugin: change map for input noise of SD = FRACTION x the input's intensity range",
    )
    add_force_argument(parser)


def load_any(path: str):
    """A Volume from a DICOM or NIfTI path, through the io package's loader when present."""
    try:
        from app.io.loader import load_volume
    except ImportError:  # the general loader not available: NIfTI only
        from app.io.nifti import load_nifti

        return load_nifti(path)
    volume = load_volume(path)
    if volume.is_colour:
        raise ValueError(f"{path} is a colour (RGB) image; compare measures greyscale volumes")
    return volume


def plugin_checks(
    plugin_name: str, original, tta: bool, perturbation: float | None, synthesized=None
) -> tuple[dict, list[str]]:
    """Out-of-distribution warnings and the maps that need the generator run again (through
    ``app.plugins.uncertainty_runs``: torch stays in app.plugins, never in app.analysis)."""
    from app.analysis.ood import check_domain
    from app.plugins.discovery import find_plugin

    manifest = find_plugin(plugin_name)
    notes = [
        f"out of the training domain of {manifest.name}: {w}"
        for w in check_domain(original, manifest).warnings
    ]
    if not tta and perturbation is None:
        return {}, notes
    from app.plugins.loading import load_plugin
    from app.plugins.rerun_maps import MapRequest
    from app.plugins.uncertainty_runs import compute_map

    loaded = load_plugin(manifest)
    maps = {}
    if tta:
        maps["TTA SD"] = compute_map(MapRequest("tta"), loaded, original, synthesized)
    if perturbation is not None:
        change = compute_map(
            MapRequest("perturbation", noise_fraction=perturbation), loaded, original, synthesized
        )
        maps[change.name] = change
    return maps, notes


def _plugin_mismatch(plugin_name: str, synthesized) -> str | None:
    """Why ``--plugin`` cannot be the generator of ``synthesized`` (its provenance names
    another), or None: its calibration, domain and reruns would be another generator's."""
    from app.core.provenance import UNKNOWN_GENERATOR
    from app.plugins.discovery import find_plugin

    provenance = synthesized.provenance
    if provenance is None or not provenance.plugin_name or provenance.plugin_name == UNKNOWN_GENERATOR:
        return None
    try:
        manifest = find_plugin(plugin_name)
    except Exception:  # noqa: BLE001 - not found or broken: said where the plugin is loaded
        return None
    if manifest.name == provenance.plugin_name:
        return None
    return (
        f"--plugin {plugin_name} is {manifest.name}, but the synthesized volume was made by"
        f" {provenance.plugin_name} (its provenance): the check would read another generator's"
        f" calibration; name {provenance.plugin_name}, or leave --plugin out to use it"
    )


def find_segmentation_plugins(first: str, second: str | None) -> tuple:
    """The manifests for ``--segment`` / ``--segment-synthesized``, refused at once if they are not
    segmentation plugins (before any map is computed)."""
    from app.plugins.discovery import find_plugin
    from app.plugins.errors import PluginError

    manifests = []
    for option, name in (("--segment", first), ("--segment-synthesized", second or first)):
        manifest = find_plugin(name)
        if not manifest.is_segmentation:
            raise PluginError(
                f"{option} {name}: {manifest.name} is a {manifest.task} plugin, not a segmentation plugin"
            )
        manifests.append(manifest)
    return tuple(manifests)


def segmentation_consistency(original, synthesized, manifests: tuple, region_filter) -> dict:
    """Both volumes segmented and compared on the original's grid (``app.plugins.seg_check``)."""
    from app.plugins.seg_check import run_consistency

    return run_consistency(original, synthesized, manifests, region_filter).to_dict()


def _region_filter(args: argparse.Namespace):
    """Which disagreement regions compare --segment lists (``app.analysis.seg_consistency``)."""
    from app.analysis.seg_consistency import DEFAULT_MIN_REGION_MM3, RegionFilter

    minimum = DEFAULT_MIN_REGION_MM3 if args.segment_min_region_mm3 is None else args.segment_min_region_mm3
    return RegionFilter(min_region_mm3=minimum, ignore_boundary_jitter=not args.segment_keep_jitter)


def _print_consistency(block: dict) -> None:
    plugins = " / ".join(dict.fromkeys(s["plugin_name"] for s in block["segmentations"].values()))
    print(f"consistency (segmented by {plugins}):")
    for label in block["labels"]:
        change = _number(label["volume_change_percent"], "+.1f")
        print(
            f"  {label['name']}: Dice {_number(label['dice'], '.4f')}  volume change"
            f" {_number(label['volume_change_ml'], '+.3f')} mL ({change} %)  HD95 {_number(label['hd95_mm'], '.2f')} mm"
        )
    print(
        f"  {len(block['regions'])} disagreement region(s) listed ({block['region_filter']['description']};"
        f" {block['unlisted_regions']} smaller left out, {block['boundary_jitter_voxels']} jitter voxels),"
        f" {block['disagreement_ml']:.3f} mL of differing labels in all"
    )
    for region in block["regions"][:10]:
        centroid = ", ".join(f"{v:.1f}" for v in region["centroid_lps_mm"])
        changes = "; ".join(c["description"] for c in region["changes"][:3])
        print(f"    LPS ({centroid}) mm  {region['volume_ml']:.3f} mL  {changes}")
    for note in block["notes"]:
        if note.startswith("warning: "):
            print(f"  {note}")


def _number(value, spec: str) -> str:
    """A metric for the console: formatted when a number, as JSON has it otherwise ('inf', n/a)."""
    if isinstance(value, (int, float)):
        return format(value, spec)
    return "n/a" if value is None else str(value)


def _field_metrics(volumes: dict, input_comparable: bool, lpips=None, fid=None) -> dict | None:
    """MI, NMI, UQI, VIF-p, MS-SSIM, FSIM, GMSD of the synthesized volume against the reference,
    else the original when the two are images of one kind; printed, and returned for the JSON."""
    from dataclasses import replace

    from app.analysis.field_metrics import axial_arrays, field_metrics, scaled_axial_slices
    from app.plugins.fid_metric import MAX_IMAGES, fid_entry
    from app.plugins.lpips_metric import lpips_entry
    from app.plugins.piq_metrics import fsim_gmsd

    against = (
        "reference" if volumes.get("reference") is not None else ("original" if input_comparable else None)
    )
    if against is None:
        print("field metrics: not computed (a cross-modality pair and no --reference)")
        return None
    base, synthesized, orientation_note = axial_arrays(volumes[against], volumes["synthesized"])
    metrics = field_metrics(base, synthesized, fsim_gmsd=fsim_gmsd)
    if orientation_note:
        metrics = replace(metrics, note=f"{metrics.note}; {orientation_note}")
    print(
        f"field metrics vs {against}: MI {_number(metrics.mutual_information_nats, '.4f')} nats"
        f"  NMI {_number(metrics.normalized_mutual_information, '.4f')}"
        f"  UQI {_number(metrics.uqi, '.4f')}  VIF-p {_number(metrics.vifp, '.4f')}  MS-SSIM {_number(metrics.ms_ssim, '.4f')}"
        f"  FSIM {_number(metrics.fsim, '.4f')}  GMSD {_number(metrics.gmsd, '.4f')}"
        f"  (data range {_number(metrics.data_range, '.4g')};"
        f" {metrics.note})"
    )
    for name, reason in (metrics.absent or {}).items():
        print(f"  {name}: {reason}")
    _, pairs, _ = scaled_axial_slices(base, synthesized, metrics.data_range)
    learned = {"lpips": lpips_entry(lpips, pairs)}
    fid_pairs = (
        scaled_axial_slices(base, synthesized, metrics.data_range, MAX_IMAGES)[1] if fid else []
    )
    learned["fid"] = fid_entry(fid, fid_pairs)
    for name, entry in learned.items():
        sample = f"; {entry.sample_note}" if getattr(entry, "sample_note", None) else ""
        if entry.value is None:
            print(f"  {name.upper()}: not computed ({entry.reason})")
        else:
            print(
                f"  {name.upper()} {entry.value:.4f} ({entry.warning}{sample}; weights {entry.weights_file}"
                f" sha256 {entry.weights_sha256})"
            )
    return {
        "against": against,
        **metrics.to_dict(),
        **{name: entry.to_dict() for name, entry in learned.items()},
    }


class _WeightsRefused(Exception):
    """A --lpips-weights / --fid-weights file that cannot be used: the one-line message."""


def _learned_metric_networks(args: argparse.Namespace) -> tuple:
    """(LPIPS, FID) networks from the weights files given, None where none is; either implies
    --field-metrics. A file that is missing or not the expected network: ``_WeightsRefused``."""
    import importlib

    networks = []
    for option, path, module, loader in (
        ("--lpips-weights", args.lpips_weights, "app.plugins.lpips_metric", "load_lpips"),
        ("--fid-weights", args.fid_weights, "app.plugins.fid_metric", "load_fid"),
    ):
        if not path:
            networks.append(None)
            continue
        args.field_metrics = True
        try:  # torch is imported only when a file is given
            networks.append(getattr(importlib.import_module(module), loader)(path))
        except Exception as error:  # noqa: BLE001 - a wrong weights file: a clear message, exit code 2
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise _WeightsRefused(f"{option} {path}: {reason}") from error
    return tuple(networks)


def run(args: argparse.Namespace) -> int:
    from app.cli.writable import OutputRefused, check_outputs, file_output, input_paths, plugin_folders

    volumes = {}
    roles = [(role, getattr(args, role)) for role in ("original", "synthesized", "reference", "cycle")]
    roles += [(f"ensemble {n + 1}", path) for n, path in enumerate(args.ensemble or [])]
    try:  # said now, not after the maps are computed
        outputs = [file_output(path) for path in (args.json, args.report) if path]
        read = [path for _, path in roles] + [args.lpips_weights, args.fid_weights]
        read += plugin_folders(args.plugin, args.segment, args.segment_synthesized)
        check_outputs(outputs, input_paths(*read), args.force)
    except OutputRefused as error:
        print(f"compare: {error}", file=sys.stderr)
        return 2
    for role, path in roles:
        if path is None:
            continue
        if not Path(path).exists():
            print(f"compare: {role} {path}: no such file or folder", file=sys.stderr)
            return 2
        try:
            volumes[role] = load_any(path)
        except Exception as error:  # noqa: BLE001 - bad input: a clear message, exit code 2
            print(f"compare: cannot open {role} {path}: {type(error).__name__}: {error}", file=sys.stderr)
            return 2
    if args.threshold is not None and not args.threshold > 0:
        print("compare: --threshold must be positive", file=sys.stderr)
        return 2
    if not 0 <= args.sigma_mm <= MAX_SIGMA_MM:  # NaN fails too
        print(f"compare: --sigma-mm must be 0 to {MAX_SIGMA_MM:g} mm", file=sys.stderr)
        return 2
    if not 0 <= args.min_volume_ml < float("inf"):
        print("compare: --min-volume-ml must be 0 or more (mL)", file=sys.stderr)
        return 2
    if args.false_regions is not None and not (0 < args.false_regions < 1e6):
        print("compare: --false-regions must be positive", file=sys.stderr)
        return 2

    if (args.tta or args.perturbation is not None) and not args.plugin:
        print("compare: --tta and --perturbation need --plugin NAME", file=sys.stderr)
        return 2
    if (args.segment_min_region_mm3 is not None or args.segment_keep_jitter) and not args.segment:
        print(
            "compare: --segment-min-region-mm3 and --segment-keep-jitter need --segment PLUGIN",
            file=sys.stderr,
        )
        return 2
    if args.segment_min_region_mm3 is not None and not 0 <= args.segment_min_region_mm3 < 1e9:
        print("compare: --segment-min-region-mm3 must be 0 or more", file=sys.stderr)
        return 2
    if args.segment_synthesized and not args.segment:
        print("compare: --segment-synthesized needs --segment PLUGIN (for the original)", file=sys.stderr)
        return 2
    segmenters = None
    if args.segment:
        try:
            segmenters = find_segmentation_plugins(args.segment, args.segment_synthesized)
        except Exception as error:  # noqa: BLE001 - plugin problems: a clear message, exit code 2
            print(f"compare: {error}", file=sys.stderr)
            return 2
    try:
        lpips, fid = _learned_metric_networks(args)
    except _WeightsRefused as refused:
        print(f"compare: {refused}", file=sys.stderr)
        return 2
    extra_maps, notes = {}, []
    if args.plugin:
        mismatch = _plugin_mismatch(args.plugin, volumes["synthesized"])
        if mismatch:
            print(f"compare: {mismatch}", file=sys.stderr)
            return 2
        try:
            extra_maps, notes = plugin_checks(
                args.plugin, volumes["original"], args.tta, args.perturbation, volumes["synthesized"]
            )
        except Exception as error:  # noqa: BLE001 - plugin problems: a clear message, exit code 2
            print(f"compare: plugin {args.plugin}: {type(error).__name__}: {error}", file=sys.stderr)
            return 2

    from app.analysis.compare_run import run_compare
    from app.analysis.detection import DEFAULT_FALSE_REGIONS_PER_VOLUME
    from app.plugins.null_calibration import calibration_for_plugin, calibration_for_volume

    calibration, calibration_note = (
        calibration_for_plugin(args.plugin) if args.plugin else calibration_for_volume(volumes["synthesized"])
    )
    if calibration_note and args.threshold is None:
        notes.append(calibration_note)
    try:
        result = run_compare(
            volumes["original"],
            volumes["synthesized"],
            volumes.get("reference"),
            threshold=args.threshold,
            smoothing_sigma_mm=args.sigma_mm,
            min_volume_ml=args.min_volume_ml,
            cycle_reconstruction=volumes.get("cycle"),
            ensemble=[v for role, v in volumes.items() if role.startswith("ensemble")] or None,
            extra_maps=extra_maps,
            false_regions_per_volume=args.false_regions or DEFAULT_FALSE_REGIONS_PER_VOLUME,
            calibration=calibration,
        )
        result.notes[:0] = notes
    except (ValueError, MemoryError) as error:
        print(f"compare: {error}", file=sys.stderr)
        return 2
    data = json_safe(result.to_dict())
    for note in result.notes:
        print(f"note: {note}")
    for name, metrics in data["metrics"].items():
        print(
            f"{name}: MAE {_number(metrics['mae'], '.4g')}  MSE {_number(metrics['mse'], '.4g')}  "
            f"PSNR {_number(metrics['psnr_db'], '.2f')} dB  SSIM {_number(metrics['ssim'], '.4f')}  "
            f"NCC {_number(metrics['ncc'], '.4f')}  (data range {_number(metrics['data_range'], '.4g')}, "
            f"{metrics['data_range_source']})"
        )
    print(data["sign_convention"])
    if result.operating is not None:
        point = result.operating
        print(
            f"{len(result.regions)} region(s): |z| above {point.z_threshold:.2f}, the operating point for"
            f" {point.false_regions_per_volume:g} false region(s) per healthy volume ({point.source};"
            f" {result.residual_source})"
        )
    else:
        print(
            f"{len(result.regions)} region(s) above threshold {result.settings.threshold:.4g}"
            f" ({result.residual_source})"
        )
    for region in (result.regions[index] for index in result.shown_region_indices(10)):
        centroid = ", ".join(f"{v:.1f}" for v in region.centroid_lps_mm)
        z_text = f"  peak z {region.peak_z:+.1f}" if region.peak_z is not None else ""
        print(
            f"  {region.sign} LPS ({centroid}) mm  {region.volume_ml:.3f} mL  peak {region.peak_residual:+.4g}"
            f"{z_text}  {region.description}"
        )
    if args.field_metrics:
        data["field_metrics"] = json_safe(
            _field_metrics(volumes, result.input_difference.meaningful, lpips, fid)
        )
    if segmenters:
        try:
            data["consistency"] = json_safe(
                segmentation_consistency(
                    volumes["original"], volumes["synthesized"], segmenters, _region_filter(args)
                )
            )
        except Exception as error:  # noqa: BLE001 - plugin problems: a clear message, exit code 2
            print(f"compare: --segment: {error}", file=sys.stderr)
            return 2
        _print_consistency(data["consistency"])
    from app.io.atomic import WriteFailed, write_text_atomic

    try:
        if args.json:
            write_text_atomic(args.json, json.dumps(data, indent=2))
            print(f"wrote {args.json}")
        if args.report:
            from app.analysis.report import write_report

            write_report(
                result,
                args.report,
                consistency=data.get("consistency"),
                field_metrics=data.get("field_metrics"),
            )
            print(f"wrote {args.report}")
    except WriteFailed as error:
        print(f"compare: {error}", file=sys.stderr)
        return 2
    return 0
