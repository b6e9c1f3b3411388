"""The output policy of every command that writes, checked before the long work.

* An input is never an output, even with ``--force``: paths are compared after resolving
  symbolic links; an output folder inside an input folder, an existing file there, an output
  folder holding an input, and an existing output that is a hard link to an input file are
  refused.
* An existing output is refused with one line unless ``--force``. A DICOM series folder must
  be empty or new: any file in it, at any depth, would mix series; ``--force`` replaces a
  folder only when it holds nothing but a series SynthView wrote (``IM#####.dcm``).
* A read-only or mistyped destination is reported at once, not after minutes of computing.

Commands describe what they write (:func:`file_output`, :func:`nifti_output`,
:func:`series_output`, :func:`folder_output`) and read, and call :func:`check_outputs`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

FORCE_HELP = "replace existing outputs (never an input)"
# Hard links are looked for among at most this many files of an input folder.
_MAX_FILES_COMPARED = 200_000


class OutputRefused(ValueError):
    """An output the policy does not allow (the message says why, in one line)."""


@dataclass(frozen=True)
class Output:
    """One thing a command writes: a file, a DICOM series folder, or a folder it fills."""

    path: Path
    kind: Literal["file", "series", "folder"] = "file"
    companions: tuple[Path, ...] = field(default=())  # files written beside it (a JSON sidecar)


def file_output(path: str | Path) -> Output:
    return Output(Path(path))


def nifti_output(path: str | Path) -> Output:
    """A NIfTI file and the JSON sidecar the writer puts (or removes) beside it."""
    from app.io.nifti import sidecar_path

    return Output(Path(path), "file", (sidecar_path(path),))


def series_output(path: str | Path) -> Output:
    return Output(Path(path), "series")


def folder_output(path: str | Path) -> Output:
    return Output(Path(path), "folder")


def input_paths(*paths: str | Path | None) -> list[Path]:
    """The paths a command reads, with a NIfTI input's JSON sidecar (never to be overwritten)."""
    from app.io.nifti import is_nifti_path, sidecar_path

    found = []
    for path in paths:
        if path is None or str(path) == "" or "://" in str(path):
            continue
        found.append(Path(path))
        if is_nifti_path(path):
            found.append(sidecar_path(path))
    return found


def plugin_folders(*names: str | None) -> list[Path]:
    """The folders of the plugins a command runs, by name or path: their weights and manifests are
    inputs that no output, even with --force, may write over. A plugin that cannot be found is
    left out here and reported where the command loads it."""
    from app.plugins.discovery import find_plugin

    folders = []
    for name in names:
        if not name:
            continue
        try:
            folders.append(find_plugin(name).folder)
        except Exception:  # noqa: BLE001 - not found or broken: said when the plugin is loaded
            continue
    return folders


def check_outputs(outputs: Iterable[Output | None], inputs: Iterable[Path], force: bool) -> None:
    """Raise :class:`OutputRefused` when any output breaks the policy; return None otherwise."""
    outputs = [o for o in outputs if o is not None]
    inputs = [Path(p) for p in inputs]
    seen: dict[Path, Path] = {}
    for output in outputs:
        for path in (output.path, *output.companions):
            real = _real(path)
            if real in seen:
                raise OutputRefused(f"{path} is given as two outputs; each output needs its own path")
            seen[real] = path
    for output in outputs:
        reason = _refusal(output, inputs, force)
        if reason is not None:
            raise OutputRefused(reason)


def check_not_an_input(output: Output, inputs: Iterable[Path]) -> None:
    """Only the first rule (for an output folder a command resumes rather than replaces)."""
    for path in (output.path, *output.companions):
        clash = _input_clash(path, output.kind != "file" and path == output.path, [Path(p) for p in inputs])
        if clash is not None:
            raise OutputRefused(clash)


