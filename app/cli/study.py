"""``python main.py study SUBCOMMAND``: reader studies.

    study create DEFINITION.yaml OUT_DIR [--db URL]          blinded reading package + truth file
    study create --real DIR --synthetic DIR OUT_DIR [--name N] [--seed S] [--practice N] [--db URL]
        [--accept-leaks] [one flag per study option: --common-spacing-mm X, --common-shape, ...]
                                                              audited: exit 2 on a blinding leak
    study audit OUT_DIR [--truth truth.json]                  the blinding audit table (exit 2: a leak)
    study read READING_DIR --reader ID [--db URL] [--windowed] [--screenshot OUT.png]   the session
    study analyze INPUT [--json OUT] [--report OUT.html] [--truth truth.json]
                                                              INPUT: database file or URL, CSV, iMRMC
    study export-csv INPUT OUT.csv [--imrmc OUT.imrmc] [--truth truth.json]
                                                              long format (reader, modality, case, ...)

The answers database holds no truth: a database INPUT is joined with the coordinator's truth file,
by default ``truth.json`` beside a SQLite database file (the layout ``study create`` writes);
give ``--truth`` for a server URL or a database kept elsewhere.
    study edit [DEFINITION.yaml]                              the study editor dialog

Exit codes: 0 success, 2 bad input (with a one-line message on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.writable import (
    OutputRefused,
    add_force_argument,
    check_outputs,
    file_output,
    folder_output,
    input_paths,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="study_command", required=True)

    create = sub.add_parser(
        "create", help="blinded reading package, truth file and database from a definition"
    )
    create.add_argument("definition", nargs="?", help="study definition (YAML or JSON)")
    create.add_argument("out_dir", nargs="?", help="folder for the reading package, truth file and database")
    create.add_argument("--real", help="folder of real images (instead of a definition)")
    create.add_argument("--synthetic", help="folder of synthetic images (instead of a definition)")
    create.add_argument("--name", default="Visual Turing test", help="study name (folders mode)")
    create.add_argument(
        "--seed", type=int, default=None, help="randomisation seed (default: random, recorded)"
    )
    create.add_argument("--practice", type=int, default=0, help="practice cases per class (folders mode)")
    create.add_argument("--db", default=None, help="database file or URL (default OUT_DIR/answers.db)")
    add_force_argument(create)
    create.add_argument(
        "--readers",
        default=None,
        metavar="R1,R2,...",
        help="PostgreSQL --db only: create a login role per reader id (row-level security: each reads"
        " and records only its own answers); passwords go to OUT_DIR/truth/reader_accounts.json",
    )
    create.add_argument(
        "--accept-leaks",
        action="store_true",
        help="create the study even when the blinding audit finds a feature that separates real from"
        " synthetic perfectly",
    )
    _add_option_flags(create)

    audit = sub.add_parser("audit", help="blinding audit of a created study: what tells real from synthetic")
    audit.add_argument("out_dir", help="the study folder `study create` wrote")
    audit.add_argument(
        "--truth", default=None, metavar="truth.json", help="the truth file (default: OUT_DIR's)"
    )

    read = sub.add_parser("read", help="open the reading session for one reader")
    read.add_argument("reading_dir", help="the reading package folder (OUT_DIR/reading)")
    read.add_argument("--reader", required=True, help="reader id")
    read.add_argument("--db", default=None, help="database file or URL (default: the package's)")
    read.add_argument("--windowed", action="store_true", help="a normal window instead of full screen")
    read.add_argument(
        "--screenshot", metavar="OUT.png", default=None, help="save the first screen as PNG and exit"
    )
    add_force_argument(read)

    analyze = sub.add_parser("analyze", help="statistics and report")
    analyze.add_argument("input", help="study database (file or URL), long-format CSV or iMRMC file")
    analyze.add_argument(
        "--json", dest="json_out", metavar="OUT", default=None, help="write every figure as JSON"
    )
    analyze.add_argument("--report", metavar="OUT.html", default=None, help="write the HTML report")
    analyze.add_argument("--study", default=None, help="study id, when the database holds several")
    analyze.add_argument(
        "--truth",
        default=None,
        metavar="truth.json",
        help="the coordinator's truth file (default: truth.json beside a SQLite database)",
    )
    add_force_argument(analyze)

    export = sub.add_parser("export-csv", help="long-format CSV (and optionally iMRMC) export")
    export.add_argument("input", help="study database (file or URL), CSV or iMRMC file")
    export.add_argument("out_csv", help="long-format CSV to write (one row per reading)")
    export.add_argument("--imrmc", default=None, help="also write an iMRMC input file")
    export.add_argument("--study", default=None, help="study id, when the database holds several")
    export.add_argument(
        "--truth",
        default=None,
        metavar="truth.json",
        help="the coordinator's truth file (default: truth.json beside a SQLite database)",
    )
    add_force_argument(export)

    edit = sub.add_parser("edit", help="open the study editor dialog")
    edit.add_argument(
        "definition", nargs="?", default=None, help="study definition (YAML or JSON) to open or create"
    )


OPTION_HELP = {
    "shuffle": "shuffle the cases per reader",
    "allow_answer_modification": "readers may change a recorded answer",
    "allow_case_navigation": "readers may go back to earlier cases",
    "window_level_locked": "readers cannot change window/level",
    "allow_scroll": "readers may scroll through slices",
    "time_limit_s": "seconds per case (default: none)",
    "common_spacing_mm": "resample every case to this isotropic spacing",
    "common_shape": "pad or crop every case, centred, to one array shape",
    "intensity_normalisation": "none, or percentile (default in folders mode)",
    "intensity_percentiles": "the percentiles mapped to the range (default 1 99)",
    "intensity_range": "the normalised value range (default 0 4095)",
    "intensity_levels": "evenly spaced levels (default: the most every image fills)",
    "localisation_tolerance_mm": "a click this close to the marked finding is a hit",
    "practice_feedback": "show the truth after each practice answer",
}


def _add_option_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per study option (``--common-spacing-mm`` for ``common_spacing_mm`` ...), so
    folders mode can set everything a definition file can; given in definition mode, a flag
    overrides the file."""
    from dataclasses import fields

    from app.readerstudy.definition import INTENSITY_NORMALISATIONS, StudyOptions

    group = parser.add_argument_group("study options (as in a definition file's options)")
    for option in fields(StudyOptions):
        flag = "--" + option.name.replace("_", "-")
        common = {"dest": f"option_{option.name}", "default": None, "help": OPTION_HELP.get(option.name)}
        kind = str(option.type)
        if kind == "bool":
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
        elif kind == "list[float]":
            group.add_argument(flag, nargs=2, type=float, metavar=("LOW", "HIGH"), **common)
        elif option.name == "intensity_normalisation":
            group.add_argument(flag, choices=INTENSITY_NORMALISATIONS, **common)
        elif kind.startswith("int"):
            group.add_argument(flag, type=int, metavar="N", **common)
        elif kind.startswith("float"):
            group.add_argument(flag, type=float, metavar="X", **common)
        else:
            group.add_argument(flag, **common)


