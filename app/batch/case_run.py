"""One case of a cohort, as a Dask worker runs it: skip if done, else load, domain check,
synthesize, optionally compare, and write the outputs atomically.

A case's outputs live in ``OUT_DIR/cases/<case_id>/``; they are written into a hidden sibling
folder and renamed into place only when complete, ``case.json`` (the record that says the case
is done, with the input and plugin hashes it was made from) last of all. A killed worker leaves
at most a hidden ``.partial`` folder, never a case folder that looks complete; a case run twice
(a worker presumed dead that was not) replaces its folder with an identical one.

The plugin is loaded once per worker process (``_plugin``), not once per case.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from app.batch.cases import Case, input_sha256
from app.batch.results import CaseRow
from app.core.json_values import json_safe

CASE_RECORD = "case.json"
SYNTHESIZED_FILE = "synthesized.nii.gz"
COMPARE_FILE = "compare.json"
REPORT_FILE = "compare.html"
THUMBNAIL_FILE = "worst_region.png"
FID_FEATURES_FILE = "fid_features.npz"  # the FID network's features of the input's and the output's slices


@dataclass(frozen=True)
class JobSpec:
    """What every case of one batch run does; ``key`` says whether an earlier output still fits."""

    plugin_folder: str
    plugin_name: str
    plugin_version: str
    weights_sha256: str
    manifest_sha256: str
    device: str = "auto"
    compare: bool = False
    keep_spacing: bool = False
    seed: int = 0
    fid_weights: str = ""  # the FID Inception weights file (--fid-weights); "" for none
    fid_weights_sha256: str = ""

    @property
    def key(self) -> dict:
        """The settings an output depends on (not the device: a GPU and a CPU run are one output;
        not where the FID file lies, only what it holds; a run without FID keys as before)."""
        data = asdict(self)
        data.pop("device")
        data.pop("plugin_folder")
        data.pop("fid_weights")
        if not data["fid_weights_sha256"]:
            data.pop("fid_weights_sha256")
        return data

    def to_dict(self) -> dict:
        return asdict(self)


_LOADED: dict[tuple, object] = {}  # per worker process: (folder, sha, device) -> LoadedPlugin
_LOAD_COUNT = [0]  # plugins loaded by this process so far
_FID: dict[tuple, object] = {}  # per worker process: (path, sha) -> LoadedFid


def _plugin(spec: JobSpec):
    key = (spec.plugin_folder, spec.weights_sha256, spec.device)
    if key not in _LOADED:
        from app.plugins.discovery import find_plugin
        from app.plugins.loading import load_plugin

        _LOADED.clear()  # one plugin per worker at a time
        _LOADED[key] = load_plugin(find_plugin(spec.plugin_folder))
        _LOAD_COUNT[0] += 1
    return _LOADED[key]


def case_folder(out_dir: str | Path, case: Case) -> Path:
    return Path(out_dir) / "cases" / case.case_id


def completed_row(out_dir: str | Path, case: Case, spec: JobSpec, sha: str) -> CaseRow | None:
    """The stored row when the case's outputs are complete and made from this input and plugin."""
    record = case_folder(out_dir, case) / CASE_RECORD
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return None
    if data.get("input_sha256") != sha or data.get("job") != spec.key:
        return None
    folder = record.parent
    if not all((folder / name).exists() for name in data.get("files", [])):
        return None
    return CaseRow.from_dict(data["row"])


