"""One-step export of a reading's annotations: JSON sidecar, SR, SEG and mask NIfTI.

SR and SEG must refer to DICOM images. For a volume loaded from DICOM they refer to that
series; for any other volume (NIfTI, a synthesized one) a derived DICOM series of the volume is
written first and they refer to it. Used by the viewer's annotation dock and the export CLI.
"""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset

from app.annotations.document import AnnotationDocument
from app.annotations.sidecar import save_annotations
from app.core.volume import Volume
from app.io.dicom_export import ExportError, read_series_headers, write_derived_series
from app.io.dicom_seg import write_label_seg
from app.io.dicom_sr import write_measurement_sr
from app.io.mask_nifti import save_label_mask_nifti


def loaded_dicom_series(volume: Volume) -> tuple[Path, str] | None:
    """(folder, Series Instance UID) of a volume app.io.loader read from DICOM, else None."""
    folder = volume.metadata.get("source_path")
    series_uid = volume.metadata.get("SeriesInstanceUID")
    if folder and series_uid and Path(folder).is_dir():
        return Path(folder), str(series_uid)
    return None


def evidence_headers(volume: Volume, derived_dir: str | Path | None = None) -> list[Dataset]:
    """Headers of the series SR/SEG refer to: ``derived_dir`` when given, else the volume's own."""
    if derived_dir is not None:
        return read_series_headers(derived_dir)
    loaded = loaded_dicom_series(volume)
    if loaded is None:
        raise ExportError(
            "SR and SEG refer to a DICOM series: this volume is not DICOM, write it as DICOM first"
        )
    return read_series_headers(*loaded)


def export_annotation_bundle(
    document: AnnotationDocument, volume: Volume, out_dir: str | Path, deidentify: bool = False
) -> list[Path]:
    """Write everything the annotations can become into ``out_dir``; return the paths.

    ``volume`` is the one the annotations were drawn on (the mask's grid). With
    ``deidentify``, a de-identified derived series is always written and SR/SEG refer to it.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [save_annotations(document, out_dir / "annotations.annotations.json")]
    mask = document.mask if document.mask is not None and document.mask.voxel_count() else None
    if mask is not None:
        written.append(save_label_mask_nifti(mask.labels, mask.geometry, out_dir / "mask.nii.gz", mask.names))
    if len(document) == 0 and mask is None:
        return written
    derived_dir = None
    if deidentify or loaded_dicom_series(volume) is None:
        derived_dir = out_dir / "series"
        written.extend(write_derived_series(volume, derived_dir, deidentify=deidentify))
    evidence = evidence_headers(volume, derived_dir)
    if len(document):
        written.append(write_measurement_sr(document, evidence, out_dir / "measurements_sr.dcm", volume))
    if mask is not None:
        written.append(
            write_label_seg(mask.labels, mask.geometry, evidence, out_dir / "mask_seg.dcm", mask.names)
        )
    return written