def _apply_option_flags(args: argparse.Namespace, options: object) -> None:
    for name, value in vars(args).items():
        if name.startswith("option_") and value is not None:
            setattr(options, name[len("option_") :], list(value) if isinstance(value, list) else value)


def _fail(message: str) -> int:
    print(f"study: {message}", file=sys.stderr)
    return 2


def _reason(error: Exception) -> str:
    """An exception's message (a KeyError's str() would quote it)."""
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)


def _cannot_write(command: str, error: OSError) -> int:
    return _fail(f"{command}: cannot write {error.filename}: {error.strerror or error}")


def _create(args: argparse.Namespace) -> int:
    import secrets

    from app.io.nifti import header_fields, load_nifti, save_nifti
    from app.readerstudy.definition import StudyDefinitionError, definition_from_folders, load_definition
    from app.readerstudy.package import BlindingLeakError, create_study

    load_volume = load_nifti
    try:
        from app.io.loader import load_volume as _general_loader  # DICOM and more, when available

        load_volume = _general_loader
    except ImportError:
        pass
    if args.readers and not str(args.db or "").startswith("postgresql"):
        return _fail("create: --readers needs a PostgreSQL --db URL (SQLite has no user accounts)")
    try:
        if args.real or args.synthetic:
            if not (args.real and args.synthetic):
                return _fail("create: --real and --synthetic go together")
            out_dir = args.out_dir or args.definition
            if not out_dir:
                return _fail("create: OUT_DIR is missing")
            seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
            definition = definition_from_folders(args.real, args.synthetic, args.name, seed, args.practice)
        else:
            if not (args.definition and args.out_dir):
                return _fail("create: give DEFINITION OUT_DIR, or --real DIR --synthetic DIR OUT_DIR")
            out_dir = args.out_dir
            definition = load_definition(args.definition)
            if args.seed is not None:
                definition.seed = args.seed
        _apply_option_flags(args, definition.options)
        definition.validate()
        _check_study_outputs(definition, Path(out_dir), args)
        created = create_study(
            definition,
            out_dir,
            load_volume,
            save_nifti,
            database=args.db,
            replace=args.force,
            accept_leaks=args.accept_leaks,
            header_fields=header_fields,
        )
    except BlindingLeakError as error:
        print(error.report.table())
        return _fail(f"create: {error}; nothing was written (--accept-leaks creates it anyway)")
    except (StudyDefinitionError, ValueError, OSError) as error:
        return _fail(f"create: {error}")
    try:
        accounts = _reader_accounts(args, created)
    except Exception as error:  # noqa: BLE001 - e.g. a coordinator account that may not create roles
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        return _fail(f"create: the study was created, but not the reader accounts: {reason}")
    if created.audit is not None:
        print(created.audit.table())
    for warning in created.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if created.warnings:
        print(
            "warning: set those options with the flags named (see 'study create --help'), or in a"
            " study definition: 'study edit DEF.yaml', then 'study create DEF.yaml NEW_OUT_DIR'",
            file=sys.stderr,
        )
    print(f"study {created.study_id}: {len(definition.cases)} cases, seed {definition.seed}")
    print(f"readers open:      {created.reading_dir}")
    print(f"truth (keep apart): {created.truth_path}")
    print(f"database:          {created.database_url}")
    if accounts:
        print(f"reader accounts:   {accounts} (hand each reader their own; keep apart)")
    return 0


