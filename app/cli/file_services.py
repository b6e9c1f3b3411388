"""The composition root's file services: ``app.io``'s loader, scanner and exporters for the window.

Each function imports ``app.io`` when first called (in the loading thread): pydicom and nibabel
cost the window's start-up nothing.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence

from app.core.volume import Volume
from app.ui.services import FileServices, PacsServices


def import_readers_in_background(paths: Sequence[str]) -> threading.Thread | None:
    """Import, in a daemon thread, the readers that loading ``paths`` will need (pydicom for
    DICOM, nibabel for NIfTI), while the window's own modules are imported and its widgets built.

    The viewer started with a path loads it in a thread that first imported pydicom (0.35 s)
    once the window existed, with the UI thread idle meanwhile; begun here, the import overlaps
    the window's: the demo came on screen 0.19 s sooner (bench_startup, 5 alternated starts,
    same machine). None (nothing started) without paths."""
    paths = [path for path in paths if not str(path).startswith("-")]
    if not paths:
        return None
    nifti = [str(path).lower().endswith((".nii", ".nii.gz")) for path in paths]

    def import_readers() -> None:
        try:
            import app.io.loader  # noqa: F401

            if not all(nifti):
                import app.io.dicom_load  # noqa: F401
                import app.io.dicom_scan  # noqa: F401
            if any(nifti):
                import nibabel  # noqa: F401
        except Exception:  # noqa: BLE001, S110 - the load itself imports them again and reports
            pass

    thread = threading.Thread(target=import_readers, name="import readers", daemon=True)
    thread.start()
    return thread


def load_volume(path, series_uid: str | None = None, progress: Callable[[int, int], None] | None = None) -> Volume:
    from app.io.loader import load_volume as load

    return load(path, series_uid=series_uid, progress=progress)


def load_scanned(series, path, progress: Callable[[int, int], None] | None = None) -> Volume:
    from app.io.loader import load_scanned_series

    return load_scanned_series(series, path, progress)


def scan_beside(path) -> list:
    from app.io.loader import scan_beside as scan

    return scan(path)


def series_preview(series) -> Volume:
    """The middle frame of a scanned series only (the browser's thumbnail)."""
    from app.io.dicom_load import load_series

    middle = series.frames[len(series.frames) // 2]
    columns, rows, _ = series.size_ijk
    return load_series(dataclasses.replace(series, frames=[middle], size_ijk=(columns, rows, 1)))


def export_annotations(
    document, volume: Volume, folder, deidentify: bool = False, warnings=None, compare_volumes=None
) -> list:
    """The annotation bundle; ``warnings`` collects what a de-identified export could not check;
    ``compare_volumes`` (panel name -> volume) are measured into the sidecar's measurements block."""
    from app.io.annotation_export import export_annotation_bundle

    return export_annotation_bundle(
        document, volume, folder, deidentify=deidentify, warnings=warnings, compare_volumes=compare_volumes
    )


def pacs_load_config():
    from app.pacs.nodes import load_config

    return load_config()


def pacs_find(node, config, query) -> list[dict]:
    from app.pacs.service import find

    return find(node, config, query)


def pacs_retrieve(node, config, study_uid, series_uid=None, progress=None, cancel=None):
    from app.pacs.cache import StudyCache

    return StudyCache.for_config(config).retrieve(node, config, study_uid, series_uid, progress, cancel)


def pacs_send(node, config, path):
    from pathlib import Path

    from app.pacs.service import send

    return send(node, config, Path(path))


def save_nifti(volume: Volume, path, extra_sidecar: dict | None = None):
    from app.io.nifti import save_nifti as save

    return save(volume, path, extra_sidecar=extra_sidecar)


def file_services() -> FileServices:
    pacs = PacsServices(pacs_load_config, pacs_find, pacs_retrieve, pacs_send)
    return FileServices(
        load_volume, scan_beside, series_preview, export_annotations, pacs, load_scanned, save_nifti
    )
