"""DIMSE services through pynetdicom: C-ECHO, C-FIND, C-GET, C-MOVE (to our own storage SCP) and
C-STORE. Every failure is a :class:`PacsError` with one line that names the node and the cause
(no answer within the timeout, association rejected and why, a status the server returned)."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pydicom.uid import JPEGLossless as JPEGLosslessP14
from pynetdicom import AE, build_role, evt
from pynetdicom import sop_class as sop

from app.pacs.nodes import Node, PacsConfig
from app.pacs.results import SERIES_FIELDS, STUDY_FIELDS, Query, TransferResult, match_from, refusal_reason

Progress = Callable[[TransferResult], None]
Cancel = Callable[[], bool]

# What we accept when a server sends us instances (C-GET, C-MOVE): the common image, RT, SR
# and SEG classes, in every transfer syntax we can decode, so a server never has to transcode
# (a lossy transcode would change the pixels we compare).
STORAGE_CLASSES = [
    sop.CTImageStorage, sop.EnhancedCTImageStorage, sop.MRImageStorage, sop.EnhancedMRImageStorage,
    sop.PositronEmissionTomographyImageStorage, sop.EnhancedPETImageStorage, sop.NuclearMedicineImageStorage,
    sop.SecondaryCaptureImageStorage, sop.MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    sop.MultiFrameGrayscaleWordSecondaryCaptureImageStorage, sop.MultiFrameTrueColorSecondaryCaptureImageStorage,
    sop.UltrasoundImageStorage, sop.UltrasoundMultiFrameImageStorage, sop.ComputedRadiographyImageStorage,
    sop.DigitalXRayImageStorageForPresentation, sop.DigitalMammographyXRayImageStorageForPresentation,
    sop.XRayAngiographicImageStorage, sop.RTDoseStorage, sop.RTStructureSetStorage, sop.SegmentationStorage,
    sop.BasicTextSRStorage, sop.EnhancedSRStorage, sop.ComprehensiveSRStorage, sop.Comprehensive3DSRStorage,
    sop.EnhancedMRColorImageStorage, sop.ParametricMapStorage,
]  # fmt: skip
TRANSFER_SYNTAXES = [
    ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian,
    JPEGLosslessSV1, JPEGLosslessP14, JPEGLSLossless, JPEG2000Lossless, RLELossless,
    JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLSNearLossless, JPEG2000,
]  # fmt: skip


class PacsError(Exception):
    """A network operation that failed; ``str()`` is one line."""


def _ae(config: PacsConfig, node: Node) -> AE:
    ae = AE(ae_title=config.ae_title)
    for name in ("acse_timeout", "dimse_timeout", "network_timeout", "connection_timeout"):
        setattr(ae, name, node.timeout_s)
    return ae


def _tls_args(node: Node):
    if node.tls is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=node.tls.ca)
    if node.tls.cert:
        context.load_cert_chain(node.tls.cert, node.tls.key)
    return context, node.host


def _reachable(node: Node) -> None:
    """A plain TCP connection first, so that 'nothing listens there' and 'no route / no answer'
    get their own messages (pynetdicom reports both as an aborted association)."""
    import socket

    try:
        with socket.create_connection((node.host, node.port), timeout=node.timeout_s):
            pass
    except ConnectionRefusedError:
        raise PacsError(f"{node.describe()}: connection refused: nothing listens on {node.host}:{node.port} (wrong port, or the server is down)") from None
    except TimeoutError:
        raise PacsError(f"{node.describe()}: no answer within {node.timeout_s:g} s: is the host up, the address right, a firewall open?") from None
    except OSError as error:
        raise PacsError(f"{node.describe()}: cannot connect ({error.strerror or error})") from None


def associate(ae: AE, node: Node, ext_neg=None, evt_handlers=None):
    _reachable(node)
    started = time.monotonic()
    try:
        assoc = ae.associate(
            node.host, node.port, ae_title=node.ae_title, ext_neg=ext_neg, evt_handlers=evt_handlers,
            tls_args=_tls_args(node),
        )  # fmt: skip
    except (OSError, ssl.SSLError) as error:
        raise PacsError(f"{node.describe()}: cannot connect ({error})") from None
    if assoc.is_established:
        return assoc
    if assoc.is_rejected:
        raise PacsError(
            f"{node.describe()}: association rejected by the server (called AE title {node.ae_title!r}, calling AE"
            f" title {ae.ae_title!r}): check that the server has this called AE title and knows ours"
        )
    waited = time.monotonic() - started
    if waited >= node.timeout_s * 0.9:
        raise PacsError(f"{node.describe()}: the server accepted the connection but did not answer the association within {node.timeout_s:g} s")
    if node.tls is not None:
        raise PacsError(f"{node.describe()}: the TLS handshake or the association failed (is TLS enabled on that port, and our certificate accepted?)")
    raise PacsError(f"{node.describe()}: the server aborted the association (is our AE title {ae.ae_title!r} allowed there? does the port speak DICOM?)")


def echo(node: Node, config: PacsConfig) -> float:
    """C-ECHO round trip in milliseconds."""
    ae = _ae(config, node)
    ae.add_requested_context(sop.Verification)
    started = time.perf_counter()
    assoc = associate(ae, node)
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    if not status or status.Status != 0:
        raise PacsError(f"{node.describe()}: C-ECHO failed (status {getattr(status, 'Status', 'none')})")
    return (time.perf_counter() - started) * 1000


def find(node: Node, config: PacsConfig, query: Query) -> list[dict]:
    """C-FIND at the study or series level (Study Root)."""
    ae = _ae(config, node)
    ae.add_requested_context(sop.StudyRootQueryRetrieveInformationModelFind)
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY" if query.level == "study" else "SERIES"
    fields = STUDY_FIELDS if query.level == "study" else SERIES_FIELDS
    for keyword in fields:
        setattr(identifier, keyword, "")
    for keyword, value in query.matching_keys().items():
        setattr(identifier, keyword, value)
    matches = []
    assoc = associate(ae, node)
    try:
        for status, found in assoc.send_c_find(identifier, sop.StudyRootQueryRetrieveInformationModelFind):
            if not status:
                raise PacsError(f"{node.describe()}: C-FIND: no answer within {node.timeout_s:g} s")
            if status.Status in (0xFF00, 0xFF01) and found is not None:
                matches.append(match_from({k: found.get(k) for k in fields}, query.level))
            elif status.Status not in (0x0000, 0xFF00, 0xFF01):
                raise PacsError(f"{node.describe()}: C-FIND failed with status 0x{status.Status:04X}")
    finally:
        assoc.release()
    return matches


class _Receiver:
    """Writes the instances a server sends us (C-STORE sub-operations) into ``folder``: only the
    study (and series) asked for, each with valid UIDs; anything else is refused and noted."""

    def __init__(self, folder: Path, study_uid: str, series_uid: str | None, progress: Progress | None, cancel: Cancel | None):
        self.folder, self.study_uid, self.series_uid = folder, study_uid, series_uid
        self.progress, self.cancel = progress, cancel or (lambda: False)
        self.result = TransferResult()
        self.lock = threading.Lock()

    def handle_store(self, event) -> int:
        if self.cancel():
            self.result.cancelled = True
            return 0xA700  # out of resources: the server stops sending
        try:
            ds = event.dataset
            study, series, instance = (str(ds.get(k, "")) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"))
        except Exception as error:  # noqa: BLE001 - a malformed dataset from the server: skipped with its reason
            return self._skip(f"an instance that cannot be decoded ({type(error).__name__}: {str(error)[:120]})", 0xC210)
        if reason := refusal_reason(study, series, instance, self.study_uid, self.series_uid):
            return self._skip(reason, 0xC211)
        target = self.folder / series / f"{instance}.dcm"
        with self.lock:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(event.encoded_dataset(include_meta=True))
            self.result.done += 1
            self.result.files.append(str(target))
        if self.progress:
            self.progress(self.result)
        return 0x0000

    def _skip(self, reason: str, status: int) -> int:
        with self.lock:
            self.result.skipped.append(reason)
        return status


def _retrieve_identifier(study_uid: str, series_uid: str | None) -> Dataset:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "SERIES" if series_uid else "STUDY"
    identifier.StudyInstanceUID = study_uid
    if series_uid:
        identifier.SeriesInstanceUID = series_uid
    return identifier


def _follow(responses, node: Node, result: TransferResult, what: str, cancel: Cancel | None, assoc) -> None:
    for status, _identifier in responses:
        if not status:
            raise PacsError(f"{node.describe()}: {what}: the connection was lost or no answer came within {node.timeout_s:g} s")
        remaining = status.get("NumberOfRemainingSuboperations")
        completed = status.get("NumberOfCompletedSuboperations") or 0
        failed = status.get("NumberOfFailedSuboperations") or 0
        warning = status.get("NumberOfWarningSuboperations") or 0
        if remaining is not None:
            result.expected = int(remaining) + int(completed) + int(failed) + int(warning)
        if status.Status in (0xFF00, 0xFF01):
            if cancel and cancel():
                result.cancelled = True
                assoc.abort()
                return
            continue
        # The final response: success, a warning (some sub-operations failed), or a failure.
        result.failed = max(result.failed, int(failed))
        code = status.Status
        if code == 0x0000:
            return
        if code == 0xA801:
            raise PacsError(f"{node.describe()}: {what}: the server does not know our AE title as a move destination")
        if code in (0xA701, 0xA702) and not (result.done or failed):
            raise PacsError(f"{node.describe()}: {what}: the server is out of resources (status 0x{code:04X})")
        if code == 0xFE00:
            result.cancelled = True
            return
        if result.done or failed or completed:  # some instances came, some did not: a partial retrieval
            result.failed = max(result.failed, 1)
            result.expected = max(result.expected or 0, result.done + result.failed)
            return
        raise PacsError(f"{node.describe()}: {what} failed with status 0x{code:04X} (no instance was sent)")

def get(node: Node, config: PacsConfig, study_uid: str, series_uid: str | None, folder: Path,
        progress: Progress | None = None, cancel: Cancel | None = None) -> TransferResult:  # fmt: skip
    """C-GET: the instances come back on the same association, into ``folder``."""
    ae = _ae(config, node)
    ae.add_requested_context(sop.StudyRootQueryRetrieveInformationModelGet)
    roles = []
    for storage in STORAGE_CLASSES:
        ae.add_requested_context(storage, TRANSFER_SYNTAXES)
        roles.append(build_role(storage, scp_role=True))
    receiver = _Receiver(folder, study_uid, series_uid, progress, cancel)
    assoc = associate(ae, node, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, receiver.handle_store)])
    try:
        responses = assoc.send_c_get(_retrieve_identifier(study_uid, series_uid), sop.StudyRootQueryRetrieveInformationModelGet)
        _follow(responses, node, receiver.result, "C-GET", cancel, assoc)
    finally:
        if assoc.is_established:
            assoc.release()
    return receiver.result


def storage_scp(config: PacsConfig, node: Node) -> AE:
    """Our storage SCP for a C-MOVE from ``node``: only that node's AE title may call it."""
    scp = AE(ae_title=config.ae_title)
    scp.require_calling_aet = [node.ae_title]
    scp.require_called_aet = True
    for storage in STORAGE_CLASSES:
        scp.add_supported_context(storage, TRANSFER_SYNTAXES)
    return scp