def _reader_accounts(args: argparse.Namespace, created) -> Path | None:
    """``--readers``: one PostgreSQL login role per reader, passwords in the truth folder."""
    from app.readerstudy.storage import StudyStore
    from app.readerstudy.truth import write_private_json

    readers = [r.strip() for r in (args.readers or "").split(",") if r.strip()]
    if not readers:
        return None
    store = StudyStore(created.database_url, create=False)
    try:
        passwords = store.provision_roles(readers)
    finally:
        store.close()
    return write_private_json(
        created.truth_path.parent / "reader_accounts.json",
        {"database": created.database_url, "accounts": passwords},
    )


def _check_study_outputs(definition, out_dir: Path, args: argparse.Namespace) -> None:
    """The output policy: no earlier study's package, truth or answers replaced without --force,
    and the study never written into (or over) its own images."""
    from app.readerstudy.package import DEFAULT_DATABASE, READING_DIR
    from app.readerstudy.truth import TRUTH_DIR, TRUTH_FILE

    outputs = [
        folder_output(out_dir / READING_DIR),
        file_output(out_dir / TRUTH_DIR / TRUTH_FILE),
        file_output(out_dir / TRUTH_FILE),  # an older study's
    ]
    if args.db is None:
        outputs.append(file_output(out_dir / DEFAULT_DATABASE))
    cases = [definition.resolve(p) for case in definition.cases for p in (case.path, case.paired_path) if p]
    definition_file = None if args.real else args.definition  # folders mode: that word is OUT_DIR
    check_outputs(outputs, input_paths(definition_file, args.real, args.synthetic, *cases), args.force)


def _database_for(reading_dir: Path, package: dict, override: str | None) -> str | Path:
    if override:
        return override
    relative = package.get("database")
    if not relative:
        raise ValueError("this reading package names no database: give --db URL")
    return (reading_dir / relative).resolve()


