"""The local study cache the viewer retrieves into: one folder per retrieved study (or series),
an index that knows which are complete, a size limit and a purge of the least recently used.

A retrieval lands in its folder atomically; an incomplete one (a failed or refused instance, a
cancel, fewer instances than the server announced) keeps nothing and is listed in the index as
incomplete with its reason, so it is never opened as if it were the whole study.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from app.io.atomic import atomic_folder, write_text_atomic
from app.pacs.nodes import Node, PacsConfig
from app.pacs.results import TransferResult
from app.pacs.service import PacsError, retrieve

INDEX = "index.json"


class IncompleteRetrieval(PacsError):
    """A retrieval that did not bring everything: nothing was kept."""


@dataclass
class CacheEntry:
    key: str
    study_uid: str
    series_uid: str | None
    node: str
    complete: bool
    instances: int
    bytes: int
    retrieved_utc: str
    last_used_utc: str
    reason: str = ""


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


class StudyCache:
    def __init__(self, root: str | Path, limit_bytes: int) -> None:
        self.root = Path(root)
        self.limit_bytes = int(limit_bytes)

    @classmethod
    def for_config(cls, config: PacsConfig) -> StudyCache:
        return cls(config.cache_dir, int(config.cache_limit_gb * 2**30))

    @staticmethod
    def key(study_uid: str, series_uid: str | None) -> str:
        return hashlib.sha256(f"{study_uid}/{series_uid or ''}".encode()).hexdigest()[:24]

    def entries(self) -> dict[str, CacheEntry]:
        try:
            data = json.loads((self.root / INDEX).read_text())
            return {k: CacheEntry(**v) for k, v in data.items()}
        except (OSError, ValueError, TypeError):
            return {}

    def _save(self, entries: dict[str, CacheEntry]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.root / INDEX, json.dumps({k: vars(e) for k, e in entries.items()}, indent=2))

    def folder(self, study_uid: str, series_uid: str | None = None) -> Path | None:
        """The cached folder when that retrieval is complete (marks it used); None otherwise."""
        entries = self.entries()
        entry = entries.get(self.key(study_uid, series_uid))
        folder = self.root / self.key(study_uid, series_uid)
        if entry is None or not entry.complete or not folder.is_dir():
            return None
        entry.last_used_utc = _now()
        self._save(entries)
        return folder

    def retrieve(self, node: Node, config: PacsConfig, study_uid: str, series_uid: str | None = None,
                 progress=None, cancel=None) -> tuple[Path, TransferResult]:  # fmt: skip
        """The study (series) from ``node`` into the cache; a complete cached copy is used as is."""
        cached = self.folder(study_uid, series_uid)
        if cached is not None:
            return cached, TransferResult(done=len(list(cached.rglob("*.dcm"))))
        key = self.key(study_uid, series_uid)
        result = TransferResult()
        try:
            with atomic_folder(self.root / key, replace=True) as partial:
                result = retrieve(node, config, study_uid, series_uid, partial, progress, cancel)
                if not result.complete or result.done == 0:
                    raise IncompleteRetrieval(self._incomplete_reason(result))
                size = sum(p.stat().st_size for p in partial.rglob("*") if p.is_file())
        except IncompleteRetrieval as error:
            self._record(CacheEntry(key, study_uid, series_uid, node.name, False, result.done, 0, _now(), _now(), str(error)))
            raise
        self._record(CacheEntry(key, study_uid, series_uid, node.name, True, result.done, size, _now(), _now()))
        self.purge(keep=key)
        return self.root / key, result

    @staticmethod
    def _incomplete_reason(result: TransferResult) -> str:
        if result.cancelled:
            return f"cancelled after {result.done} instance(s); nothing kept"
        if result.done == 0 and not result.failed:
            return "the server returned no instance (unknown study or series?)"
        expected = f" of {result.expected}" if result.expected else ""
        detail = f": {result.skipped[0]}" if result.skipped else ""
        return f"received {result.done}{expected} instance(s), {result.failed} failed{detail}; nothing kept"

    def _record(self, entry: CacheEntry) -> None:
        entries = self.entries()
        entries[entry.key] = entry
        self._save(entries)

    def purge(self, keep: str | None = None) -> list[str]:
        """Remove the least recently used complete studies until the cache fits its limit."""
        entries = self.entries()
        total = sum(e.bytes for e in entries.values() if e.complete)
        removed = []
        for entry in sorted((e for e in entries.values() if e.complete), key=lambda e: e.last_used_utc):
            if total <= self.limit_bytes:
                break
            if entry.key == keep:
                continue
            shutil.rmtree(self.root / entry.key, ignore_errors=True)
            total -= entry.bytes
            del entries[entry.key]
            removed.append(entry.key)
        if removed:
            self._save(entries)
        return removed