def run_case(case: Case, spec: JobSpec, out_dir: str, run_id: str = "") -> dict:
    """Run one case; returns its results row (a dict). Raises on failure (Dask retries it).

    Outputs found complete are not made again: "skipped" when an earlier run made them, "done"
    when this run did (a worker that finished the case and died before reporting it)."""
    started, started_cpu = time.perf_counter(), time.process_time()
    sha = input_sha256(case)
    done = completed_row(out_dir, case, spec, sha)
    if done is not None:
        done.status = "done" if run_id and done.run_id == run_id else "skipped"
        return done.to_dict()
    from app.analysis.ood import check_domain
    from app.io.loader import load_volume
    from app.io.nifti import save_nifti
    from app.plugins.runtime import RunOptions, synthesize

    volume = load_volume(case.path, series_uid=case.series_uid)
    loaded = _plugin(spec)
    domain = check_domain(volume, loaded.manifest)
    options = RunOptions(device=spec.device, seed=spec.seed, match_training_spacing=not spec.keep_spacing)
    result = synthesize(loaded, volume, options)
    row = CaseRow(
        case_id=case.case_id,
        path=case.path,
        series_uid=case.series_uid,
        status="done",
        input_sha256=sha,
        output=str(Path("cases") / case.case_id / SYNTHESIZED_FILE),
        device=result.device,
        worker=f"{socket.gethostname()}:{os.getpid()}",
        ood_warnings=len(domain.warnings),
        ood_reasons=list(domain.warnings),
        messages=list(result.messages),
        worker_plugin_loads=_LOAD_COUNT[0],
        run_id=run_id,
    )
    from app.io.atomic import atomic_folder

    # Filled in a hidden sibling and renamed into place when complete (an earlier output of
    # the case, made from another input or plugin, is replaced only then).
    with atomic_folder(case_folder(out_dir, case), replace=True) as partial:
        save_nifti(result.volume, partial / SYNTHESIZED_FILE, extra_sidecar={"batch_case": case.to_dict()})
        files = [SYNTHESIZED_FILE, SYNTHESIZED_FILE.replace(".nii.gz", ".json")]
        if spec.compare:
            files += _compare(volume, result.volume, partial, row)
        if spec.fid_weights:
            files.append(_fid_features(volume, result.volume, partial, spec))
        row.duration_s = round(time.perf_counter() - started, 3)
        row.cpu_s = round(time.process_time() - started_cpu, 3)
        record = {"input_sha256": sha, "job": spec.key, "case": case.to_dict(), "files": files, "row": row.to_dict()}
        (partial / CASE_RECORD).write_text(json.dumps(record, indent=2, default=str))
    return row.to_dict()


def _fid_features(original, synthesized, folder: Path, spec: JobSpec) -> str:
    """The FID network's features of the input's and the output's axial slices (the output on the
    input's grid, both scaled by the input's range; up to ``fid_metric.MAX_IMAGES`` slices with
    foreground), for the cohort's FID (``app.batch.fid``)."""
    import numpy as np

    from app.analysis.field_metrics import axial_arrays, scaled_axial_slices
    from app.plugins.errors import PluginError
    from app.plugins.fid_metric import MAX_IMAGES, load_fid, slice_features

    key = (spec.fid_weights, spec.fid_weights_sha256)
    if key not in _FID:
        loaded = load_fid(spec.fid_weights)
        if loaded.weights_sha256 != spec.fid_weights_sha256:
            raise PluginError(f"{spec.fid_weights} changed during the batch run (SHA-256 differs); run again")
        _FID.clear()
        _FID[key] = loaded
    reference, on_grid, _ = axial_arrays(original, synthesized)
    _, pairs, _ = scaled_axial_slices(reference, on_grid, None, MAX_IMAGES)
    features_input, features_output = slice_features(_FID[key], pairs)
    np.savez(folder / FID_FEATURES_FILE, input=features_input.astype(np.float32), output=features_output.astype(np.float32))
    return FID_FEATURES_FILE


def _compare(original, synthesized, folder: Path, row: CaseRow) -> list[str]:
    """Regions and metrics of the pair into ``folder`` (JSON, HTML, worst region's thumbnail)."""
    from app.analysis.compare_run import run_compare
    from app.analysis.report import write_report
    from app.plugins.null_calibration import calibration_for_volume

    # The plugin's null calibration, as main.py compare and the viewer read it: one operating
    # point for one pair, wherever it is checked.
    calibration, note = calibration_for_volume(synthesized)
    result = run_compare(original, synthesized, calibration=calibration)
    if note:
        result.notes.insert(0, note)
    data = json_safe(result.to_dict())
    (folder / COMPARE_FILE).write_text(json.dumps(data, indent=2))
    write_report(result, folder / REPORT_FILE, title=f"Hallucination check: {row.case_id}")
    row.region_count = len(result.regions)
    peaks = [abs(r.peak_residual) for r in result.regions]
    row.max_abs_peak = max(peaks) if peaks else 0.0
    first = next(iter(data["metrics"].values()), {})
    row.metrics = {k: first.get(k) for k in ("mae", "psnr_db", "ssim", "ncc") if k in first}
    files = [COMPARE_FILE, REPORT_FILE]
    if result.regions:
        from app.analysis.report import region_image
        from app.core.resample import resample_like

        worst = max(range(len(result.regions)), key=lambda i: abs(result.regions[i].peak_residual))
        base = result.reference if result.reference is not None else result.original
        on_grid = resample_like(result.synthesized, base)
        (folder / THUMBNAIL_FILE).write_bytes(region_image(result, worst, on_grid))
        row.thumbnail = str(Path("cases") / row.case_id / THUMBNAIL_FILE)
        files.append(THUMBNAIL_FILE)
    return files