def _read(args: argparse.Namespace) -> int:
    from app.io.nifti import load_nifti
    from app.readerstudy.package import load_package
    from app.readerstudy.session import ReadingSession
    from app.readerstudy.storage import StudyStore

    try:
        outputs = [file_output(args.screenshot)] if args.screenshot else []
        check_outputs(outputs, input_paths(args.reading_dir, args.db), args.force)
        package, reading_dir = load_package(args.reading_dir)
        store = StudyStore(_database_for(reading_dir, package, args.db), create=False)
        # A screenshot only looks: it must not take over the reader's live session.
        session = ReadingSession(package, reading_dir, store, args.reader, claim=not args.screenshot)
    except (ValueError, OSError, KeyError) as error:
        return _fail(f"read: {_reason(error)}")

    from app.ui.application import create_application
    from app.ui.reading.session_window import ReadingWindow

    app = create_application([], offscreen_without_display=bool(args.screenshot))
    app.setApplicationDisplayName("Reading session")
    window = ReadingWindow(session, load_nifti)
    if args.windowed or args.screenshot:
        window.resize(1400, 900)
        window.show()
    else:
        window.showFullScreen()
    if args.screenshot:
        app.processEvents()
        from app.io.atomic import save_atomic

        if not save_atomic(window.grab().save, args.screenshot):
            print(f"study: read: could not write {args.screenshot}", file=sys.stderr)
        window.close()
        store.close()
        return 0
    code = int(app.exec())
    store.close()
    return code


def _analyze(args: argparse.Namespace) -> int:
    from app.io.atomic import write_text_atomic
    from app.readerstudy import json_output
    from app.readerstudy.analysis import analyze
    from app.readerstudy.report import write_report

    try:
        outputs = [file_output(path) for path in (args.json_out, args.report) if path]
        check_outputs(outputs, input_paths(args.input, args.truth, *_default_truth(args.input)), args.force)
    except OutputRefused as error:
        return _fail(f"analyze: {error}")
    try:
        result = analyze(args.input, args.study, args.truth)
    except (ValueError, OSError, KeyError) as error:
        return _fail(f"analyze: {_reason(error)}")
    except Exception as error:  # noqa: BLE001 - e.g. a database URL that cannot be reached
        return _fail(f"analyze: cannot read {args.input}: {type(error).__name__}: {error}")
    try:
        if args.json_out:
            write_text_atomic(args.json_out, json_output.dumps(result))
        if args.report:
            write_report(result, args.report)
    except OSError as error:
        return _cannot_write("analyze", error)
    print(_summary(result))
    return 0


def _default_truth(database: str) -> list[Path]:
    """The truth files read beside a SQLite database (inputs, never to be written over)."""
    from app.readerstudy.truth import TRUTH_DIR, TRUTH_FILE

    if "://" in database:
        return []
    return [Path(database).parent / TRUTH_DIR / TRUTH_FILE, Path(database).parent / TRUTH_FILE]


