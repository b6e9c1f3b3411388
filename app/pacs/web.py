"""DICOMweb services through dicomweb-client: QIDO-RS (find), WADO-RS (retrieve), STOW-RS (send),
over HTTP(S) with basic or bearer authentication (the secret from the keyring or environment)."""

from __future__ import annotations

import re
from pathlib import Path

import requests
from pydicom import dcmread

from app.pacs.dimse import PacsError
from app.pacs.nodes import Node
from app.pacs.results import SERIES_FIELDS, STUDY_FIELDS, Query, TransferResult, match_from, refusal_reason

_TAGS = {}  # keyword -> tag hex, filled lazily


class _Session(requests.Session):
    """A session whose CA bundle, when the node names one, wins over REQUESTS_CA_BUNDLE /
    CURL_CA_BUNDLE (requests lets the environment override a session's own ``verify``)."""

    ca_bundle: str | None = None

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self.ca_bundle:
            settings["verify"] = self.ca_bundle
        return settings


def _client(node: Node):
    from dicomweb_client.api import DICOMwebClient

    session = _Session()
    if node.tls is not None and node.tls.ca:
        session.ca_bundle = node.tls.ca
    if node.tls is not None and node.tls.cert:
        session.cert = (node.tls.cert, node.tls.key) if node.tls.key else node.tls.cert
    headers = {}
    if node.auth == "basic":
        session.auth = (node.username, node.secret() or "")
    elif node.auth == "bearer":
        headers["Authorization"] = f"Bearer {node.secret() or ''}"
    return DICOMwebClient(node.url, session=session, headers=headers, timeout=node.timeout_s)


def _call(node: Node, what: str, function, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except requests.exceptions.Timeout:
        raise PacsError(f"{node.describe()}: {what}: no answer within {node.timeout_s:g} s") from None
    except requests.exceptions.SSLError as error:
        raise PacsError(f"{node.describe()}: {what}: TLS failed ({str(error).splitlines()[0][:200]})") from None
    except requests.exceptions.ConnectionError as error:
        raise PacsError(f"{node.describe()}: {what}: cannot connect ({_first(error)})") from None
    except requests.exceptions.HTTPError as error:
        code = error.response.status_code if error.response is not None else "?"
        hint = " (check the user name and the secret)" if code in (401, 403) else ""
        raise PacsError(f"{node.describe()}: {what}: HTTP {code}{hint}") from None


def _first(error: Exception) -> str:
    text = str(error)
    match = re.search(r"\] ([^'\"]+)", text)
    return (match.group(1) if match else text).splitlines()[0][:200]


def _value(item: dict, keyword: str):
    from pydicom.datadict import tag_for_keyword

    tag = _TAGS.setdefault(keyword, f"{tag_for_keyword(keyword):08X}")
    element = item.get(tag) or {}
    values = element.get("Value") or []
    if not values:
        return None
    if element.get("vr") == "PN":
        return values[0].get("Alphabetic") if isinstance(values[0], dict) else values[0]
    return values if len(values) > 1 else values[0]


def echo(node: Node) -> float:
    import time

    started = time.perf_counter()
    _call(node, "QIDO-RS", _client(node).search_for_studies, limit=1)
    return (time.perf_counter() - started) * 1000


def find(node: Node, query: Query) -> list[dict]:
    client = _client(node)
    fields = STUDY_FIELDS if query.level == "study" else SERIES_FIELDS
    filters = dict(query.matching_keys())
    if query.level == "study":
        found = _call(node, "QIDO-RS", client.search_for_studies, search_filters=filters, fields=list(fields))
    else:
        study = filters.pop("StudyInstanceUID", None)
        found = _call(node, "QIDO-RS", client.search_for_series, study_instance_uid=study, search_filters=filters, fields=list(fields))
    return [match_from({k: _value(item, k) for k in fields}, query.level) for item in found]


def get(node: Node, study_uid: str, series_uid: str | None, folder: Path, progress=None, cancel=None) -> TransferResult:
    """WADO-RS: every instance of the study (or series) as stored (no transcoding asked)."""
    client = _client(node)
    result = TransferResult()
    if series_uid:
        stream = _call(node, "WADO-RS", client.iter_series, study_uid, series_uid, media_types=(("application/dicom", "*"),))
    else:
        stream = _call(node, "WADO-RS", client.iter_study, study_uid, media_types=(("application/dicom", "*"),))
    iterator = iter(stream)
    while True:
        if cancel and cancel():
            result.cancelled = True
            break
        try:
            ds = _call(node, "WADO-RS", next, iterator)
        except StopIteration:
            break
        except PacsError:
            raise
        except Exception as error:  # noqa: BLE001 - a malformed part from the server: skipped with its reason
            result.skipped.append(f"a part that is not a DICOM instance ({type(error).__name__}: {str(error)[:120]})")
            continue
        study, series, instance = (str(ds.get(k, "")) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"))
        if reason := refusal_reason(study, series, instance, study_uid, series_uid):
            result.skipped.append(reason)
            continue
        target = folder / series / f"{instance}.dcm"
        target.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(target, enforce_file_format=True)
        result.done += 1
        result.files.append(str(target))
        if progress:
            progress(result)
    return result


def send(node: Node, files: list[Path], progress=None, cancel=None) -> TransferResult:
    client = _client(node)
    result = TransferResult(expected=len(files))
    batch = []
    for path in files:
        try:
            batch.append(dcmread(path))
        except Exception as error:  # noqa: BLE001 - not DICOM: skipped with its reason
            result.skipped.append(f"{path.name}: not a DICOM file ({type(error).__name__})")
    for start in range(0, len(batch), 16):
        if cancel and cancel():
            result.cancelled = True
            break
        chunk = batch[start : start + 16]
        response = _call(node, "STOW-RS", client.store_instances, datasets=chunk)
        failed = _value(response, "FailedSOPSequence") if isinstance(response, dict) else None
        failures = len(failed) if isinstance(failed, list) else (1 if failed else 0)
        result.done += len(chunk) - failures
        result.failed += failures
        if progress:
            progress(result)
    return result
