"""The cases of a cohort: every DICOM series and NIfTI file under a folder, or the rows of a CSV.

A case is one input volume (a NIfTI file, or one series of a DICOM folder) with a stable,
file-system-safe ``case_id`` that names its output folder; the same input gives the same id on
every run, which is what lets a re-run skip finished cases.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import asdict, dataclass
from pathlib import Path

NIFTI_SUFFIXES = (".nii", ".nii.gz")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class CohortError(ValueError):
    """The cohort cannot be listed (missing input, a CSV without a ``path`` column, ...)."""


@dataclass(frozen=True)
class Case:
    case_id: str
    path: str  # a NIfTI file, or a DICOM folder/file holding the series
    series_uid: str | None = None
    description: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Case:
        return cls(**{k: data.get(k) for k in ("case_id", "path", "series_uid", "description")})


def is_nifti(path: str | Path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def safe_id(text: str, limit: int = 80) -> str:
    """``text`` as a folder name: unsafe characters folded to '_', no leading dot, at most ``limit``."""
    cleaned = _UNSAFE.sub("_", text).strip("._") or "case"
    if len(cleaned) > limit:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[: limit - 9]}_{digest}"
    return cleaned


def _nifti_stem(path: Path) -> str:
    name = path.name
    for suffix in NIFTI_SUFFIXES[::-1]:  # .nii.gz before .nii
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def find_cases(input_path: str | Path) -> list[Case]:
    """The cases of ``input_path``: a folder (NIfTI files and DICOM series under it), a CSV
    (``path`` column, optional ``series_uid`` and ``case_id``), or a single NIfTI/DICOM path."""
    path = Path(input_path)
    if not path.exists():
        raise CohortError(f"{input_path} does not exist")
    if path.is_file() and path.suffix.lower() == ".csv":
        return _cases_from_csv(path)
    if path.is_file():
        return _unique([Case(safe_id(_nifti_stem(path)), str(path))]) if is_nifti(path) else _dicom_cases(path, path.parent)
    nifti = [
        Case(safe_id(str(p.relative_to(path).with_name(_nifti_stem(p)))), str(p))
        for p in sorted(path.rglob("*"))
        if p.is_file() and is_nifti(p) and not p.name.startswith(".")
    ]
    return _unique(nifti + _dicom_cases(path, path))


def _dicom_cases(path: Path, root: Path) -> list[Case]:
    from app.io.dicom_scan import scan

    cases = []
    for series in scan(path).all_series():
        first = Path(series.frames[0].path) if series.frames else path
        where = first.parent.relative_to(root) if first.parent.is_relative_to(root) else Path(first.parent.name)
        label = f"{where}_{series.number}" if series.number is not None else str(where)
        label = f"{label}_{hashlib.sha256(series.uid.encode()).hexdigest()[:6]}"
        cases.append(Case(safe_id(label), str(path), series.uid, series.description))
    return cases


def _cases_from_csv(csv_path: Path) -> list[Case]:
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "path" not in reader.fieldnames:
            raise CohortError(f"{csv_path.name}: no 'path' column (found: {', '.join(reader.fieldnames or [])})")
        rows = list(reader)
    cases = []
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        raw = (row.get("path") or "").strip()
        if not raw:
            raise CohortError(f"{csv_path.name} line {number}: empty path")
        path = Path(raw) if Path(raw).is_absolute() else csv_path.parent / raw
        series_uid = (row.get("series_uid") or "").strip() or None
        case_id = (row.get("case_id") or "").strip() or (
            _nifti_stem(path) if is_nifti(path) else f"{path.name}_{(series_uid or '')[-8:]}"
        )
        cases.append(Case(safe_id(case_id), str(path), series_uid))
    ids = [c.case_id for c in cases]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise CohortError(f"{csv_path.name}: case_id repeated: {', '.join(repeated[:5])}")
    return cases


def _unique(cases: list[Case]) -> list[Case]:
    """Ids made unique by a suffix where two inputs fold to the same folder name."""
    seen: dict[str, int] = {}
    result = []
    for case in cases:
        count = seen.get(case.case_id, 0)
        seen[case.case_id] = count + 1
        result.append(case if count == 0 else Case(f"{case.case_id}_{count + 1}", case.path, case.series_uid, case.description))
    return result


def input_sha256(case: Case) -> str:
    """A content hash of the case's input: the NIfTI file, or the files of its DICOM series."""
    digest = hashlib.sha256()
    if is_nifti(case.path) or (Path(case.path).is_file() and not case.series_uid):
        files = [Path(case.path)]
    else:
        from app.io.dicom_scan import scan

        found = scan(case.path).find_series(case.series_uid) if case.series_uid else None
        if found is None:
            raise CohortError(f"{case.path}: series {case.series_uid} not found")
        files = sorted({Path(frame.path) for frame in found.frames})
    for file in files:
        digest.update(str(file.name).encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