def _summary(result: dict) -> str:
    lines = [f"readers: {', '.join(result['readers'])}; readings: {result['readings']}; positive = synthetic"]
    for modality, section in result["modalities"].items():
        binary = section["binary"]
        if binary:
            pooled = binary["pooled"]
            lines.append(
                f"[{modality}] accuracy {pooled['accuracy']['estimate']:.3f}, fooling rate "
                f"{pooled['fooling_rate']['estimate']:.3f}, exact binomial p = {pooled['binomial_p_value']:.4g}"
            )
            for truth, test in (pooled.get("per_class") or {}).items():
                called = test["called_as_truth"]
                p_value = "n/a" if test["binomial_p_value"] is None else f"{test['binomial_p_value']:.4g}"
                lines.append(
                    f"[{modality}] {truth} called {truth}: {called['successes']}/{called['total']}, "
                    f"exact binomial p = {p_value} (vs 50 %)"
                )
            contingency = pooled.get("contingency") or {}
            if contingency.get("fisher_p_value") is not None:
                lines.append(
                    f"[{modality}] truth x call: chi-square p = {contingency['chi_square_p_value']:.4g}, "
                    f"Fisher exact p = {contingency['fisher_p_value']:.4g}"
                )
        two_afc = section.get("two_afc") or {}
        if two_afc:
            correct = two_afc["pooled"]["proportion_correct"]
            lines.append(
                f"[{modality}] 2AFC: {correct['successes']}/{correct['total']} picked the synthetic image "
                f"({correct['estimate']:.3f}), exact binomial p = {two_afc['pooled']['binomial_p_value']:.4g}"
            )
        localisation = section.get("localisation") or {}
        if localisation:
            pooled = localisation["pooled"]
            lines.append(
                f"[{modality}] localisation: {pooled['hits']}/{pooled['cases']} clicks within "
                f"{', '.join(f'{t:g}' for t in localisation['tolerance_mm'])} mm of the marked finding"
            )
        for reader, entry in section["roc"].get("per_reader", {}).items():
            lines.append(
                f"[{modality}] reader {reader}: AUC {entry['auc']:.8f} (DeLong 95 % CI {entry['ci_low']:.3f}-{entry['ci_high']:.3f})"
            )
    mrmc = result.get("mrmc") or {}
    if "f_statistic" in mrmc:
        lines.append(
            f"MRMC ({mrmc['test']}): F = {mrmc['f_statistic']:.3f}, ndf = {mrmc['ndf']}, "
            f"ddf = {mrmc['ddf']:.2f}, p = {mrmc['p_value']:.4f}"
        )
        for entry in mrmc.get("pairwise", []):
            lines.append(
                f"MRMC {' - '.join(entry['modalities'])}: difference {entry['difference']:.4f}, "
                f"p = {entry['p_value']:.4f}, Holm-adjusted p = {entry['p_value_holm']:.4f}"
            )
        if mrmc.get("comparisons"):
            lines.append(f"MRMC comparisons: {mrmc['comparisons']}")
    elif mrmc.get("note"):
        lines.append(f"MRMC: {mrmc['note']}")
    return "\n".join(lines)


def _export(args: argparse.Namespace) -> int:
    from app.readerstudy.analysis import load_rows
    from app.readerstudy.ratings import write_csv, write_imrmc

    try:
        outputs = [file_output(path) for path in (args.out_csv, args.imrmc) if path]
        check_outputs(outputs, input_paths(args.input, args.truth, *_default_truth(args.input)), args.force)
    except OutputRefused as error:
        return _fail(f"export-csv: {error}")
    try:
        rows, _ = load_rows(args.input, args.study, args.truth)
    except (ValueError, OSError, KeyError) as error:
        return _fail(f"export-csv: {_reason(error)}")
    try:
        write_csv(rows, args.out_csv)
        if args.imrmc:
            write_imrmc(rows, args.imrmc)
    except OSError as error:
        return _cannot_write("export-csv", error)
    print(f"{len(rows)} readings written to {args.out_csv}")
    return 0


def _edit(args: argparse.Namespace) -> int:
    from app.readerstudy.definition import StudyDefinitionError, load_definition
    from app.ui.application import create_application
    from app.ui.reading.editor_dialog import StudyEditorDialog

    definition = None
    if args.definition and Path(args.definition).exists():
        try:
            definition = load_definition(args.definition)
        except StudyDefinitionError as error:
            return _fail(f"edit: {error}")
    create_application([])
    dialog = StudyEditorDialog(definition, save_path=args.definition)
    return 0 if dialog.exec() else 1


def _audit(args: argparse.Namespace) -> int:
    from app.io.nifti import header_fields, load_nifti
    from app.readerstudy.audit import audit_package

    try:
        report = audit_package(args.out_dir, load_nifti, header_fields, args.truth)
    except (ValueError, OSError, KeyError) as error:
        return _fail(f"audit: {_reason(error)}")
    print(report.table())
    if report.leaks():
        return _fail(f"audit: {report.leak_message()}")
    return 0


def run(args: argparse.Namespace) -> int:
    handlers = {
        "create": _create,
        "audit": _audit,
        "read": _read,
        "analyze": _analyze,
        "export-csv": _export,
        "edit": _edit,
    }
    return handlers[args.study_command](args)
