"""The coordinator's truth file: which item is synthetic, its modality, case key and finding.

The truth lives only here (``OUT_DIR/truth/truth.json``, owner-only, outside the reading package), never
in the reading package nor in the answers database that readers write to: a reader who opens
every file and table they can reach still cannot learn the answers. The analysis joins the
readers' answers (database) with this file.

Format::

    {"format": "synthview-study-truth/1", "study_id": "S...", "name": "...",
     "items": {"K...": {"case": "r1", "sources": [...], "truth": "real" | "synthetic",
                        "synthetic_image_id": "I..." | null (2AFC pairs), "modality": "...",
                        "mrmc_case": "...", "practice": false,
                        "finding_lps_mm": [L, P, S] | null, "tolerance_mm": 10.0}}}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from app.io.atomic import write_text_atomic

TRUTH_FORMAT = "synthview-study-truth/1"
TRUTH_FILE = "truth.json"
TRUTH_DIR = "truth"  # OUT_DIR/truth/truth.json: owner-only (0700 folder, 0600 file)


@dataclass(frozen=True)
class ItemTruth:
    """What the analysis needs to know about one item."""

    truth: int | None  # single image: 1 synthetic, 0 real; None for a 2AFC pair
    synthetic_image_id: str | None  # 2AFC pair: the synthetic image
    modality: str
    mrmc_case: str
    practice: bool
    finding_lps_mm: tuple[float, float, float] | None = None
    tolerance_mm: float | None = None


@dataclass(frozen=True)
class StudyTruth:
    study_id: str
    items: dict[str, ItemTruth]
    path: Path | None = None


def write_private_json(path: str | Path, document: dict) -> Path:
    """Write a coordinator-only file: its folder 0700, the file 0600 (written whole or not at all;
    the 0700 folder keeps it private while it is being written)."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    write_text_atomic(path, json.dumps(document, indent=2))
    os.chmod(path, 0o600)
    return path


def write_truth(
    path: str | Path, study_id: str, name: str, items: dict[str, dict], extra: dict | None = None
) -> Path:
    """Write the truth file readable by its owner only (``write_private_json``)."""
    document = {"format": TRUTH_FORMAT, "study_id": study_id, "name": name, **(extra or {}), "items": items}
    return write_private_json(path, document)


def find_truth_file(study_dir: str | Path) -> Path:
    """The truth file of a study folder: ``truth/truth.json`` (or ``truth.json`` of older studies)."""
    study_dir = Path(study_dir)
    for candidate in (study_dir / TRUTH_DIR / TRUTH_FILE, study_dir / TRUTH_FILE):
        if candidate.is_file():
            return candidate
    raise ValueError(f"no truth file in {study_dir} (looked for {TRUTH_DIR}/{TRUTH_FILE}): give --truth")


def load_truth(path: str | Path) -> StudyTruth:
    """Read a truth file; a clear ValueError when it is not one."""
    path = Path(path)
    if path.is_dir():
        path = find_truth_file(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"cannot read the truth file {path}: {error.strerror}") from None
    except ValueError as error:
        raise ValueError(f"{path.name} is not a truth file: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("items"), dict):
        raise ValueError(f"{path.name} is not a truth file (no items)")
    items = {}
    try:
        for item_id, entry in document["items"].items():
            paired = bool(entry.get("synthetic_image_id"))
            finding = entry.get("finding_lps_mm")
            tolerance = entry.get("tolerance_mm")
            items[str(item_id)] = ItemTruth(
                truth=None if paired else int(entry["truth"] == "synthetic"),
                synthetic_image_id=entry.get("synthetic_image_id") or None,
                modality=str(entry.get("modality") or "default"),
                mrmc_case=str(entry.get("mrmc_case") or entry.get("case") or item_id),
                practice=bool(entry.get("practice")),
                finding_lps_mm=None if finding is None else tuple(float(x) for x in finding),
                tolerance_mm=None if tolerance is None else float(tolerance),
            )
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path.name}: malformed truth entry: {error}") from None
    return StudyTruth(str(document.get("study_id", "")), items, path)


def default_truth_path(database_target: str | Path) -> Path | None:
    """The truth file of the standard study layout: ``truth.json`` beside a SQLite database file
    (``OUT_DIR/answers.db`` -> ``OUT_DIR/truth.json``); None for a server URL."""
    text = str(database_target)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///") :]
    elif "://" in text:
        return None
    try:
        return find_truth_file(Path(text).expanduser().resolve().parent)
    except ValueError:
        return None
