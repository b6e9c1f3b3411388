"""A volume with no provenance of its own, exported with ``--source`` a series marked synthetic
(Synthetic Data YES): what derives from synthetic data is synthetic, so the export says so."""

from __future__ import annotations

import json

import pydicom

from app.io.dicom_export import write_derived_series
from app.io.nifti import save_nifti
from main import main
from tests.io.export_helpers import dciodvfy_errors, synthetic_mr_volume

SYNTHETIC_DATA = (0x0008, 0x001C)


def test_export_with_a_synthetic_source_is_marked_synthetic(tmp_path):
    synthesized = synthetic_mr_volume()
    write_derived_series(synthesized, tmp_path / "synthetic_series")
    plain = save_nifti(synthesized.with_voxels(synthesized.voxels, provenance=None), tmp_path / "plain.nii.gz")
    assert (
        main(
            [
                "export",
                str(plain),
                "--source",
                str(tmp_path / "synthetic_series"),
                "--dicom",
                str(tmp_path / "out"),
                "--nifti",
                str(tmp_path / "out.nii.gz"),
            ]
        )
        == 0
    )
    files = sorted((tmp_path / "out").glob("*.dcm"))
    for path in files:
        dataset = pydicom.dcmread(path)
        assert dataset[SYNTHETIC_DATA].value == "YES"
        assert dataset.SeriesDescription.startswith("SYNTHETIC pix2pix-t1t2")
        assert dataset.DerivationDescription.startswith("Synthesized by pix2pix-t1t2")
    assert dciodvfy_errors(files[0]) == []
    sidecar = json.loads((tmp_path / "out.json").read_text())
    assert sidecar["provenance"]["synthetic"] is True and sidecar["provenance"]["plugin_name"] == "pix2pix-t1t2"
