"""Which inputs make a cohort, and the ids that name their output folders."""

from __future__ import annotations

import shutil

import pytest

from app.batch.cases import Case, CohortError, find_cases, input_sha256, safe_id
from tests.batch.cohort_factory import DEMO, write_cohort


def test_a_folder_lists_every_nifti_file_and_dicom_series(tmp_path):
    write_cohort(tmp_path / "nifti", 2)
    shutil.copytree(DEMO, tmp_path / "dicom" / "patient 1")
    cases = find_cases(tmp_path)
    kinds = sorted((c.series_uid is not None) for c in cases)
    assert kinds == [False, False, True]
    assert len({c.case_id for c in cases}) == 3
    dicom = next(c for c in cases if c.series_uid)
    assert dicom.case_id.startswith("dicom_patient_1_")  # a folder name without spaces or slashes
    assert find_cases(tmp_path) == cases  # the same ids on every run


def test_csv_cases_with_ids_series_and_relative_paths(tmp_path):
    write_cohort(tmp_path, 2)
    (tmp_path / "cohort.csv").write_text("path,case_id\ncase00.nii.gz,first\ncase01.nii.gz,\n")
    cases = find_cases(tmp_path / "cohort.csv")
    assert [c.case_id for c in cases] == ["first", "case01"]
    assert cases[0].path == str(tmp_path / "case00.nii.gz")


@pytest.mark.parametrize(
    "text, message",
    [
        ("file\nx.nii\n", "no 'path' column"),
        ("path\n\n", None),  # an empty file body: no cases
        ("path,case_id\na.nii,same\nb.nii,same\n", "case_id repeated: same"),
        ("path\na.nii\n,\n", "line 3: empty path"),
    ],
)
def test_csv_mistakes_are_named(tmp_path, text, message):
    (tmp_path / "c.csv").write_text(text)
    if message is None:
        assert find_cases(tmp_path / "c.csv") == []
        return
    with pytest.raises(CohortError, match=message):
        find_cases(tmp_path / "c.csv")


def test_ids_are_safe_folder_names():
    assert safe_id("../../etc/passwd") == "etc_passwd"
    assert safe_id(".hidden") == "hidden"
    assert len(safe_id("x" * 300)) == 80


def test_input_hash_follows_the_content(tmp_path):
    (path,) = write_cohort(tmp_path, 1)
    case = Case("c", str(path))
    before = input_sha256(case)
    path.write_bytes(path.read_bytes() + b"\0")
    assert input_sha256(case) != before
