"""Run a cohort on Dask: an embedded ``LocalCluster`` (processes) or an existing cluster.

The client (this process) lists the cases, submits one task per case (``case_run.run_case``,
retried up to ``retries`` times; a case whose worker dies is rescheduled by Dask on another),
and keeps the results table: one row per case, written atomically as results.csv and
results.json after every few completions, so an interrupted run leaves a table of what ended.
A failed case is recorded with its reason and never stops the cohort.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.batch.case_run import JobSpec, run_case
from app.batch.cases import Case
from app.batch.results import RESULTS_JSON, CaseRow, write_json, write_results
from app.io.atomic import PARTIAL_MARK

BATCH_RECORD = "batch.json"


class BatchError(ValueError):
    """The batch cannot start (output folder not ours, input inside output, no cases ...)."""


@dataclass
class ClusterOptions:
    scheduler: str | None = None  # an existing cluster's address; None: an embedded LocalCluster
    workers: int = 1
    threads_per_worker: int = 1
    retries: int = 1


@dataclass
class Progress:
    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.skipped

    def line(self) -> str:
        remaining = self.total - self.finished
        elapsed = time.perf_counter() - self.started
        worked = self.done + self.failed
        eta = elapsed / worked * remaining if worked else None
        eta_text = "?" if eta is None else time.strftime("%H:%M:%S", time.gmtime(eta))
        return (
            f"[batch] {self.finished}/{self.total}: {self.done} done, {self.skipped} already complete,"
            f" {self.failed} failed, {remaining} remaining, ETA {eta_text}"
        )


def spec_for_plugin(
    plugin: str, device: str, compare: bool, keep_spacing: bool = False, seed: int = 0, fid_weights: str = ""
) -> JobSpec:
    """The job of a batch run; with ``fid_weights`` the file is checked here (once, in this process)
    and the plugin must keep the input's kind (FID of the inputs against the outputs)."""
    from app.plugins.discovery import find_plugin

    manifest = find_plugin(plugin)
    fid_sha256 = ""
    if fid_weights:
        from app.batch.fid import check_fid_job

        fid_sha256 = check_fid_job(manifest, fid_weights)
    return JobSpec(
        plugin_folder=str(manifest.folder),
        plugin_name=manifest.name,
        plugin_version=manifest.version,
        weights_sha256=manifest.weights.sha256,
        manifest_sha256=hashlib.sha256(manifest.manifest_path.read_bytes()).hexdigest(),
        device=device,
        compare=compare,
        keep_spacing=keep_spacing,
        seed=seed,
        fid_weights=str(Path(fid_weights).resolve()) if fid_weights else "",
        fid_weights_sha256=fid_sha256,
    )


