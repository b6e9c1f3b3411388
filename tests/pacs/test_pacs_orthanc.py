"""Query, retrieve and send against a real Orthanc, through the `pacs` command line (the
contract outside checks use): every pixel and the geometry come back as uploaded, over C-GET,
C-MOVE and WADO-RS; synthesized series, SR and SEG go back marked; faults say what happened."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.pacs.conftest import pixels_by_uid

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def pacs(*args, config=None, rc=None, timeout=120) -> subprocess.CompletedProcess:
    extra = ["--config", str(config)] if config else []
    command = [sys.executable, str(ROOT / "main.py"), "pacs", args[0], *extra, *map(str, args[1:])]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if rc is not None:
        assert result.returncode == rc, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result


@pytest.mark.parametrize("node", ["orthanc-get", "orthanc-web"])
def test_echo(orthanc, pacs_config, node):
    assert "answered in" in pacs("echo", node, config=pacs_config, rc=0).stdout


def test_nodes_lists_the_configuration_without_secrets(pacs_config):
    data = json.loads(pacs("nodes", "--json", config=pacs_config, rc=0).stdout)
    assert [n["name"] for n in data["nodes"]] == ["orthanc-get", "orthanc-move", "orthanc-web"]
    assert data["nodes"][1]["retrieve"] == "move" and data["nodes"][2]["kind"] == "dicomweb"


@pytest.mark.parametrize("node", ["orthanc-get", "orthanc-web"])
def test_find_studies_and_series(orthanc, pacs_config, node):
    study = orthanc.study
    found = json.loads(pacs("find", node, "--patient-id", study["patient_id"], "--json", config=pacs_config, rc=0).stdout)
    assert [m["study_uid"] for m in found] == [study["study_uid"]]
    assert set(found[0]) >= {"level", "patient_id", "patient_name", "study_uid", "study_date", "modalities", "accession"}
    series = json.loads(pacs("find", node, "--level", "series", "--study", study["study_uid"], "--json", config=pacs_config, rc=0).stdout)
    assert sorted(s["series_uid"] for s in series) == sorted([study["series_a"], study["series_b"]])
    assert {s["instance_count"] for s in series} == {12}
    none = json.loads(pacs("find", node, "--patient-id", "NOBODY", "--json", config=pacs_config, rc=0).stdout)
    assert none == []


@pytest.mark.parametrize("node", ["orthanc-get", "orthanc-move", "orthanc-web"])
def test_get_brings_back_every_pixel_and_the_geometry(orthanc, pacs_config, tmp_path, node):
    study = orthanc.study
    out = tmp_path / "got"
    result = pacs("get", node, "--study", study["study_uid"], out, config=pacs_config, rc=0)
    assert "retrieved 24 instance(s) in 2 series" in result.stdout
    original, retrieved = pixels_by_uid(study["files"]), pixels_by_uid(sorted(out.rglob("*.dcm")))
    assert sorted(original) == sorted(retrieved)
    for uid, (pixels, *geometry) in original.items():
        assert np.array_equal(pixels, retrieved[uid][0]) and tuple(geometry) == retrieved[uid][1:]
    # Loaded as volumes, the series sit where the originals do (world coordinates).
    from app.io.loader import load_volume

    for series in (study["series_a"], study["series_b"]):
        mine = load_volume(out, series_uid=series)
        theirs = load_volume(Path(study["files"][0]).parent.parent, series_uid=series)
        assert np.array_equal(mine.voxels, theirs.voxels) and mine.geometry.allclose(theirs.geometry)
    # The output policy: an existing OUT_DIR is refused, and nothing is changed.
    again = pacs("get", node, "--study", study["study_uid"], out, config=pacs_config, rc=2)
    assert "already exists" in again.stderr


def test_get_one_series_over_wado(orthanc, pacs_config, tmp_path):
    study = orthanc.study
    pacs("get", "orthanc-web", "--study", study["study_uid"], "--series", study["series_b"], tmp_path / "b", config=pacs_config, rc=0)
    assert [p.name for p in (tmp_path / "b").iterdir()] == [study["series_b"]]


def test_partial_retrieval_writes_nothing_and_says_how_many(orthanc, pacs_config, tmp_path):
    result = pacs("get", "orthanc-get", "--study", orthanc.partial["study_uid"], tmp_path / "p", config=pacs_config, rc=1)
    # Orthanc stops at the instance it cannot send; the count comes from its own query answer.
    assert re.search(r"received \d of 4 instance\(s\), \d failed", result.stderr) and "nothing written" in result.stderr
    assert not (tmp_path / "p").exists() and not list(tmp_path.glob(".p*"))


def test_send_a_synthesized_series_an_sr_and_a_seg_keeps_them_synthetic(orthanc, pacs_config, tmp_path):
    import pydicom

    from app.core.provenance import Provenance
    from app.io.dicom_export import write_derived_series
    from app.io.loader import load_volume

    source = Path(orthanc.study["files"][0]).parent
    volume = load_volume(source)
    synthetic = volume.with_voxels(volume.voxels * 0.5, provenance=Provenance("test-gan", "1.0", task="denoising"), name="synth")
    write_derived_series(synthetic, tmp_path / "synth", source=str(source))
    result = pacs("send", "orthanc-get", tmp_path / "synth", config=pacs_config, rc=0)
    assert "sent 12 of 12 file(s)" in result.stdout
    first = pydicom.dcmread(sorted((tmp_path / "synth").rglob("*.dcm"))[0])
    tags = orthanc.instance_tags(str(first.SOPInstanceUID))
    assert tags.get("0008,001c") == "YES" and "DERIVED" in tags.get("0008,0008", "")  # Synthetic Data, Image Type
    # The same series back over STOW-RS is accepted too (Orthanc keeps one copy).
    assert "sent 12 of 12" in pacs("send", "orthanc-web", tmp_path / "synth", config=pacs_config, rc=0).stdout
    # A measurement SR and a SEG drawn on the synthesized series, over DIMSE and DICOMweb.
    from app.annotations.document import AnnotationDocument
    from app.annotations.shapes import PointMarker
    from app.io.dicom_seg import write_label_seg
    from app.io.dicom_sr import write_measurement_sr

    derived = [pydicom.dcmread(p) for p in sorted((tmp_path / "synth").rglob("*.dcm"))]
    on_disk = load_volume(tmp_path / "synth")
    document = AnnotationDocument()
    document.insert(PointMarker(label="finding", position_lps=on_disk.geometry.lps_from_index([50, 60, 5])))
    sr = write_measurement_sr(document, derived, tmp_path / "sr.dcm", volume=on_disk)
    labels = np.zeros(on_disk.voxels.shape, dtype=np.uint8)
    labels[5, 50:60, 40:50] = 1
    seg = write_label_seg(labels, on_disk.geometry, derived, tmp_path / "seg.dcm", {1: "finding"})
    assert "sent 1 of 1" in pacs("send", "orthanc-get", sr, config=pacs_config, rc=0).stdout
    assert "sent 1 of 1" in pacs("send", "orthanc-web", seg, config=pacs_config, rc=0).stdout
    for path in (sr, seg):
        stored = orthanc.instance_tags(str(pydicom.dcmread(path).SOPInstanceUID))
        assert stored["0020,000d"] == str(first.StudyInstanceUID)  # filed in the same study


def test_unreachable_node_answers_within_the_timeout(tmp_path):
    import time

    from tests.pacs.orthanc import free_port

    config = tmp_path / "pacs.yaml"
    port = free_port()  # nothing listens there
    config.write_text(f"nodes:\n  dead: {{ae_title: X, host: 127.0.0.1, port: {port}, timeout_s: 3}}\n")
    started = time.monotonic()
    result = pacs("echo", "dead", config=config, rc=2)
    assert "connection refused: nothing listens on 127.0.0.1" in result.stderr and time.monotonic() - started < 30


def test_a_server_that_never_answers_is_reported_within_the_timeout(tmp_path):
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections land in the backlog; nothing ever answers the association
    try:
        port = silent.getsockname()[1]
        config = tmp_path / "pacs.yaml"
        config.write_text(f"nodes:\n  silent: {{ae_title: X, host: 127.0.0.1, port: {port}, timeout_s: 2}}\n")
        started = time.monotonic()
        result = pacs("echo", "silent", config=config, rc=2)
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert "did not answer the association within 2 s" in result.stderr and result.stderr.count("\n") == 1
    assert elapsed < 20  # the 2 s timeout plus the interpreter's start, not a hang


def test_a_wrong_called_ae_title_is_named(orthanc, tmp_path):
    result = pacs("echo", f"NOTORTHANC@127.0.0.1:{orthanc.dicom_port}", rc=2)
    assert "association rejected" in result.stderr and "'NOTORTHANC'" in result.stderr


def test_secrets_in_the_configuration_file_are_refused(tmp_path):
    config = tmp_path / "pacs.yaml"
    config.write_text("nodes:\n  web: {url: https://pacs.example.org/dicom-web, auth: basic, username: u, password: hunter2}\n")
    result = pacs("nodes", config=config, rc=2)
    assert "secret in clear text (password)" in result.stderr and "hunter2" not in result.stderr
