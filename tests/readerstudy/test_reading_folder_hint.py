"""Hints for a coordinator: the folder readers open, and how to act on a folders-mode warning."""

from __future__ import annotations

from main import main
from tests.readerstudy.conftest import create_folders_study


def test_reading_the_study_folder_points_to_its_reading_subfolder(tmp_path, case_folders, capsys):
    out_dir = tmp_path / "study"
    create_folders_study(case_folders, out_dir)
    capsys.readouterr()
    assert main(["study", "read", str(out_dir), "--reader", "R1"]) == 2
    err = capsys.readouterr().err
    assert f"readers open {out_dir / 'reading'}" in err
    assert "No such file" not in err


def test_folders_mode_warnings_say_how_to_set_the_options_they_name(tmp_path, case_folders, capsys):
    # int16 real, float32 synthetic, normalisation turned off: a quantisation leak
    real_dir, synthetic_dir = case_folders
    out_dir = tmp_path / "study"
    arguments = ["study", "create", "--real", str(real_dir), "--synthetic", str(synthetic_dir), str(out_dir)]
    assert main([*arguments, "--intensity-normalisation", "none"]) == 0  # 4 + 4: too few to refuse
    captured = capsys.readouterr()
    assert "levels" in captured.err and "--intensity-normalisation percentile" in captured.err
    assert "'study create --help'" in captured.err
    assert "blinding audit" in captured.out and "separates perfectly" in captured.out
