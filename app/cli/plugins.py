"""``python main.py plugins list`` and ``python main.py plugins check PATH``.

``list`` shows every discovered plugin (repository, user folder, entry points) and any whose
manifest is broken, with the reason. ``check`` validates one plugin folder: manifest, weights
hash, strict load, and a fake-tensor run through the network (exit status 1 if any step fails).
``diversity NAME --real VOLUME`` samples a generation plugin and reports mode collapse (mean
pairwise MS-SSIM of samples vs real slices) and possibly memorised samples (exit status 2 on bad
input). ``device`` prints the device plugins will run on (``--json``: as the viewer reads it).
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="plugins_command", required=True)
    list_parser = sub.add_parser("list", help="list discovered plugins")
    list_parser.add_argument("--verbose", "-v", action="store_true", help="print each model card")
    check_parser = sub.add_parser("check", help="validate a plugin folder (manifest, hash, contract)")
    check_parser.add_argument("path", help="plugin folder or manifest file (or a discovered plugin name)")
    check_parser.add_argument(
        "--show-input",
        nargs=2,
        metavar=("VOLUME", "OUT.png"),
        default=None,
        help="write the centre slice of VOLUME as the network is given it (orientation, scaling)",
    )
    check_parser.add_argument("--force", action="store_true", help="overwrite an existing OUT.png")
    diversity_parser = sub.add_parser(
        "diversity", help="mode-collapse and memorisation check of a generation plugin"
    )
    diversity_parser.add_argument("plugin", help="generation plugin name or folder")
    diversity_parser.add_argument(
        "--real", required=True, help="a real volume (NIfTI/DICOM) whose slices are the comparison"
    )
    diversity_parser.add_argument("--samples", type=int, default=16, help="samples to draw (default 16)")
    diversity_parser.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    diversity_parser.add_argument(
        "--json", metavar="OUT.json", default=None, help="write the figures as JSON"
    )
    from app.cli.writable import add_force_argument

    add_force_argument(diversity_parser)
    device_parser = sub.add_parser("device", help="the device GAN plugins will run on (CUDA, MPS or CPU)")
    device_parser.add_argument("--json", action="store_true", help="one JSON object: device, torch")


def _list(args: argparse.Namespace) -> int:
    from app.plugins.discovery import discover_plugins, user_plugin_dirs

    plugins = discover_plugins()
    if not plugins:
        folders = ", ".join(str(p) for p in user_plugin_dirs())
        print(f"no plugins found (looked in the repository's plugins/, {folders}, and entry points)")
        return 0
    for plugin in plugins:
        m = plugin.manifest
        if m is None:
            print(f"{plugin.name:24s} BROKEN  [{plugin.source}] {plugin.folder}")
            for line in plugin.error.splitlines():
                print(f"    {line}")
            continue
        where = f"{m.dimensionality}" + (f" {m.plane}" if m.plane else "")
        inputs = "/".join(m.input_modalities) or "noise"
        print(
            f"{m.name:24s} {m.version:8s} {m.task:18s} {inputs}->{m.output_modality} {where}  [{plugin.source}] {plugin.folder}"
        )
        if args.verbose:
            print("    " + m.model_card_text().replace("\n", "\n    "))
    return 0


def _check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from app.plugins.errors import PluginError

    # The manifest is read before torch is imported: a refused manifest answers at once.
    try:
        if Path(args.path).exists():
            from app.plugins.manifest import load_manifest

            manifest = load_manifest(args.path)
        else:
            from app.plugins.discovery import find_plugin

            manifest = find_plugin(args.path)
    except PluginError as error:
        _print_step("FAIL", "manifest", str(error))
        print("plugin check FAILED", file=sys.stderr)
        return 1
    refusal = _show_input_refusal(manifest, *args.show_input, args.force) if args.show_input else None
    if refusal is not None:
        _print_step("FAIL", "network input image", refusal)
        print("plugin check FAILED", file=sys.stderr)
        return 1
    from app.plugins.contract import check_plugin

    steps = check_plugin(manifest)
    for step in steps:
        _print_step("ok  " if step.passed else "FAIL", step.name, step.detail)
    passed = all(step.passed for step in steps)
    if args.show_input:
        passed = _show_input(manifest, *args.show_input) and passed
    print("plugin OK" if passed else "plugin check FAILED", file=sys.stderr)
    return 0 if passed else 1


def _show_input_refusal(manifest, volume_path: str, png_path: str, force: bool) -> str | None:
    """The output policy for --show-input's PNG, asked before the check's work."""
    from app.cli.writable import OutputRefused, check_outputs, file_output, input_paths

    try:
        check_outputs([file_output(png_path)], input_paths(volume_path, manifest.folder), force)
    except OutputRefused as error:
        return str(error)
    return None


def _show_input(manifest, volume_path: str, png_path: str) -> bool:
    """Write what the network is given from ``volume_path`` as a PNG; one line either way."""
    from app.analysis.png import encode_png
    from app.cli.compare import load_any
    from app.io.atomic import atomic_file
    from app.io.errors import LoadError
    from app.plugins.errors import PluginError
    from app.plugins.network_view import network_input_slice
    from app.plugins.plane_stack import describe_network_view

    try:
        seen = network_input_slice(manifest, load_any(volume_path))
        with atomic_file(png_path) as partial:
            partial.write_bytes(encode_png(seen.grey_pixels()))
    except (PluginError, LoadError, OSError, ValueError) as error:
        _print_step(
            "FAIL", "network input image", str(error).splitlines()[0] if str(error) else type(error).__name__
        )
        return False
    rows, columns = seen.image.shape
    view = describe_network_view(manifest.plane or "axial", manifest.dimensionality, manifest.context_slices)
    _print_step(
        "ok  ",
        "network input image",
        f"wrote {png_path}: slice {seen.index + 1} of {seen.count}, {rows} x {columns}, {view}",
    )
    return True


def _print_step(status: str, name: str, detail: str) -> None:
    detail = detail.replace("\n", "\n      ")
    print(f"{status}  {name}: {detail}")


def _diversity(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from app.analysis.diversity import NEAR_DUPLICATE_MS_SSIM, PAIRWISE_REAL
    from app.cli.compare import load_any
    from app.cli.writable import check_outputs, file_output, input_paths
    from app.io.atomic import write_text_atomic
    from app.io.errors import LoadError
    from app.plugins.discovery import find_plugin
    from app.plugins.diversity_check import generator_diversity
    from app.plugins.errors import PluginError

    try:
        manifest = find_plugin(args.plugin)
        if not Path(args.real).exists():
            raise FileNotFoundError(f"{args.real}: no such file or folder")
        outputs = [file_output(args.json)] if args.json else []
        check_outputs(outputs, input_paths(args.real, manifest.folder), args.force)
        result = generator_diversity(manifest.folder, load_any(args.real), args.samples, args.seed)
    except (PluginError, LoadError, OSError, ValueError) as error:
        print(f"plugins diversity: error: {error}", file=sys.stderr)
        return 2
    check = result.check
    shift = check.alignment.max_shift_px
    print(
        f"{result.plugin_name}: {len(result.seeds)} samples (seeds {result.seeds[0]}..{result.seeds[-1]}),"
        f" {result.real_count} real slices (every slice with head content, prepared as the shipped"
        f" generator's training images), MS-SSIM over {len(check.weights)} scales, data range 1"
    )
    print(f"  samples mean pairwise MS-SSIM {check.report.samples_ms_ssim:.4f}")
    print(
        f"  real    mean pairwise MS-SSIM {check.report.real_ms_ssim:.4f} (up to {PAIRWISE_REAL} slices, evenly spaced)"
    )
    print(f"  mode collapse suspected: {'YES' if check.report.collapse_suspected else 'no'}")
    memorised = [result.seeds[n] for n in check.possibly_memorised]
    print(
        f"  nearest real slice: highest MS-SSIM over all real slices, each sample flipped left-right"
        f" and shifted up to {shift} px (the training augmentation; shifts below as rows,columns) to match it best"
    )
    print(
        f"  possibly memorised (nearest real MS-SSIM >= {check.memorisation_ms_ssim:g}, a threshold checked on"
        " near-copies of the shipped DCGAN's training images; see its model card): "
        + (", ".join(f"seed {s}" for s in memorised) or "none")
    )
    print(
        "  (memorised means copied from the TRAINING images: the figure answers that question only when"
        " --real is the generator's training volume, for the shipped DCGAN Colin27 ch2.nii.gz of mricron-data)"
    )
    print(
        f"  near-duplicate sample pairs (MS-SSIM >= {NEAR_DUPLICATE_MS_SSIM:g}, partial collapse): "
        + (
            ", ".join(
                f"seeds {result.seeds[a]}/{result.seeds[b]} {v:.3f}" for a, b, v in check.near_duplicates
            )
            or "none"
        )
    )
    for seed, near in zip(result.seeds, check.nearest, strict=True):
        number = result.real_slice_numbers[near.index]
        moved = ", ".join(
            (["flipped"] if near.flipped else [])
            + ([f"shifted {near.shift_px[0]:+d},{near.shift_px[1]:+d} px"] if any(near.shift_px) else [])
        )
        print(
            f"    seed {seed}: nearest real: slice {number} of the volume, MS-SSIM {near.ms_ssim:.4f}"
            + (f" (sample {moved})" if moved else "")
        )
    if args.json:
        data = {
            "plugin": result.plugin_name,
            "seeds": result.seeds,
            "real_slices": result.real_count,
            "real_slice_numbers": list(result.real_slice_numbers),  # real_index -> viewer's slice number
        }
        write_text_atomic(args.json, json.dumps({**data, **check.to_dict()}, indent=2))
        print(f"wrote {args.json}")
    return 0


def _device(args: argparse.Namespace) -> int:
    from app.plugins.device import describe_device, device_report

    if args.json:
        import json

        print(json.dumps(device_report()))
    else:
        print(describe_device())
    return 0


def run(args: argparse.Namespace) -> int:
    commands = {"list": _list, "check": _check, "diversity": _diversity, "device": _device}
    return commands[args.plugins_command](args)