def prepare_out_dir(out_dir: Path, input_path: Path, force: bool = False) -> None:
    """Refuse an output that is (inside) the input or holds the input, and a non-empty folder that
    is not a batch output (unless ``force``); a batch output is resumed."""
    out, source = out_dir.resolve(), input_path.resolve()
    if out == source or out.is_relative_to(source) and source.is_dir() or source.is_relative_to(out):
        raise BatchError(f"the output folder {out_dir} and the input {input_path} overlap; choose another folder")
    if out.exists() and not out.is_dir():
        raise BatchError(f"{out_dir} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / BATCH_RECORD).exists() and not force:
        raise BatchError(f"{out_dir} is not empty and holds no batch run; choose an empty folder (or --force)")
    out.mkdir(parents=True, exist_ok=True)


def run_cohort(
    cases: list[Case],
    spec: JobSpec,
    out_dir: str | Path,
    cluster: ClusterOptions,
    input_description: str = "",
    say: Callable[[str], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    stats: dict | None = None,
) -> list[CaseRow]:
    """Every case run once (or found complete), in the order given; the table written to ``out_dir``.

    ``stats``, when given, receives ``cluster_start_s`` (to a ready cluster), ``cases_s`` (first
    submission to last result) and ``worker_peak_rss_bytes`` (per worker, read at the end).
    """
    from dask.distributed import as_completed

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    say = say or (lambda message: None)
    write_json(out_dir / BATCH_RECORD, {
        "input": input_description,
        "job": spec.to_dict(),
        "cluster": {"scheduler": cluster.scheduler or "embedded LocalCluster", "workers": cluster.workers,
                    "threads_per_worker": cluster.threads_per_worker, "retries": cluster.retries},
        "cases": [case.to_dict() for case in cases],
    })  # fmt: skip
    started = time.perf_counter()
    client, local = _connect(cluster, spec.device)
    rows: dict[str, CaseRow] = {}
    progress = Progress(total=len(cases))
    try:
        _check_workers(client, spec.device)
        link = _dashboard(client, local)
        say(f"[batch] {len(cases)} case(s) on {_describe(client, local)}" + (f"; dashboard {link}" if link else ""))
        resources = {"GPU": 1} if spec.device == "cuda" else None
        submitted = time.perf_counter()
        run_id = uuid.uuid4().hex
        futures = {}
        for case in cases:
            future = client.submit(
                run_case, case, spec, str(out_dir), run_id, key=f"case-{case.case_id}-{spec.weights_sha256[:8]}",
                retries=cluster.retries, resources=resources, pure=False,
            )  # fmt: skip
            futures[future] = case
        last_write = 0.0
        for future in as_completed(futures):
            case = futures[future]
            row = _row_of(future, case, cluster.retries)
            if case.case_id in rows:  # a task reported twice (never expected): the first one counts
                continue
            rows[case.case_id] = row
            kind = row.status if row.status in ("done", "skipped") else "failed"
            setattr(progress, kind, getattr(progress, kind) + 1)
            if on_progress:
                on_progress(progress)
            if time.perf_counter() - last_write > 2.0:
                write_results(out_dir, [rows[c.case_id] for c in cases if c.case_id in rows])
                last_write = time.perf_counter()
        if stats is not None:
            stats["cluster_start_s"] = submitted - started
            stats["cases_s"] = time.perf_counter() - submitted
            stats["worker_peak_rss_bytes"] = list(client.run(_peak_rss).values())
    finally:
        client.close()
        if local is not None:
            local.close()
    ordered = [rows[c.case_id] for c in cases if c.case_id in rows]
    write_results(out_dir, ordered)
    _remove_partials(out_dir)
    return ordered


def _peak_rss() -> int:
    """This process's peak resident memory in bytes (VmHWM: ru_maxrss survives fork and exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _row_of(future, case: Case, retries: int) -> CaseRow:
    if future.status == "finished":
        return CaseRow.from_dict(future.result())
    try:
        error = future.exception()
    except Exception as exc:  # noqa: BLE001 - a cancelled future raises here
        error = exc
    name = type(error).__name__
    text = str(error).strip().splitlines()[0] if str(error).strip() else name
    if name == "KilledWorker":
        text = "the worker running it died each time it was tried (out of memory? a crash in native code?)"
    reason = f"{text} (after {retries + 1} attempt(s))" if name != "KilledWorker" else text
    if name not in ("LoadError", "PluginError", "KilledWorker", "CohortError"):
        reason = f"{name}: {reason}"
    return CaseRow(case_id=case.case_id, path=case.path, series_uid=case.series_uid, status="failed", reason=reason[:500])


def _connect(cluster: ClusterOptions, device: str):
    from dask.distributed import Client, LocalCluster

    if cluster.scheduler:
        try:
            return Client(cluster.scheduler, timeout="10s"), None
        except OSError as error:
            raise BatchError(f"cannot reach the Dask scheduler at {cluster.scheduler}: {error}") from None
    resources = {"GPU": 1} if device == "cuda" else None
    local = LocalCluster(
        n_workers=cluster.workers, threads_per_worker=cluster.threads_per_worker, processes=True,
        dashboard_address=":0", resources=resources, silence_logs=logging.CRITICAL,
        preload=["app.batch.worker_preload"],
    )  # fmt: skip
    return Client(local), local


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def _dashboard(client, local) -> str | None:
    """The dashboard's address when it is served (the embedded one needs bokeh installed)."""
    try:
        served = _has_bokeh() if local is not None else "dashboard" in client.scheduler_info().get("services", {})
        return client.dashboard_link if served else None
    except Exception:  # noqa: BLE001 - no dashboard is no error
        return None


def _check_workers(client, device: str) -> None:
    """Refuse a cluster that could never run the cases (no worker; no GPU worker for cuda)."""
    try:
        client.wait_for_workers(1, timeout=10)
    except TimeoutError:
        raise BatchError("the Dask cluster has no worker (waited 10 s); start one with `dask worker ADDRESS`") from None
    if device == "cuda":
        workers = client.scheduler_info().get("workers", {}).values()
        if not any(w.get("resources", {}).get("GPU") for w in workers):
            raise BatchError(
                "--device cuda: no worker of the cluster declares a GPU; start GPU workers with"
                " `dask worker ADDRESS --resources GPU=1` (one per GPU)"
            )


def _describe(client, local) -> str:
    workers = client.scheduler_info().get("workers", {})
    threads = sum(w.get("nthreads", 0) for w in workers.values())
    where = "an embedded LocalCluster" if local is not None else f"the cluster at {client.scheduler.address}"
    return f"{where} ({len(workers)} worker(s), {threads} thread(s))"


def _remove_partials(out_dir: Path) -> None:
    """Hidden folders a killed worker left (every task has ended by now)."""
    cases = out_dir / "cases"
    if cases.is_dir():
        for entry in cases.iterdir():
            if entry.name.startswith(".") and (PARTIAL_MARK in entry.name or ".old-" in entry.name):
                shutil.rmtree(entry, ignore_errors=True)


def load_status(out_dir: str | Path) -> dict:
    """What ``batch status`` shows: the planned cases and, for each, done / failed / not run."""
    out_dir = Path(out_dir)
    try:
        record = json.loads((out_dir / BATCH_RECORD).read_text())
    except FileNotFoundError:
        raise BatchError(f"{out_dir} holds no batch run (no {BATCH_RECORD})") from None
    except ValueError as error:
        raise BatchError(f"{out_dir / BATCH_RECORD} is not readable JSON ({error})") from None
    try:
        table = {r["case_id"]: r for r in json.loads((out_dir / RESULTS_JSON).read_text())["rows"]}
    except (OSError, ValueError, KeyError):
        table = {}
    spec = record.get("job", {})
    cases = []
    for data in record.get("cases", []):
        case = Case.from_dict(data)
        folder = out_dir / "cases" / case.case_id
        complete = (folder / "case.json").exists()
        stored = table.get(case.case_id, {})
        status = "complete" if complete else ("failed" if stored.get("status") == "failed" else "not run")
        cases.append({"case_id": case.case_id, "status": status, "reason": stored.get("reason", "") if status == "failed" else ""})
    counts = {s: sum(1 for c in cases if c["status"] == s) for s in ("complete", "failed", "not run")}
    return {"out_dir": str(out_dir), "plugin": f"{spec.get('plugin_name')} {spec.get('plugin_version')}",
            "input": record.get("input", ""), "total": len(cases), **counts, "cases": cases}  # fmt: skip


def print_progress_line(progress: Progress, stream=None) -> None:
    stream = stream or sys.stderr
    if stream.isatty():
        print("\r" + progress.line(), end="" if progress.finished < progress.total else "\n", file=stream, flush=True)
    else:
        print(progress.line(), file=stream, flush=True)
