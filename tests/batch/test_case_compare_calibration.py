"""The batch hallucination check reads the plugin's null calibration, as ``main.py compare``
does for the same pair: one operating point wherever the pair is checked."""

from __future__ import annotations

import json

import numpy as np

from app.batch.case_run import COMPARE_FILE, _compare
from app.batch.results import CaseRow
from app.core.provenance import Provenance
from app.core.volume import Geometry, Volume
from app.io.nifti import save_nifti
from main import main


def test_batch_and_compare_read_the_same_calibration(tmp_path):
    geometry = Geometry(np.zeros(3), np.ones(3), np.eye(3))
    rng = np.random.default_rng(0)
    output = np.full((12, 30, 30), 200.0, np.float32) + rng.normal(0, 2, (12, 30, 30)).astype(np.float32)
    image = output.copy()
    image[4:8, 10:16, 10:16] += 60.0
    original = Volume(image, geometry, "MR", name="t1")
    synthesized = Volume(output, geometry, "MR", name="out", provenance=Provenance("mr-t1-denoise", "1.0"))
    _compare(original, synthesized, tmp_path, CaseRow("c1", "t1.nii.gz", None, "done"))
    batch = json.loads((tmp_path / COMPARE_FILE).read_text())
    assert batch["operating_point"]["calibration_threshold"] is not None
    assert any(note.startswith("null calibration of mr-t1-denoise") for note in batch["notes"])
    paths = [save_nifti(v, tmp_path / f"{v.name}.nii.gz") for v in (original, synthesized)]
    assert main(["compare", *map(str, paths), "--json", str(tmp_path / "cli.json")]) == 0
    cli = json.loads((tmp_path / "cli.json").read_text())
    assert batch["operating_point"] == cli["operating_point"] and batch["region_count"] == cli["region_count"]
