"""Outputs that appear complete or not at all: the one helper every writer uses.

A file is written as ``.NAME.partial-PID[SUFFIX]`` in its own folder and renamed over NAME
when complete (``os.replace``: atomic on one file system); a multi-file output (a DICOM
series) is filled in a sibling folder ``.NAME.partial-PID`` and renamed the same way. On an
error (a full disk), Ctrl+C or SIGTERM the partial output is removed before the exception goes
on; after a SIGKILL it stays behind, named so, and the next write of the same output removes
it (only when the process that wrote it is gone). A failed write raises :class:`WriteFailed`:
one line naming the output and the reason.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from app.core.output_path import folder_needed_reason

PARTIAL_MARK = ".partial-"
# ``.NAME.partial-PID...`` (this module), ``.NAME.old-PID`` (a replaced folder on its way out)
# and ``.NAME.PID.partial...`` (the NIfTI writer before this module).
_LEFTOVER = re.compile(r"^(?:\.partial-(\d+)|\.old-(\d+)|\.(\d+)\.partial)(?:\.|$)")


class WriteFailed(OSError):
    """An output could not be written (nothing of it was left); ``str()`` is one line."""

    def __str__(self) -> str:
        return str(self.strerror)


def partial_path(path: str | Path, suffix: str = "") -> Path:
    """The name an output has while it is being written (``suffix`` keeps a format's extension)."""
    path = Path(path)
    return path.with_name(f".{path.name}{PARTIAL_MARK}{os.getpid()}{suffix}")


def remove_stale_partials(path: str | Path) -> list[Path]:
    """Remove what killed writes of ``path`` left beside it; return what was removed."""
    path = Path(path)
    prefix = f".{path.name}"
    removed = []
    try:
        siblings = list(path.parent.iterdir()) if path.parent.is_dir() else []
    except OSError:
        return removed
    for sibling in siblings:
        if not sibling.name.startswith(prefix):
            continue
        match = _LEFTOVER.match(sibling.name[len(prefix) :])
        if match is None or _process_alive(int(next(g for g in match.groups() if g))):
            continue
        _remove(sibling)
        removed.append(sibling)
    return removed


@contextlib.contextmanager
def atomic_file(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield the partial path to write; on success it replaces ``path``, else it is removed."""
    path = Path(path)
    with _guarded(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(path)
        partial = partial_path(path, suffix)
        try:
            yield partial
            os.replace(partial, path)
        finally:
            _remove(partial)


@contextlib.contextmanager
def atomic_folder(path: str | Path, replace: bool = False) -> Iterator[Path]:
    """Yield an empty partial folder to fill; on success it becomes ``path``, else it is removed.

    An empty ``path`` is replaced; a non-empty one only with ``replace`` (the caller has
    checked it may go), and then only after the new folder is complete.
    """
    path = Path(path)
    with _guarded(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(path)
        partial = partial_path(path)
        partial.mkdir()
        try:
            yield partial
            _move_into_place(partial, path, replace)
        finally:
            _remove(partial)


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_file(path) as partial:
        partial.write_text(text, encoding="utf-8")
    return Path(path)


def save_atomic(save: Callable[[str], bool], path: str | Path) -> bool:
    """Run a ``save(path) -> bool`` writer (Qt's image savers) through :func:`atomic_file`;
    the suffix is kept so the writer picks the format from it."""
    try:
        with atomic_file(path, suffix=Path(path).suffix) as partial:
            if not save(str(partial)):
                raise OSError(f"could not write {path}")
    except OSError:
        return False
    return True


def _move_into_place(partial: Path, path: Path, replace: bool) -> None:
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        path.rmdir()
    elif path.exists() or path.is_symlink():
        if not replace:
            raise FileExistsError(f"{path} already exists")
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
        os.rename(path, old)
        os.rename(partial, path)
        _remove(old)
        return
    os.rename(partial, path)


@contextlib.contextmanager
def _guarded(path: Path) -> Iterator[None]:
    """SIGTERM unwinds like Ctrl+C (so partial outputs are removed); OSError -> WriteFailed."""
    with _terminate_as_exit():
        try:
            yield
        except WriteFailed:
            raise
        except OSError as error:
            cause = _first_with_errno(error)
            # 'File exists' / 'Not a directory' from a file where a folder is needed: name it.
            reason = folder_needed_reason(path) or _one_line_reason(cause)
            raise WriteFailed(cause.errno, f"cannot write {path}: {reason}") from error


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    installable = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if installable else None
    if previous is not signal.SIG_DFL:
        yield  # a handler of the application's own (or not the main thread): leave it
        return

    def terminate(signum, frame):  # noqa: ARG001 - the signal module's signature
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _first_with_errno(error: OSError) -> OSError:
    """The OSError that says what happened: writers re-raise it wrapped (pydicom's
    ``tag_in_exception`` as ``OSError("With tag ... got exception: ... <traceback>")``)."""
    seen = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen
        seen = seen.__cause__ or seen.__context__
    return error


def _one_line_reason(error: OSError) -> str:
    text = error.strerror or str(error) or type(error).__name__
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a leftover of this process's own earlier, failed write
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there
        return _windows_process_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def _windows_process_alive(pid: int) -> bool:
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return kernel32.GetLastError() == 5  # access denied: it exists (another user's)
    kernel32.CloseHandle(handle)
    return True


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass
