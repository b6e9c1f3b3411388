"""``python main.py pacs SUBCOMMAND``: query, retrieve and send studies (DIMSE and DICOMweb).

    pacs nodes [--json]
    pacs echo NODE
    pacs find NODE [--level study|series] [--patient-id ID] [--patient-name PATTERN]
        [--study-date YYYYMMDD[-YYYYMMDD]] [--modality MOD] [--accession N] [--study UID] [--json]
    pacs get NODE --study UID [--series UID] OUT_DIR [--force]
    pacs send NODE PATH          a series folder, a DICOM file, an SR or a SEG

NODE: a configured name, AE_TITLE@HOST:PORT (DIMSE) or an http(s)://.../dicom-web URL. Nodes,
our AE title and storage port live in the configuration file (``--config``; default
``~/.config/synthview/pacs.yaml`` or ``$SYNTHVIEW_PACS_CONFIG``; see app/pacs/nodes.py and the
README). Exit codes: 0 done, 1 partly done (counts and reasons said), 2 refused or failed.

``--json`` of ``find``: a list of matches, each {"level", "patient_id", "patient_name",
"study_uid", "study_date", ...} with every field of its level present (null when the server did
not return it); of ``nodes``: {"local": {...}, "nodes": [{"name", "kind", ...}]} with no secret.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="pacs_command", required=True)

    def with_config(p):
        p.add_argument("--config", metavar="FILE", default=None, help="PACS configuration file (default: the user's)")
        return p

    nodes = with_config(sub.add_parser("nodes", help="the configured nodes and our own AE title"))
    nodes.add_argument("--json", action="store_true", help="print as JSON")
    echo = with_config(sub.add_parser("echo", help="C-ECHO (DIMSE) or a QIDO-RS probe (DICOMweb)"))
    echo.add_argument("node", help="configured name, AE_TITLE@HOST:PORT or http(s)://.../dicom-web")
    find = with_config(sub.add_parser("find", help="search studies or series (C-FIND or QIDO-RS)"))
    find.add_argument("node", help="configured name, AE_TITLE@HOST:PORT or http(s)://.../dicom-web")
    find.add_argument("--level", choices=("study", "series"), default="study", help="what to list (default study)")
    find.add_argument("--patient-id", default="", help="PatientID")
    find.add_argument("--patient-name", default="", help="PatientName, with * and ? wildcards")
    find.add_argument("--study-date", default="", help="YYYYMMDD or a range YYYYMMDD-YYYYMMDD")
    find.add_argument("--modality", default="", help="e.g. CT, MR")
    find.add_argument("--accession", default="", help="AccessionNumber")
    find.add_argument("--study", default="", help="StudyInstanceUID (with --level series: that study's series)")
    find.add_argument("--json", action="store_true", help="print the matches as JSON")
    get = with_config(sub.add_parser("get", help="retrieve a study or series (C-GET, C-MOVE or WADO-RS)"))
    get.add_argument("node", help="configured name, AE_TITLE@HOST:PORT or http(s)://.../dicom-web")
    get.add_argument("--study", required=True, help="StudyInstanceUID")
    get.add_argument("--series", default=None, help="SeriesInstanceUID (default: the whole study)")
    get.add_argument("out_dir", help="new folder for the instances (one sub-folder per series)")
    get.add_argument("--force", action="store_true", help="replace an existing OUT_DIR")
    send = with_config(sub.add_parser("send", help="send a series folder, a DICOM file, an SR or a SEG"))
    send.add_argument("node", help="configured name, AE_TITLE@HOST:PORT or http(s)://.../dicom-web")
    send.add_argument("path", help="a DICOM file or a folder of them")


def run(args: argparse.Namespace) -> int:
    from app.pacs.nodes import NodeError, load_config
    from app.pacs.service import PacsError

    try:
        config = load_config(args.config)
        return COMMANDS[args.pacs_command](args, config)
    except (NodeError, PacsError, OSError, ValueError) as error:
        print(f"pacs {args.pacs_command}: error: {str(error).splitlines()[0]}", file=sys.stderr)
        return 2


def _nodes(args, config) -> int:
    data = {
        "config": config.path,
        "local": {"ae_title": config.ae_title, "storage_port": config.storage_port, "cache_dir": config.cache_dir},
        "nodes": [
            {"name": n.name, "kind": n.kind, "ae_title": n.ae_title or None, "host": n.host or None,
             "port": n.port or None, "url": n.url or None, "retrieve": n.retrieve if n.kind == "dimse" else "wado-rs",
             "tls": n.tls is not None, "auth": n.auth or None, "timeout_s": n.timeout_s}
            for n in config.nodes.values()
        ],
    }  # fmt: skip
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"we are {config.ae_title}, storage port {config.storage_port} (configuration {config.path})")
    if not config.nodes:
        print("no nodes configured; NODE can also be AE_TITLE@HOST:PORT or an http(s)://.../dicom-web URL")
    for node in config.nodes.values():
        print(f"  {node.describe()}")
    return 0


def _node(args, config):
    from app.pacs.nodes import resolve_node

    return resolve_node(args.node, config)


def _echo(args, config) -> int:
    from app.pacs.service import echo

    node = _node(args, config)
    print(f"{node.describe()}: answered in {echo(node, config):.0f} ms")
    return 0


def _find(args, config) -> int:
    from app.pacs.results import Query
    from app.pacs.service import find

    query = Query(args.level, args.patient_id, args.patient_name, args.study_date, args.modality, args.accession, args.study)
    matches = find(_node(args, config), config, query)
    if args.json:
        print(json.dumps(matches, indent=2))
        return 0
    for m in matches:
        if args.level == "study":
            print(f"{m['study_date'] or '--------'}  {m['patient_id'] or '?':12} {m['patient_name'] or '':24} "
                  f"{','.join(m['modalities']) or '?':8} {m['instance_count'] or '?':>5} inst  {m['study_uid']}  {m['study_description'] or ''}")  # fmt: skip
        else:
            print(f"{m['modality'] or '?':4} #{m['series_number'] if m['series_number'] is not None else '?':<4} "
                  f"{m['instance_count'] or '?':>5} inst  {m['series_uid']}  {m['series_description'] or ''}")  # fmt: skip
    print(f"{len(matches)} {args.level} match(es)", file=sys.stderr)
    return 0


def _get(args, config) -> int:
    from app.cli.writable import OutputRefused, check_outputs, folder_output
    from app.io.atomic import atomic_folder
    from app.pacs.service import PacsError, how_retrieved, retrieve

    node = _node(args, config)
    out = Path(args.out_dir)
    try:
        check_outputs([folder_output(out)], [], args.force)
    except OutputRefused as error:
        raise ValueError(str(error)) from None

    def progress(result) -> None:
        if result.done % 25 == 0:
            total = f"/{result.expected}" if result.expected else ""
            print(f"  {result.done}{total} instances", file=sys.stderr, flush=True)

    class Incomplete(Exception):
        pass

    try:
        with atomic_folder(out, replace=args.force) as partial:
            result = retrieve(node, config, args.study, args.series, partial, progress)
            if not result.complete:
                raise Incomplete
    except Incomplete:
        expected = f" of {result.expected}" if result.expected else ""
        print(f"pacs get: error: {how_retrieved(node)} from {node.name}: received {result.done}{expected} instance(s),"
              f" {result.failed} failed{', cancelled' if result.cancelled else ''}; nothing written to {out}", file=sys.stderr)  # fmt: skip
        for reason in result.skipped[:10]:
            print(f"  skipped: {reason}", file=sys.stderr)
        return 1
    except PacsError:
        raise
    if result.done == 0:
        out.rmdir()
        print(f"pacs get: error: {node.name} returned no instance of study {args.study}"
              f"{' series ' + args.series if args.series else ''} (unknown UID?)", file=sys.stderr)  # fmt: skip
        return 2
    series = len({Path(f).parent.name for f in result.files})
    print(f"retrieved {result.done} instance(s) in {series} series from {node.name} ({how_retrieved(node)}) into {out}")
    return 0


def _send(args, config) -> int:
    from app.pacs.service import send

    node = _node(args, config)
    path = Path(args.path)
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    result = send(node, config, path)
    for reason in result.skipped[:10]:
        print(f"  not sent: {reason}", file=sys.stderr)
    print(f"sent {result.done} of {result.expected} file(s) to {node.name}" + (f"; {result.failed} refused" if result.failed else ""))
    return 0 if result.complete else 1


COMMANDS = {"nodes": _nodes, "echo": _echo, "find": _find, "get": _get, "send": _send}
