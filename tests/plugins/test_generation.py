"""Seeded sampling and export of generated samples as reader-study cases."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from app.io.nifti import load_nifti, save_nifti
from app.plugins.errors import PluginError
from app.plugins.generation import TRUTH_SYNTHETIC, SampleGenerator, export_cases, png_bytes

PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"


@pytest.fixture(scope="module")
def samples():
    return SampleGenerator(PLUGINS_DIR / "mr_t1_axial_dcgan").sample([3, 11])


def _png_chunks(data: bytes) -> dict[bytes, list[bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, position = {}, 8
    while position < len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        chunks.setdefault(kind, []).append(data[position + 8 : position + 8 + length])
        position += 12 + length
    return chunks


def test_png_bytes_round_trip_pixels_and_text():
    image = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    chunks = _png_chunks(png_bytes(image, {"Truth": "synthetic"}))
    width, height = (
        int.from_bytes(chunks[b"IHDR"][0][:4], "big"),
        int.from_bytes(chunks[b"IHDR"][0][4:8], "big"),
    )
    assert (width, height) == (4, 3)
    raw = zlib.decompress(chunks[b"IDAT"][0])
    rows = np.frombuffer(raw, np.uint8).reshape(3, 5)[:, 1:]
    np.testing.assert_array_equal(rows, np.round(image * 255).astype(np.uint8))
    assert chunks[b"tEXt"] == [b"Truth\x00synthetic"]


def test_export_writes_nifti_png_and_json_with_seed_plugin_and_truth(samples, tmp_path):
    written = export_cases(samples, tmp_path, write_nifti=save_nifti)
    assert [p.name for p in written] == [
        "mr-t1-axial-dcgan-seed3.case.json",
        "mr-t1-axial-dcgan-seed11.case.json",
    ]
    record = json.loads(written[0].read_text())
    assert record["truth"] == TRUTH_SYNTHETIC and record["seed"] == 3
    assert record["plugin"] == "mr-t1-axial-dcgan" and len(record["weights_sha256"]) == 64
    assert record["provenance"]["synthetic"] is True and record["provenance"]["seed"] == 3
    volume = load_nifti(tmp_path / record["files"]["nifti"])
    assert volume.is_synthetic and volume.provenance.seed == 3
    assert volume.voxels.shape == (1, 64, 64)
    np.testing.assert_allclose(volume.voxels[0], samples[0].image, atol=1e-6)
    assert volume.geometry.spacing_mm[0] == pytest.approx(samples[0].pixel_spacing_mm[1])
    png = _png_chunks((tmp_path / record["files"]["png"]).read_bytes())
    assert b"Truth\x00synthetic" in png[b"tEXt"]
    index = json.loads((tmp_path / "cases.json").read_text())
    assert [c["truth"] for c in index["cases"]] == [TRUTH_SYNTHETIC, TRUTH_SYNTHETIC]


def test_exporting_again_does_not_duplicate_index_entries(samples, tmp_path):
    export_cases(samples[:1], tmp_path, formats=("png",))
    export_cases(samples, tmp_path, formats=("png",))
    index = json.loads((tmp_path / "cases.json").read_text())
    assert [c["case_id"] for c in index["cases"]] == ["mr-t1-axial-dcgan-seed3", "mr-t1-axial-dcgan-seed11"]
    assert not list(tmp_path.glob("*.nii.gz"))


def test_unknown_export_format_is_a_clear_error(samples, tmp_path):
    with pytest.raises(ValueError, match="unknown export format"):
        export_cases(samples, tmp_path, formats=("jpeg",))


def test_a_translation_plugin_is_not_a_sample_generator():
    with pytest.raises(PluginError, match="not a generator from noise"):
        SampleGenerator(PLUGINS_DIR / "mr_t1_denoise")


def test_nifti_export_without_a_writer_is_refused_before_anything_is_written(samples, tmp_path):
    # Only app.io writes NIfTI: app.plugins is handed the writer, and says so when it is not.
    with pytest.raises(ValueError, match="no NIfTI writer"):
        export_cases(samples, tmp_path / "cases")
    assert not (tmp_path / "cases").exists()
