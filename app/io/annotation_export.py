"""One-step export of a reading's annotations: JSON sidecar, SR, SEG and mask NIfTI.

SR and SEG must refer to DICOM images. For a volume loaded from DICOM they refer to that
series; for any other volume (NIfTI, a synthesized one) a derived DICOM series of the volume is
written first and they refer to it. Used by the viewer's annotation dock and the export CLI.
"""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset

from app.annotations.document import AnnotationDocument
from app.annotations.measurements import measurements_block
from app.annotations.shapes import PlanarRegion, Ruler
from app.annotations.sidecar import document_from_dict, document_to_dict, save_annotations
from app.core.volume import Volume
from app.io.dicom_export import (
    ExportError,
    known_identifiers,
    read_series_headers,
    source_of,
    write_derived_series,
)
from app.io.dicom_seg import write_label_seg
from app.io.dicom_sr import write_measurement_sr
from app.io.identifiers import REMOVED, KnownIdentifiers
from app.io.mask_nifti import save_label_mask_nifti
from app.io.pseudonym_uids import UidPseudonyms


def loaded_dicom_series(volume: Volume) -> tuple[Path, str] | None:
    """(folder, Series Instance UID) of a volume app.io.loader read from DICOM, else None."""
    folder = volume.source_path
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


def deidentified_document(
    document: AnnotationDocument, known: KnownIdentifiers, pseudonym=None
) -> tuple[AnnotationDocument, list[str]]:
    """A copy of ``document`` fit for a de-identified export, and the free text it still holds.

    Labels and label names lose the source's known identifiers; the reference keeps only its
    frame of reference, as the de-identified series' pseudonym (the volume's name may name the
    patient, and the original UID links back to the source).
    """
    pseudonym = pseudonym or UidPseudonyms()
    data = document_to_dict(document)
    uid = (data.get("reference") or {}).get("frame_of_reference_uid")
    data["reference"] = {"frame_of_reference_uid": pseudonym(str(uid))} if uid else {}
    texts = []
    for item in data["annotations"]:
        item["label"] = known.scrub(item["label"])
        texts.append(item["label"])
    if data.get("mask"):
        data["mask"]["names"] = {k: known.scrub(str(v)) for k, v in data["mask"]["names"].items()}
        texts.extend(data["mask"]["names"].values())
    kept = sorted({text for text in texts if text.replace(REMOVED, "").strip()})
    return document_from_dict(data, "annotations"), kept


def free_text_warning(kept: list[str]) -> str:
    """What a de-identified export says about the free text it could not check, or ""."""
    if not kept:
        return ""
    shown = ", ".join(repr(text) for text in kept[:8]) + (" ..." if len(kept) > 8 else "")
    return (
        f"de-identified export keeps {len(kept)} free-text label(s) after removing the source's known "
        f"identifiers: {shown}; check them for other identifying text"
    )


def export_annotation_bundle(
    document: AnnotationDocument,
    volume: Volume,
    out_dir: str | Path,
    deidentify: bool = False,
    warnings: list[str] | None = None,
    compare_volumes: dict[str, Volume] | None = None,
) -> list[Path]:
    """Write everything the annotations can become into ``out_dir``; return the paths.

    ``volume`` is the one the annotations were drawn on (the mask's grid). With
    ``deidentify``, a de-identified derived series is always written and SR/SEG refer to it;
    every file then is de-identified (labels scrubbed of the source's identifiers), and what
    free text stays is added to ``warnings``. The sidecar carries a ``measurements`` block
    (line profiles, noise SD, CNR, NPS) for each of ``compare_volumes`` (panel name -> volume;
    default: ``volume`` alone, as "image").
    """
    out_dir = Path(out_dir)
    volumes = dict(compare_volumes) if compare_volumes else {"image": volume}
    if deidentify:
        known = known_identifiers(volume, source_of(volume))
        document, kept = deidentified_document(document, known)
        if kept and warnings is not None:
            warnings.append(free_text_warning(kept))
        volumes = _scrubbed_names(volumes, known)
    out_dir.mkdir(parents=True, exist_ok=True)
    measured = any(isinstance(item, (Ruler, PlanarRegion)) for item in document)
    measurements = measurements_block(document, volumes) if measured else None
    written = [save_annotations(document, out_dir / "annotations.annotations.json", measurements)]
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
        written.append(
            write_measurement_sr(document, evidence, out_dir / "measurements_sr.dcm", volume, deidentify)
        )
    if mask is not None:
        written.append(
            write_label_seg(
                mask.labels, mask.geometry, evidence, out_dir / "mask_seg.dcm", mask.names, deidentify
            )
        )
    return written


def _scrubbed_names(volumes: dict[str, Volume], known: KnownIdentifiers) -> dict[str, Volume]:
    """Panel names without the source's identifiers (a volume's name may name the patient)."""
    scrubbed: dict[str, Volume] = {}
    for name, item in volumes.items():
        key = base = known.scrub(name)
        number = 2
        while key in scrubbed:
            key, number = f"{base} ({number})", number + 1
        scrubbed[key] = item
    return scrubbed
