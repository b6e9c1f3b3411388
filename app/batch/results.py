"""The results table of a batch run: one ``CaseRow`` per case, as results.csv and results.json.

Plain data (the standard library and app.io.atomic only), so the viewer's batch-results table reads it without
pulling in the file-format or torch code that running a case needs.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.io.atomic import write_text_atomic

RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
CSV_COLUMNS = (
    "case_id", "status", "reason", "region_count", "max_abs_peak", "ood_warnings", "mae", "psnr_db",
    "ssim", "ncc", "duration_s", "device", "worker", "path", "series_uid", "output", "input_sha256",
)  # fmt: skip


@dataclass
class CaseRow:
    """One line of the results table."""

    case_id: str
    path: str
    series_uid: str | None
    status: str  # "done", "skipped" (complete from an earlier run) or "failed"
    reason: str = ""
    input_sha256: str = ""
    output: str = ""
    duration_s: float = 0.0
    cpu_s: float = 0.0  # CPU time of the worker process while it ran the case
    device: str = ""
    worker: str = ""
    ood_warnings: int | None = None
    ood_reasons: list[str] = field(default_factory=list)
    region_count: int | None = None
    max_abs_peak: float | None = None
    metrics: dict = field(default_factory=dict)  # "mae", "psnr_db", "ssim", "ncc" vs the input
    messages: list[str] = field(default_factory=list)
    thumbnail: str = ""
    run_id: str = ""  # the batch run that made the outputs
    worker_plugin_loads: int = 0  # plugins the worker had loaded when it ran this case (1: loaded once)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> CaseRow:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def write_results(out_dir: Path, rows: list[CaseRow]) -> None:
    data = [row.to_dict() for row in rows]
    write_json(out_dir / RESULTS_JSON, {"rows": data, "summary": summarise(rows)})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in data:
        writer.writerow({**row, **(row.get("metrics") or {})})
    write_text_atomic(out_dir / RESULTS_CSV, buffer.getvalue())


def summarise(rows: list[CaseRow]) -> dict:
    counts = {"done": 0, "skipped": 0, "failed": 0}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    return {"cases": len(rows), **counts}


def write_json(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=str))


def read_results(out_dir: str | Path) -> list[CaseRow]:
    """The rows of a batch output folder's results.json (ValueError when there is none)."""
    path = Path(out_dir) / RESULTS_JSON
    try:
        data = json.loads(path.read_text())
        return [CaseRow.from_dict(row) for row in data["rows"]]
    except FileNotFoundError:
        raise ValueError(f"{out_dir} holds no batch results ({RESULTS_JSON} not found)") from None
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a batch results table ({error})") from None