def move(node: Node, config: PacsConfig, study_uid: str, series_uid: str | None, folder: Path,
         progress: Progress | None = None, cancel: Cancel | None = None) -> TransferResult:  # fmt: skip
    """C-MOVE to our own storage SCP (``config.ae_title`` on ``config.storage_port``), which the
    server must know; the SCP accepts only the node's AE title, and only the study asked for."""
    receiver = _Receiver(folder, study_uid, series_uid, progress, cancel)
    scp = storage_scp(config, node)
    try:
        server = scp.start_server(("0.0.0.0", config.storage_port), block=False,
                                  evt_handlers=[(evt.EVT_C_STORE, receiver.handle_store)])  # fmt: skip
    except OSError as error:
        raise PacsError(f"cannot listen for C-MOVE on port {config.storage_port} ({error}); set local.storage_port") from None
    try:
        ae = _ae(config, node)
        ae.add_requested_context(sop.StudyRootQueryRetrieveInformationModelMove)
        assoc = associate(ae, node)
        try:
            responses = assoc.send_c_move(
                _retrieve_identifier(study_uid, series_uid), config.ae_title, sop.StudyRootQueryRetrieveInformationModelMove
            )
            _follow(responses, node, receiver.result, "C-MOVE", cancel, assoc)
        finally:
            if assoc.is_established:
                assoc.release()
    finally:
        server.shutdown()
    return receiver.result


def send(node: Node, config: PacsConfig, files: list[Path], progress: Progress | None = None,
         cancel: Cancel | None = None) -> TransferResult:  # fmt: skip
    """C-STORE every file (each in its own transfer syntax, as stored)."""
    from pydicom import dcmread

    result = TransferResult(expected=len(files))
    headers = []
    for path in files:
        try:
            ds = dcmread(path, stop_before_pixels=True)
            headers.append((path, str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)))
        except Exception as error:  # noqa: BLE001 - not DICOM: skipped with its reason
            result.skipped.append(f"{path.name}: not a DICOM file ({type(error).__name__})")
    ae = _ae(config, node)
    for sop_class in sorted({s for _, s, _ in headers}):
        syntaxes = sorted({t for _, s, t in headers if s == sop_class} | {ExplicitVRLittleEndian, ImplicitVRLittleEndian})
        ae.add_requested_context(sop_class, syntaxes)
    if not headers:
        return result
    assoc = associate(ae, node)
    try:
        for path, _, _ in headers:
            if cancel and cancel():
                result.cancelled = True
                break
            status = assoc.send_c_store(path)
            if not status:
                raise PacsError(f"{node.describe()}: C-STORE of {path.name}: no answer (connection lost?)")
            if status.Status in (0x0000, 0xB000, 0xB007, 0xB006):
                result.done += 1
            else:
                result.failed += 1
                result.skipped.append(f"{path.name}: refused with status 0x{status.Status:04X}")
            if progress:
                progress(result)
    finally:
        if assoc.is_established:
            assoc.release()
    return result
