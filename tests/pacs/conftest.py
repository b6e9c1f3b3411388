"""One Orthanc for the PACS tests, holding a two-series study (one series RLE-compressed) and a
second study with an instance of a class the retriever does not accept (a partial retrieval)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import yaml
from pydicom.uid import RLELossless, generate_uid

from tests.pacs.orthanc import Orthanc, available, free_port

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo" / "generated" / "demo_mr_t1"
OUR_AE = "SYNTHVIEWTEST"


def build_study(folder: Path) -> dict:
    """Series A: 12 demo slices as they are; series B: the same slices inverted, RLE, new UIDs."""
    sources = sorted(DEMO.glob("*.dcm"))[80:92]
    series_a, series_b = folder / "A", folder / "B"
    series_a.mkdir(parents=True)
    series_b.mkdir()
    b_uid = generate_uid()
    for n, path in enumerate(sources):
        ds = pydicom.dcmread(path)
        ds.save_as(series_a / path.name)
        ds.SeriesInstanceUID = b_uid
        ds.SeriesNumber = 2
        ds.SeriesDescription = "inverted, RLE"
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        pixels = ds.pixel_array
        ds.compress(RLELossless, (pixels.max() - pixels).astype(pixels.dtype))
        ds.InstanceNumber = n + 1
        ds.save_as(series_b / path.name)
    first = pydicom.dcmread(series_a / sources[0].name)
    return {"study_uid": str(first.StudyInstanceUID), "series_a": str(first.SeriesInstanceUID), "series_b": b_uid,
            "files": sorted(series_a.glob("*.dcm")) + sorted(series_b.glob("*.dcm")), "patient_id": str(first.PatientID)}  # fmt: skip


def build_partial_study(folder: Path) -> dict:
    """Three MR slices and one Encapsulated PDF: the PDF is a class our C-GET does not accept."""
    folder.mkdir(parents=True)
    study_uid, partial_series = generate_uid(), generate_uid()
    files = []
    for path in sorted(DEMO.glob("*.dcm"))[90:93]:
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, partial_series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.PatientID = "PARTIAL"
        ds.save_as(folder / path.name)
        files.append(folder / path.name)
    pdf = pydicom.dcmread(files[0])
    del pdf.PixelData
    pdf.SOPClassUID = pdf.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    pdf.SOPInstanceUID = pdf.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    pdf.SeriesInstanceUID = generate_uid()
    pdf.Modality = "DOC"
    pdf.MIMETypeOfEncapsulatedDocument = "application/pdf"
    pdf.EncapsulatedDocument = b"%PDF-1.4\n%%EOF\n"
    pdf.save_as(folder / "doc.dcm")
    files.append(folder / "doc.dcm")
    return {"study_uid": study_uid, "files": files}


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory):
    if not available():
        pytest.skip("Orthanc is not installed (scripts/install.sh installs orthanc and orthanc-dicomweb)")
    folder = tmp_path_factory.mktemp("orthanc")
    server = Orthanc(folder, free_port(), free_port(), OUR_AE, free_port()).start()
    study = build_study(folder / "study")
    partial = build_partial_study(folder / "partial")
    server.upload(study["files"] + partial["files"])
    server.study, server.partial = study, partial
    yield server
    server.remove()


@pytest.fixture
def pacs_config(orthanc, tmp_path):
    """A user configuration naming the test Orthanc three ways (C-GET, C-MOVE, DICOMweb)."""
    path = tmp_path / "pacs.yaml"
    path.write_text(yaml.safe_dump({
        "local": {"ae_title": OUR_AE, "storage_port": orthanc.our_port, "cache_dir": str(tmp_path / "cache")},
        "nodes": {
            "orthanc-get": {"ae_title": orthanc.aet, "host": "127.0.0.1", "port": orthanc.dicom_port, "timeout_s": 10},
            "orthanc-move": {"ae_title": orthanc.aet, "host": "127.0.0.1", "port": orthanc.dicom_port, "retrieve": "move"},
            "orthanc-web": {"url": orthanc.dicomweb, "timeout_s": 10},
        },
    }))  # fmt: skip
    return path


def pixels_by_uid(files) -> dict[str, tuple]:
    """SOPInstanceUID -> (pixels, position, orientation, spacing) of DICOM files."""
    result = {}
    for path in files:
        ds = pydicom.dcmread(path)
        result[str(ds.SOPInstanceUID)] = (
            np.asarray(ds.pixel_array), tuple(map(float, ds.ImagePositionPatient)),
            tuple(map(float, ds.ImageOrientationPatient)), tuple(map(float, ds.PixelSpacing)),
        )  # fmt: skip
    return result
