"""HTML hallucination report, compare pipeline, lesion checklist and append-only audit log."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest

from app.analysis.audit_log import AuditLog, Finding, LesionChecklist
from app.analysis.compare_run import run_compare
from app.analysis.png import encode_png
from app.analysis.report import render_report
from app.core.provenance import Provenance
from app.core.quantity_map import MapKind
from app.core.volume import Geometry, Volume


def lesion_pair(modality_out="MR"):
    geometry = Geometry(np.array([-30.0, -40.0, -10.0]), np.array([1.0, 1.0, 2.0]), np.eye(3))
    shape = (12, 40, 40)
    rng = np.random.default_rng(0)
    healthy = (100 + rng.normal(0, 2, shape)).astype(np.float32)
    original = healthy.copy()
    k, j, i = np.indices(shape)
    lesion = (i - 25) ** 2 + (j - 15) ** 2 + ((k - 6) * 2.0) ** 2 <= 5**2
    original[lesion] += 60
    provenance = Provenance("eraser", "0.1", task="pseudo-healthy")
    return (
        Volume(original, geometry, "MR", name="original"),
        Volume(healthy, geometry, modality_out, name="healthy", provenance=provenance),
        lesion,
        geometry,
    )


def test_compare_flags_the_erased_lesion_and_reports_metrics():
    original, healthy, lesion, geometry = lesion_pair()
    result = run_compare(original, healthy, threshold=20.0)
    assert len(result.regions) == 1
    region = result.regions[0]
    assert np.allclose(region.centroid_lps_mm, geometry.lps_from_index([25, 15, 6]), atol=0.5)
    assert region.volume_ml == pytest.approx(lesion.sum() * 2.0 / 1000, rel=0.3)
    assert region.peak_residual > 40
    data = json.loads(json.dumps(result.to_dict()))
    assert data["regions"][0]["centroid_lps_mm"] == pytest.approx(list(region.centroid_lps_mm), abs=1e-3)
    assert "synthesized_vs_original" in data["metrics"]
    assert data["synthesized_provenance"]["synthetic"] is True
    lower = result.with_threshold(1.0)
    assert lower.settings.threshold == 1.0 and len(lower.regions) >= 1


def test_cross_modality_without_reference_flags_nothing_and_says_why():
    original, synthetic_ct, _, _ = lesion_pair("CT")
    result = run_compare(original, synthetic_ct)
    assert not result.regions and not result.metrics
    assert any("cross-modality" in note for note in result.notes)
    with_reference = run_compare(
        original, synthetic_ct, reference=Volume(synthetic_ct.voxels + 0, synthetic_ct.geometry, "CT")
    )
    assert "synthesized_vs_reference" in with_reference.metrics and with_reference.residual_source.startswith(
        "reference"
    )


def test_report_embeds_region_images_settings_and_provenance():
    original, healthy, _, _ = lesion_pair()
    html = render_report(run_compare(original, healthy, threshold=20.0))
    assert html.count("data:image/png;base64,") == 1
    assert "SYNTHETIC — eraser 0.1" in html and "pseudo-healthy" in html
    assert "threshold (image units)" in html and "data range" in html
    assert "Region 1" in html and "LPS" in html


def test_png_encoder_writes_a_valid_file():
    pixels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    data = encode_png(pixels)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (4, 3)
    idat_length = struct.unpack(">I", data[33:37])[0]
    raw = zlib.decompress(data[41 : 41 + idat_length])
    assert raw == b"".join(b"\x00" + bytes(row) for row in pixels.tolist())


def test_checklist_sign_off_and_tamper_evident_log(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    findings = [Finding("F1", (1.0, 2.0, 3.0), "nodule", 8.0), Finding("F2", (4.0, 5.0, 6.0), "cyst")]
    checklist = LesionChecklist(log, "case-7", findings)
    checklist.confirm("F1", "present", "dr.a")
    with pytest.raises(ValueError, match="F2"):
        checklist.sign_off("dr.a")
    checklist.confirm("F2", "absent", "dr.a", note="erased by generator")
    with pytest.raises(ValueError):
        checklist.confirm("F2", "gone", "dr.a")
    with pytest.raises(KeyError):
        checklist.confirm("F9", "present", "dr.a")
    checklist.sign_off("dr.a", "reviewed")
    assert checklist.is_signed_off() and checklist.states() == {"F1": "present", "F2": "absent"}
    assert log.verify() == []
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["action"] == "sign_off"
    # Editing an earlier entry breaks the chain at the next line.
    lines[0] = lines[0].replace("present", "absent")
    (tmp_path / "audit.jsonl").write_text("\n".join(lines) + "\n")
    assert log.verify() == ["line 2: chain broken (an earlier line was edited or removed)"]


def test_cycle_and_ensemble_maps_flag_a_cross_modality_erasure():
    # MR -> CT generator that erased the lesion: the raw difference is meaningless, but the
    # cycle reconstruction (back to MR) lacks the lesion, and the ensemble disagrees there.
    original, synthetic_ct, lesion, geometry = lesion_pair("CT")
    reconstruction = Volume(synthetic_ct.voxels.copy(), geometry, "MR", name="cycle")  # lesion-free MR
    faithful_member = Volume(original.voxels.copy(), geometry, "CT", name="checkpoint 2")
    result = run_compare(
        original,
        synthetic_ct,
        threshold=20.0,
        cycle_reconstruction=reconstruction,
        ensemble=[faithful_member],
    )
    assert result.residual_source == "original - cycle reconstruction"
    assert len(result.regions) == 1
    assert np.allclose(result.regions[0].centroid_lps_mm, geometry.lps_from_index([25, 15, 6]), atol=0.5)
    sd = result.extra_maps["ensemble SD"].voxels
    assert sd[lesion].min() == pytest.approx(30.0, abs=1e-3) and sd[~lesion].max() < 1e-3  # |60| / 2
    means = result.to_dict()["regions"][0]["map_means"]
    assert means["cycle residual"] > 20 and means["ensemble SD"] > 10
    assert "ensemble SD" in result.to_dict()["maps"]
    # Every map says what it measures (the compare layout draws it as a map, not an image).
    kinds = {name: m.quantity_map.kind for name, m in result.extra_maps.items()}
    assert kinds == {"cycle residual": MapKind.CYCLE_RESIDUAL, "ensemble SD": MapKind.ENSEMBLE_SD}
    assert result.residual_map.quantity_map.kind is MapKind.RESIDUAL and not result.original.is_map
    html = render_report(result)
    assert "cycle residual map" in html and "mean ensemble SD inside" in html
