"""SynthView entry point: ``python main.py`` opens the viewer; ``python main.py COMMAND`` runs a CLI.

The command names and arguments are contracts used by outside checks; keep them stable.
Each command lives in its own module under ``app/cli`` exposing ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only when their command runs, so ``info`` never pays
for Qt or torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

DESCRIPTION = "SynthView: with no COMMAND the viewer opens (any paths given are opened in it)."


def _command_line_name() -> str:
    """How users run this program: the installed executable's name, or python main.py."""
    if getattr(sys, "frozen", False):
        return os.path.splitext(os.path.basename(sys.executable))[0]  # synthview, synthview-cli
    return "python main.py"


def _epilog() -> str:
    return f"A command's own options: {_command_line_name()} COMMAND --help"


COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("app.cli.info", "list the studies and series found at a path"),
    "convert": ("app.cli.convert", "write a series as NIfTI"),
    "view": ("app.cli.view", "open the viewer (optionally save a screenshot and exit)"),
    "synthesize": ("app.cli.synthesize", "run a GAN plugin over a study, folder or NIfTI file"),
    "compare": ("app.cli.compare", "hallucination maps and metrics for an original/synthesized pair"),
    "study": ("app.cli.study", "reader studies: create, read, analyze, export-csv, edit"),
    "plugins": ("app.cli.plugins", "list, check and diversity-test GAN plugins"),
    "export": ("app.cli.export", "export volumes and annotations (DICOM, NIfTI, SR, SEG)"),
    "pacs": ("app.cli.pacs", "query, retrieve and send studies (DIMSE and DICOMweb)"),
    "batch": ("app.cli.batch", "run a plugin over a whole cohort on Dask, with hallucination QA"),
    "cache": ("app.cli.cache", "the decoded-series cache: where, how large; --clear empties it, --add decodes studies into it"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synthview", description=DESCRIPTION, epilog=_epilog())
    from app import __version__

    parser.add_argument("--version", action="version", version=f"SynthView {__version__}")
    sub = parser.add_subparsers(dest="command")
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text)
        command_parser.set_defaults(_module=module_name)
        if name in sys.argv[1:2]:
            # Only the chosen command's module is imported to declare its arguments.
            importlib.import_module(module_name).add_arguments(command_parser)
    return parser


def ensure_standard_streams() -> None:
    """Give a missing sys.stdout / sys.stderr somewhere to go (the null device).

    A windowed Windows executable (synthview.exe) and some desktop launchers start with no
    console: Python then sets sys.stdout and sys.stderr to None, and any write or flush on them
    raises AttributeError, which Windows shows as an "Unhandled exception" dialog.
    """
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - process-long


def main(argv: list[str] | None = None) -> int:
    ensure_standard_streams()
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, so that a closed pipe is handled below, not at exit
        return code
    except ModuleNotFoundError as error:
        if (error.name or "app").partition(".")[0] == "app":
            raise
        # Typically `python3 main.py` with the system Python instead of the project's .venv.
        print(
            f"synthview: the Python package '{error.name}' is not installed for {sys.executable}.\n"
            "Install SynthView's packages with `bash scripts/install.sh`, then run "
            "`.venv/bin/python main.py ...` (or `source .venv/bin/activate` first).",
            file=sys.stderr,
        )
        return 2
    except BrokenPipeError:
        # The reader of stdout went away (`info ... | head`): stop quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and _looks_like_a_mistyped_command(argv[0]):
        build_parser().parse_args(argv[:1])  # "invalid choice: 'inof' (choose from ...)", exit 2
    if not argv or argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version"):
        # No command: the desktop application, with any paths given opened at start.
        from app.cli.desktop_process import prepare_desktop_process

        prepare_desktop_process()  # before numpy's import
        from app.cli.file_services import file_services, import_readers_in_background

        import_readers_in_background(argv)  # while the window's modules are imported
        from app.ui.application import run_gui

        return run_gui(argv, file_services())
    saved = sys.argv
    sys.argv = [saved[0], *argv]
    try:
        args = build_parser().parse_args(argv)
    finally:
        sys.argv = saved
    module = importlib.import_module(args._module)
    return int(module.run(args) or 0)


def _looks_like_a_mistyped_command(word: str) -> bool:
    """A bare word that is neither a command nor an existing path (``synthesise``): not a file
    to open in the viewer, which would only say it cannot open it."""
    if word in COMMANDS or word.startswith("-") or os.path.exists(word):
        return False
    return os.sep not in word and "." not in word


if __name__ == "__main__":
    import multiprocessing

    # The frozen executable is also the GDCM decoding child (app.io.pixel_decoders): run as that
    # child, it must decode, not start the application again.
    multiprocessing.freeze_support()
    sys.exit(main())
