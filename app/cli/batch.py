"""``python main.py batch SUBCOMMAND``: a plugin over a whole cohort on Dask, with hallucination QA.

    batch synthesize --plugin NAME INPUT OUT_DIR [--scheduler ADDRESS] [--workers N]
        [--threads-per-worker T] [--device cpu|cuda] [--compare] [--retries R]
        [--json OUT.json] [--report OUT.html] [--force]
    batch status OUT_DIR [--json]

INPUT: a folder (every DICOM series and NIfTI file under it is a case) or a CSV with a ``path``
column (optional ``series_uid``, ``case_id``). Without ``--scheduler`` an embedded Dask
LocalCluster (processes) runs here; with it, an existing cluster (``dask scheduler`` and
``dask worker``; GPU workers are started with ``--resources GPU=1``) does the work. Re-running
the same command skips the cases whose outputs are complete and were made from the same input and
plugin. Exit codes: 0 every case finished, 1 some cases failed (recorded with reasons), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="batch_command", required=True)
    synth = sub.add_parser("synthesize", help="run a plugin over every case of a cohort")
    synth.add_argument("--plugin", required=True, help="plugin name (see 'plugins list') or plugin folder")
    synth.add_argument("input", help="cohort folder (DICOM series and NIfTI files) or CSV with a 'path' column")
    synth.add_argument("out_dir", help="output folder (created; an earlier run's folder is resumed)")
    synth.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="an existing Dask scheduler, e.g. tcp://host:8786 (default: an embedded LocalCluster)")  # fmt: skip
    synth.add_argument("--workers", type=int, default=1, help="embedded cluster: worker processes (default 1)")
    synth.add_argument("--threads-per-worker", type=int, default=1, help="embedded cluster: threads per worker (default 1)")
    synth.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                       help="where the generator runs; cuda cases each ask the cluster for one GPU resource")  # fmt: skip
    synth.add_argument("--compare", action="store_true", help="also run the hallucination checks on each case")
    synth.add_argument("--fid-weights", metavar="PATH", default=None,
                       help="FID of the inputs' against the outputs' slices over the cohort, from pytorch-fid's FID"
                       " Inception weights (never downloaded; not validated for medical images)")  # fmt: skip
    synth.add_argument("--retries", type=int, default=1, help="retries of a failing case before it is recorded (default 1)")
    synth.add_argument("--keep-spacing", action="store_true", help="run at the input spacing (see synthesize)")
    synth.add_argument("--json", dest="json_out", metavar="OUT.json", default=None, help="write the results table as JSON")
    synth.add_argument("--report", metavar="OUT.html", default=None, help="write the cohort HTML report")
    synth.add_argument("--force", action="store_true",
                       help="write into a non-empty folder that is not a batch run, overwrite --json/--report")  # fmt: skip
    synth.add_argument("--quiet", action="store_true", help="no progress lines")
    status = sub.add_parser("status", help="what a batch output folder holds: complete, failed, not run")
    status.add_argument("out_dir", help="a batch synthesize output folder")
    status.add_argument("--json", action="store_true", help="print the status as JSON")


def run(args: argparse.Namespace) -> int:
    from app.batch.cases import CohortError
    from app.batch.cohort import BatchError

    try:
        return _synthesize(args) if args.batch_command == "synthesize" else _status(args)
    except (BatchError, CohortError, OSError) as error:
        print(f"batch: error: {error}", file=sys.stderr)
        return 2


def _refuse_existing(args: argparse.Namespace, input_path: Path, out_dir: Path) -> None:
    """The output policy (app.cli.writable); OUT_DIR is resumed, so only never an input."""
    from app.batch.cohort import BatchError
    from app.cli.writable import (
        OutputRefused,
        check_not_an_input,
        check_outputs,
        file_output,
        folder_output,
        input_paths,
        plugin_folders,
    )

    inputs = input_paths(input_path, args.plugin, getattr(args, "fid_weights", None), *plugin_folders(args.plugin))
    try:
        check_not_an_input(folder_output(out_dir), inputs)
        check_outputs([file_output(p) for p in (args.json_out, args.report) if p], inputs, args.force)
    except OutputRefused as error:
        raise BatchError(str(error)) from None


def _synthesize(args: argparse.Namespace) -> int:
    from app.batch.cases import find_cases
    from app.batch.cohort import (
        ClusterOptions,
        prepare_out_dir,
        print_progress_line,
        run_cohort,
        spec_for_plugin,
    )
    from app.batch.fid import FidJobRefused
    from app.plugins.errors import PluginError

    if args.workers < 1 or args.threads_per_worker < 1 or args.retries < 0:
        print("batch: error: --workers and --threads-per-worker must be >= 1, --retries >= 0", file=sys.stderr)
        return 2
    input_path, out_dir = Path(args.input), Path(args.out_dir)
    _refuse_existing(args, input_path, out_dir)
    try:
        spec = spec_for_plugin(args.plugin, args.device, args.compare, args.keep_spacing, fid_weights=args.fid_weights or "")
        if args.device == "cuda" and not args.scheduler:  # the embedded cluster's GPU is this machine's
            from app.plugins.device import choose_device

            choose_device("cuda")  # DeviceUnavailableError (a PluginError): a clear message
    except (PluginError, FidJobRefused, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"batch: error: {reason}", file=sys.stderr)
        return 2
    cases = find_cases(input_path)
    if not cases:
        print(f"batch: error: no DICOM series or NIfTI file found in {args.input}", file=sys.stderr)
        return 2
    prepare_out_dir(out_dir, input_path, force=args.force)
    say = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    cluster = ClusterOptions(args.scheduler, args.workers, args.threads_per_worker, args.retries)
    rows = run_cohort(
        cases, spec, out_dir, cluster, input_description=str(input_path.resolve()), say=say,
        on_progress=None if args.quiet else print_progress_line,
    )  # fmt: skip
    batch = json.loads((out_dir / "batch.json").read_text())
    fid = None
    if spec.fid_weights:
        from app.batch.fid import cohort_fid

        fid = cohort_fid(out_dir, rows, spec.fid_weights, spec.fid_weights_sha256)
        value = "not computed" if fid["value"] is None else f"{fid['value']:.4f}"
        print(f"batch: FID {value} over {fid['cases']} case(s) ({fid['warning']}; {fid['sample_note']})", file=sys.stderr)
    if args.json_out:
        from app.batch.results import summarise
        from app.io.atomic import write_text_atomic

        summary = {"summary": summarise(rows), "rows": [r.to_dict() for r in rows]}
        if fid is not None:
            summary["fid"] = fid
        write_text_atomic(args.json_out, json.dumps(summary, indent=2, default=str))
    if args.report:
        from app.batch.report import write_cohort_report

        write_cohort_report(out_dir, rows, batch, args.report, fid=fid)
    failed = [r for r in rows if r.status == "failed"]
    for row in failed:
        print(f"failed: {row.case_id}: {row.reason}", file=sys.stderr)
    done = sum(r.status == "done" for r in rows)
    skipped = sum(r.status == "skipped" for r in rows)
    print(f"batch: {len(rows)} case(s): {done} synthesized, {skipped} already complete, {len(failed)} failed;"
          f" results in {out_dir / 'results.csv'}")  # fmt: skip
    return 1 if failed else 0


def _status(args: argparse.Namespace) -> int:
    from app.batch.cohort import load_status

    status = load_status(args.out_dir)
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(f"{status['out_dir']}: plugin {status['plugin']}, input {status['input']}")
    print(f"  {status['total']} case(s): {status['complete']} complete, {status['failed']} failed, {status['not run']} not run")
    for case in status["cases"]:
        if case["status"] != "complete":
            print(f"  {case['status']:8} {case['case_id']}" + (f": {case['reason']}" if case["reason"] else ""))
    return 0