def unwritable_reason(path: str | Path, *, folder: bool = False) -> str | None:
    """Why ``path`` (a file; with ``folder``, a folder to create or fill) cannot be written, or None.

    Missing folders on the way count as writable when the nearest existing one is (commands
    create them). ``os.access`` also reports a read-only file system, even to root.
    """
    target = Path(path).absolute()
    if not folder and target.is_dir():
        return f"{target} is a folder, not a file"
    if not folder and _is_special(target):
        # An output replaces what is there by rename: a device (/dev/null, /dev/stdout's target
        # as root), a pipe or a socket would be swapped for a plain file, even with --force.
        return f"{target} is a device, pipe or socket, not a file"
    existing = target if folder else target.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"the folder {existing} is not writable (read-only file system or no permission)"
    if target.is_file() and not os.access(target, os.W_OK):
        return f"{target} is read-only"
    return None


def _refusal(output: Output, inputs: list[Path], force: bool) -> str | None:
    is_folder = output.kind != "file"
    for path in (output.path, *output.companions):
        clash = _input_clash(path, is_folder and path == output.path, inputs)
        if clash is not None:
            return clash
    reason = unwritable_reason(output.path, folder=is_folder)
    if reason is not None:
        return f"cannot write {output.path}: {reason}"
    if output.kind == "series":
        return _series_folder_refusal(output.path, force)
    if output.kind == "folder":
        if _holds_anything(output.path) and not force:
            return f"{output.path} already exists and is not empty (give --force to replace it)"
        return None
    if force:
        return None
    for path in (output.path, *output.companions):
        if path.exists() or path.is_symlink():
            return f"{path} already exists (give --force to replace it)"
    return None


def _input_clash(path: Path, is_folder: bool, inputs: list[Path]) -> str | None:
    """Why writing ``path`` would write over (or into) an input, or None."""
    real = _real(path)
    for source in inputs:
        if not (source.exists() or source.is_symlink()):
            continue
        source_real = _real(source)
        if real == source_real or _same_file(path, source):  # the latter: case-insensitive file systems
            return f"{path} is also an input ({source}); an input is never written over, even with --force"
        inside = source_real.is_dir() and source_real in real.parents
        if inside and (is_folder or path.exists() or path.is_symlink()):
            # A folder there would be scanned as part of the input; a file there that exists is
            # one of the input's files. (A new file beside a DICOM series, dcm2niix's habit, is fine.)
            return f"{path} is inside the input folder {source}; write outputs elsewhere"
        if is_folder and real in source_real.parents:
            return f"the output folder {path} holds the input {source}; write outputs elsewhere"
    if path.is_file() and path.stat().st_nlink > 1:
        identity = _identity(path)
        for source in inputs:
            if identity in _identities(source):
                return f"{path} is a hard link to the input {source}; an input is never written over"
    return None


def _series_folder_refusal(folder: Path, force: bool) -> str | None:
    from app.io.dicom_export import ExportError, check_series_folder

    try:
        check_series_folder(folder, replace=force)
    except ExportError as error:
        return str(error)
    return None


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:
        return []


def _holds_anything(folder: Path) -> bool:
    return folder.is_dir() and bool(_entries(folder)) or folder.is_file()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and os.path.samefile(a, b) and (a.is_dir() or a.stat().st_nlink == 1)
    except OSError:
        return False


def _is_special(path: Path) -> bool:
    """Whether ``path`` itself (a symbolic link is a link, replaced as one) is neither a regular
    file nor a folder."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode))


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _identity(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_dev, stat.st_ino


def _identities(source: Path) -> set[tuple[int, int]]:
    """(device, inode) of an input file, or of the files in an input folder."""
    if source.is_file():
        return {_identity(source)}
    found: set[tuple[int, int]] = set()
    if source.is_dir():
        for count, (root, _, files) in enumerate(os.walk(source)):
            for name in files:
                try:
                    found.add(_identity(Path(root) / name))
                except OSError:
                    continue
            if count + len(found) > _MAX_FILES_COMPARED:
                break
    return found


def add_force_argument(parser) -> None:
    """``--force``: the one flag every writing command takes for replacing its outputs."""
    parser.add_argument("--force", action="store_true", help=FORCE_HELP)
