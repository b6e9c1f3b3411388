"""``python main.py export``: volumes, annotations, SR, SEG and masks from the command line."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest

from app.annotations.document import AnnotationDocument
from app.annotations.label_mask import LabelMask
from app.annotations.shapes import EllipseRoi, Ruler
from app.annotations.sidecar import save_annotations
from app.core.volume import Volume
from app.io.nifti import save_nifti
from main import main
from tests.io.export_helpers import dciodvfy_errors, source_header, synthetic_mr_volume


def annotated(volume: Volume) -> AnnotationDocument:
    document = AnnotationDocument()
    center = volume.geometry.lps_from_index([3, 3, 2])
    u, v = volume.geometry.direction[:, 0], volume.geometry.direction[:, 1]
    document.insert(Ruler(label="width", start_lps=center, end_lps=center + 4 * u))
    document.insert(
        EllipseRoi(
            label="lesion", center_lps=center, axis_u_lps=u, axis_v_lps=v, half_width_mm=2, half_height_mm=1.5
        )
    )
    mask = LabelMask.empty_like(volume.geometry, volume.shape_kji)
    mask.labels[2, 2:4, 2:5] = 1
    document.mask = mask
    return document


def test_synthetic_nifti_to_deidentified_dicom_sr_seg_mask(tmp_path, capsys):
    volume = synthetic_mr_volume()
    nifti = save_nifti(volume, tmp_path / "synth.nii.gz")
    save_annotations(annotated(volume), tmp_path / "synth.annotations.json")
    out = tmp_path / "out"
    code = main(
        [
            "export",
            str(nifti),
            "--dicom", str(out / "series"),
            "--sr", str(out / "sr.dcm"),
            "--seg", str(out / "seg.dcm"),
            "--mask-nifti", str(out / "mask.nii.gz"),
            "--nifti", str(out / "copy.nii.gz"),
            "--deidentify",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    series = sorted((out / "series").glob("*.dcm"))
    assert len(series) == 5
    first = pydicom.dcmread(series[0])
    assert first[0x0008, 0x001C].value == "YES" and first.PatientIdentityRemoved == "YES"
    sr = hd.sr.srread(out / "sr.dcm")
    assert sr.StudyInstanceUID == first.StudyInstanceUID
    assert len(sr.content.get_planar_roi_measurement_groups()) == 2
    seg = hd.seg.segread(out / "seg.dcm")
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == first.SeriesInstanceUID
    assert (out / "mask.nii.gz").exists() and (out / "copy.json").exists()
    assert dciodvfy_errors(out / "sr.dcm") == [] and dciodvfy_errors(out / "seg.dcm") == []


def test_dicom_input_sr_refers_to_the_input_series(tmp_path, capsys):
    from app.io.dicom_export import write_derived_series

    acquired = synthetic_mr_volume()
    acquired = Volume(acquired.voxels, acquired.geometry, modality="MR")
    source_paths = write_derived_series(
        acquired, tmp_path / "mr", source=source_header(), keep_study_uid=True
    )
    save_annotations(annotated(acquired), tmp_path / "notes.json")
    code = main(
        [
            "export",
            str(tmp_path / "mr"),
            "--annotations",
            str(tmp_path / "notes.json"),
            "--sr",
            str(tmp_path / "sr.dcm"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    sr = pydicom.dcmread(tmp_path / "sr.dcm")
    source = pydicom.dcmread(source_paths[0])
    assert sr.StudyInstanceUID == source.StudyInstanceUID
    assert sr.PatientName == "DOE^JANE"
    groups = hd.sr.srread(tmp_path / "sr.dcm").content.get_planar_roi_measurement_groups()
    lesion = [g for g in groups if str(g.tracking_identifier) == "lesion"][0]
    assert "Mean" in {m.name.meaning for m in lesion.get_measurements()}


def test_bad_requests_exit_2_with_a_message(tmp_path, capsys):
    volume = synthetic_mr_volume()
    nifti = save_nifti(volume, tmp_path / "v.nii.gz")
    assert main(["export", str(nifti)]) == 2
    assert "nothing to do" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.nii.gz"), "--nifti", str(tmp_path / "x.nii.gz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["export", str(nifti), "--sr", str(tmp_path / "sr.dcm")]) == 2
    assert "annotation" in capsys.readouterr().err
    save_annotations(annotated(volume), tmp_path / "v.annotations.json")
    assert main(["export", str(nifti), "--sr", str(tmp_path / "sr.dcm")]) == 2
    assert "--dicom" in capsys.readouterr().err
    np.testing.assert_equal((tmp_path / "sr.dcm").exists(), False)


def test_nifti_outputs_go_into_a_new_folder(tmp_path, capsys):
    # --sr/--seg created their folder, --nifti/--mask-nifti failed with "[Errno 2] No such file".
    volume = synthetic_mr_volume()
    nifti = save_nifti(volume, tmp_path / "v.nii.gz")
    save_annotations(annotated(volume), tmp_path / "v.annotations.json")
    out = tmp_path / "new" / "folder"
    code = main(
        ["export", str(nifti), "--nifti", str(out / "copy.nii.gz"), "--mask-nifti", str(out / "m.nii.gz")]
    )
    assert code == 0, capsys.readouterr().err
    assert (out / "copy.nii.gz").exists() and (out / "copy.json").exists() and (out / "m.nii.gz").exists()


def test_exporting_a_nifti_onto_itself_is_refused_and_keeps_its_voxels(tmp_path):
    # An uncompressed .nii is read memory-mapped: writing the same path in place truncated the
    # file under the map (bus error, exit 135) and left a 352-byte header: the input was lost.
    # Now an input is never an output (app.cli.writable), even with --force. A child process,
    # so that the old crash cannot take the test run with it.
    import subprocess
    import sys
    from pathlib import Path

    from app.io.nifti import load_nifti

    volume = synthetic_mr_volume()
    path = save_nifti(volume, tmp_path / "same.nii")
    main_py = Path(__file__).resolve().parents[2] / "main.py"
    result = subprocess.run(
        [sys.executable, str(main_py), "export", str(path), "--nifti", str(path), "--force"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "is also an input" in result.stderr, result.stderr
    again = load_nifti(path)
    np.testing.assert_array_equal(np.asarray(again.voxels), volume.voxels)
    assert again.is_synthetic
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.json", "same.nii"]  # no partial file left


def test_dicom_target_that_is_a_file_is_a_clear_error(tmp_path, capsys):
    nifti = save_nifti(synthetic_mr_volume(), tmp_path / "v.nii.gz")
    (tmp_path / "notes.txt").write_text("keep me")
    assert main(["export", str(nifti), "--dicom", str(tmp_path / "notes.txt")]) == 2  # was a traceback
    assert "not a folder" in capsys.readouterr().err
    assert main(["export", str(nifti), "--dicom", str(tmp_path / "notes.txt" / "series")]) == 2
    assert "notes.txt" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_seg_of_a_tilt_corrected_input_says_how_to_export_it(tmp_path, capsys):
    from app.io.loader import load_volume
    from tests.io.series_factory import write_tilted_ball_series

    write_tilted_ball_series(tmp_path / "tilted", [0.0, 0.0, 20.0], 6.0, slices=12, shape=(24, 20))
    volume = load_volume(tmp_path / "tilted")  # corrected on load onto a taller grid
    save_annotations(annotated(volume), tmp_path / "notes.json")
    args = ["export", str(tmp_path / "tilted"), "--annotations", str(tmp_path / "notes.json")]
    assert main([*args, "--seg", str(tmp_path / "seg.dcm")]) == 2
    assert "add --dicom DIR" in capsys.readouterr().err
    code = main([*args, "--seg", str(tmp_path / "seg.dcm"), "--dicom", str(tmp_path / "series")])
    assert code == 0, capsys.readouterr().err
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    first = pydicom.dcmread(next((tmp_path / "series").glob("*.dcm")))
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == first.SeriesInstanceUID
    assert "gantry tilt" in first.DerivationDescription


def test_measurements_on_input_synthesized_and_difference(tmp_path, capsys):
    import json

    from app.annotations.shapes import RectangleRoi
    from app.core.provenance import Provenance
    from app.core.volume import Geometry

    rng = np.random.default_rng(5)
    geometry = Geometry.identity((1.0, 1.0, 2.0))
    original = Volume((100.0 + rng.normal(0, 4.0, (4, 32, 32))).astype(np.float32), geometry, modality="CT")
    synthesized = original.with_voxels(original.voxels * 0.5 + 50.0, provenance=Provenance("toy-gan", "0.1"))
    moved = Volume(  # the synthesized volume stored on another grid (shifted 3 mm): resampled, not refused
        synthesized.voxels, Geometry.identity((1.0, 1.0, 2.0), origin_lps_mm=(3.0, 0.0, 0.0)),
        modality="CT", provenance=Provenance("toy-gan", "0.1"),
    )
    paths = [save_nifti(v, tmp_path / f"{n}.nii.gz") for n, v in (("orig", original), ("synth", synthesized), ("moved", moved))]
    document = AnnotationDocument()
    document.insert(Ruler(label="line", start_lps=[2.0, 16.0, 2.0], end_lps=[28.0, 16.0, 2.0]))
    document.insert(RectangleRoi(label="liver", center_lps=[10.0, 16.0, 2.0], half_width_mm=6, half_height_mm=6))
    document.insert(RectangleRoi(label="background", center_lps=[22.0, 16.0, 2.0], half_width_mm=5, half_height_mm=5))
    save_annotations(document, tmp_path / "orig.annotations.json")
    out = tmp_path / "measurements.json"
    args = ["export", str(paths[0]), "--measurements", str(out), "--measure-with", str(paths[1]), "--measure-with", str(paths[2])]
    assert main(args) == 0, capsys.readouterr().err
    panels = json.loads(out.read_text())["measurements"]["volumes"]
    assert list(panels) == ["original", "synthesized 1", "difference 1", "synthesized 2", "difference 2"]
    sd = {name: panel["noise"][0]["sd"] for name, panel in panels.items()}
    assert sd["synthesized 1"] == pytest.approx(sd["original"] / 2, rel=1e-5)
    assert sd["difference 1"] == pytest.approx(sd["original"] / 2, rel=1e-5)  # 0.5 x - x + 50
    assert panels["synthesized 2"]["nps"][0]["patch_shape"] == [13, 13]  # 12 mm, edges inclusive
    assert panels["difference 2"]["nps"][0]["variance"] > 0  # a lazy, resampled difference measured too
    shifted = panels["difference 2"]["line_profiles"][0]["values"]  # the moved grid starts at x = 3 mm
    assert shifted[0] is None and all(value is not None for value in shifted[4:])
    contrast = panels["original"]["contrast"][0]
    assert (contrast["signal_label"], contrast["background_label"]) == ("liver", "background")
    assert main(args) == 2 and "exists" in capsys.readouterr().err  # never over an existing output
    assert main(["export", str(paths[0]), "--measure-with", str(paths[1]), "--nifti", str(tmp_path / "x.nii.gz")]) == 2
    assert "--measure-with needs --measurements" in capsys.readouterr().err
