"""One entry for every PACS operation, whatever the node's protocol: the CLI and the viewer call
these; retrievals land in a folder atomically (complete, or nothing and the reason)."""

from __future__ import annotations

from pathlib import Path

from app.pacs import dimse, web
from app.pacs.dimse import PacsError
from app.pacs.nodes import Node, PacsConfig
from app.pacs.results import Query, TransferResult

__all__ = ["PacsError", "echo", "find", "retrieve", "send", "dicom_files"]


def echo(node: Node, config: PacsConfig) -> float:
    return dimse.echo(node, config) if node.kind == "dimse" else web.echo(node)


def find(node: Node, config: PacsConfig, query: Query) -> list[dict]:
    if query.level not in ("study", "series"):
        raise PacsError(f"level must be study or series, not {query.level!r}")
    return dimse.find(node, config, query) if node.kind == "dimse" else web.find(node, query)


def how_retrieved(node: Node) -> str:
    if node.kind == "dicomweb":
        return "WADO-RS"
    return "C-MOVE" if node.retrieve == "move" else "C-GET"


def retrieve(node: Node, config: PacsConfig, study_uid: str, series_uid: str | None, folder: Path,
             progress=None, cancel=None) -> TransferResult:  # fmt: skip
    """The study (or one series) into ``folder`` (one sub-folder per series).

    The instance count the server's query answers with is asked first: a retrieval that brings
    fewer instances than that (a server that stops early, drops or cannot send some) is
    incomplete even when the server's own counters say nothing failed."""
    announced = instance_count(node, config, study_uid, series_uid)
    if node.kind == "dicomweb":
        result = web.get(node, study_uid, series_uid, folder, progress, cancel)
    else:
        operation = dimse.move if node.retrieve == "move" else dimse.get
        result = operation(node, config, study_uid, series_uid, folder, progress, cancel)
    if announced and announced > (result.expected or 0):
        result.expected = announced
    return result


def instance_count(node: Node, config: PacsConfig, study_uid: str, series_uid: str | None) -> int | None:
    """How many instances the server says the study (series) holds; None when it does not say."""
    try:
        matches = find(node, config, Query(level="series", study_uid=study_uid))
    except PacsError:
        return None
    counts = [m["instance_count"] for m in matches if not series_uid or m["series_uid"] == series_uid]
    return sum(counts) if counts and all(c is not None for c in counts) else None


def dicom_files(path: Path) -> list[Path]:
    """The files to send for PATH: a DICOM file, or every file under a folder (DICOM or not:
    the send says which were not)."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


def send(node: Node, config: PacsConfig, path: Path, progress=None, cancel=None) -> TransferResult:
    files = dicom_files(path)
    if not files:
        raise PacsError(f"{path}: no file to send")
    if node.kind == "dicomweb":
        return web.send(node, files, progress, cancel)
    return dimse.send(node, config, files, progress, cancel)
