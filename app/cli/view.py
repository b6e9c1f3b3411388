"""``python main.py view PATH [--layout ...] [--synthesized PATH2] [--screenshot OUT.png]``.

Opens the viewer on PATH (DICOM folder/file or NIfTI). With ``--synthesized`` the compare
layout is available (and chosen unless another layout is asked for). With ``--screenshot``
the window is rendered, saved as PNG and the command exits (works offscreen, for figures/tests).
"""

from __future__ import annotations

import argparse
import sys

LAYOUTS = ("axial", "coronal", "sagittal", "mpr", "2x2", "compare")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="DICOM folder, DICOM file or NIfTI file")
    parser.add_argument(
        "--layout",
        choices=LAYOUTS,
        default=None,
        help="axial, coronal, sagittal (1x1), mpr (1x3), 2x2 (three planes and a 3D rendering; "
        "needs a display with OpenGL, e.g. xvfb-run) or compare (default: compare with "
        "--synthesized, else mpr)",
    )
    parser.add_argument(
        "--synthesized",
        metavar="PATH2",
        default=None,
        help="a second volume (e.g. a GAN output) shown beside the original",
    )
    parser.add_argument(
        "--screenshot", metavar="OUT.png", default=None, help="save the window as PNG and exit"
    )
    parser.add_argument("--size", default="1400x850", help="window size WxH for screenshots")
    from app.cli.writable import add_force_argument

    add_force_argument(parser)


def run(args: argparse.Namespace) -> int:
    if not args.screenshot and not args.synthesized and args.layout != "compare":
        return _run_interactive(args)
    from app.cli.file_services import file_services
    from app.cli.writable import OutputRefused, check_outputs, file_output, input_paths
    from app.ui.loading import load_path

    try:
        outputs = [file_output(args.screenshot)] if args.screenshot else []
        check_outputs(outputs, input_paths(args.path, args.synthesized), args.force)
    except OutputRefused as error:
        print(f"view: {error}", file=sys.stderr)
        return 2
    try:
        loader = file_services(cache=None).load_volume  # loaded here, shown unchecked: never a cached copy
        original = load_path(args.path, loader=loader)
        synthesized = load_path(args.synthesized, loader=loader) if args.synthesized else None
    except Exception as error:  # noqa: BLE001 - bad input: a clear message, exit code 2
        print(f"view: cannot open: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    layout = args.layout or ("compare" if synthesized is not None else "mpr")
    if layout == "compare" and synthesized is None:
        print("view: --layout compare needs --synthesized PATH2", file=sys.stderr)
        return 2
    size = _window_size(args.size)
    if size is None:
        return 2
    width, height = size

    from PySide6 import QtCore

    from app.ui.application import create_application
    from app.ui.main_window import MainWindow
    from app.ui.settings import ViewerSettings

    app = create_application([], offscreen_without_display=bool(args.screenshot))
    # Screenshots must not depend on (or change) the user's saved settings.
    settings = None
    if args.screenshot:
        settings = ViewerSettings(
            QtCore.QSettings(
                QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, "SynthView", "screenshot"
            )
        )
        settings.qsettings.clear()
    window = MainWindow(settings, file_services())
    window.resize(width, height)
    if args.screenshot:
        window.device_label.hide()  # the device check (torch) would never finish before the shot
    if layout == "compare":
        window.show_compare(original, [synthesized])
    else:
        window.session.set_layout(layout)
        window.open_volume(original)
        if synthesized is not None:
            window.session.add_volume(synthesized)
    if not args.screenshot:
        from app.ui.application import prepare_interactive_window

        prepare_interactive_window(window)
    window.show()
    if args.screenshot:
        for _ in range(3):
            app.processEvents()
        window._reset_zoom()
        app.processEvents()
        from app.io.atomic import save_atomic

        if not save_atomic(window.save_screenshot, args.screenshot):
            print(f"view: could not write {args.screenshot}", file=sys.stderr)
            return 1
        print(args.screenshot)
        window.close()
        return 0
    return int(app.exec())


def _run_interactive(args: argparse.Namespace) -> int:
    """One volume, on screen: the window opens at once and loads PATH in the background, with
    its progress in the status bar (a large DICOM series takes seconds)."""
    from pathlib import Path

    if not Path(args.path).exists():
        print(f"view: cannot open: {args.path} does not exist", file=sys.stderr)
        return 2
    size = _window_size(args.size)
    if size is None:
        return 2
    width, height = size
    from app.cli.desktop_process import prepare_desktop_process

    prepare_desktop_process()  # before numpy's import
    from app.cli.file_services import file_services, import_readers_in_background

    import_readers_in_background([args.path])  # while the window's modules are imported
    from app.ui.application import create_application, start_interactive_window

    app = create_application([])
    window = start_interactive_window(  # noqa: F841 - referenced until the event loop ends
        [args.path], file_services(), size=(width, height), layout=args.layout or "mpr"
    )
    return int(app.exec())


def _window_size(text: str) -> tuple[int, int] | None:
    """'1400x850' -> (1400, 850); None (and a message) for anything else."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        print(f"view: --size must look like 1400x850, got {text!r}", file=sys.stderr)
        return None
    return width, height
