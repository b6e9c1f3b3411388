"""PACS faults: the server killed in the middle of a transfer, a cancel, instances of a study
nobody asked for, malformed instances: nothing half-written is ever shown as complete."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.pacs.orthanc import Orthanc, available, free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_the_server_killed_mid_transfer_leaves_nothing(orthanc, tmp_path):
    if not available():
        pytest.skip("no Orthanc")
    doomed = Orthanc(tmp_path / "doomed", free_port(), free_port(), "KILLTEST", free_port()).start()
    try:
        doomed.upload(orthanc.study["files"])
        out = tmp_path / "out"
        run = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "pacs", "get", f"ORTHANC@127.0.0.1:{doomed.dicom_port}",
             "--study", orthanc.study["study_uid"], str(out)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and run.poll() is None:
            if any(p.suffix == ".dcm" for p in tmp_path.glob(".out*/*/*")):
                doomed.kill()  # the first instance has arrived: the server dies mid-transfer
                break
            time.sleep(0.01)
        _, stderr = run.communicate(timeout=120)
    finally:
        doomed.remove()
    assert run.returncode in (1, 2), stderr
    assert "Traceback" not in stderr and stderr.strip().count("\n") <= 12
    assert not out.exists() and not list(tmp_path.glob(".out*"))  # nothing half-written anywhere


def test_cancel_keeps_nothing_in_the_cache(orthanc, pacs_config):
    from app.pacs.cache import IncompleteRetrieval, StudyCache
    from app.pacs.nodes import load_config, resolve_node

    config = load_config(pacs_config)
    cache = StudyCache.for_config(config)
    seen = []
    with pytest.raises(IncompleteRetrieval, match="cancelled after"):
        cache.retrieve(resolve_node("orthanc-get", config), config, orthanc.study["study_uid"],
                       progress=lambda r: seen.append(r.done), cancel=lambda: len(seen) >= 3)  # fmt: skip
    assert cache.folder(orthanc.study["study_uid"]) is None
    assert [e.complete for e in cache.entries().values()] == [False]


def test_the_cache_reuses_a_complete_study_and_purges_the_least_recently_used(orthanc, pacs_config):
    from app.pacs.cache import StudyCache
    from app.pacs.nodes import load_config, resolve_node

    config = load_config(pacs_config)
    cache = StudyCache.for_config(config)
    node = resolve_node("orthanc-web", config)
    study = orthanc.study
    a, _ = cache.retrieve(node, config, study["study_uid"], study["series_a"])
    b, _ = cache.retrieve(node, config, study["study_uid"], study["series_b"])
    again, result = cache.retrieve(node, config, study["study_uid"], study["series_a"])
    assert again == a and result.done == 12  # from the cache, complete
    cache.limit_bytes = sum(e.bytes for e in cache.entries().values()) - 1  # one must go
    time.sleep(1.1)
    assert cache.folder(study["study_uid"], study["series_b"]) == b  # b used last
    assert cache.purge() == [StudyCache.key(study["study_uid"], study["series_a"])]
    assert not a.exists() and b.exists()


class _Event:
    def __init__(self, dataset, raw=b"DICM"):
        self.dataset, self._raw = dataset, raw

    def encoded_dataset(self, include_meta=True):
        return self._raw


def test_the_receiver_refuses_other_studies_and_malformed_instances(tmp_path):
    from app.pacs.dimse import _Receiver

    receiver = _Receiver(tmp_path, "1.2.3", None, None, None)
    good = SimpleNamespace(get=lambda k, d="": {"StudyInstanceUID": "1.2.3", "SeriesInstanceUID": "1.2.3.4", "SOPInstanceUID": "1.2.3.4.5"}[k])
    other = SimpleNamespace(get=lambda k, d="": {"StudyInstanceUID": "9.9", "SeriesInstanceUID": "9.9.1", "SOPInstanceUID": "9.9.1.1"}[k])
    hostile = SimpleNamespace(get=lambda k, d="": {"StudyInstanceUID": "1.2.3", "SeriesInstanceUID": "../../etc", "SOPInstanceUID": "x"}[k])

    class Broken:
        @property
        def dataset(self):
            raise ValueError("truncated")

    assert receiver.handle_store(_Event(good)) == 0x0000
    assert receiver.handle_store(_Event(other)) != 0x0000
    assert receiver.handle_store(_Event(hostile)) != 0x0000
    assert receiver.handle_store(Broken()) != 0x0000
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.dcm")] == ["1.2.3.4/1.2.3.4.5.dcm"]
    assert len(receiver.result.skipped) == 3 and not receiver.result.complete
    assert "which was not asked for" in receiver.result.skipped[0] and "invalid UIDs" in receiver.result.skipped[1]


def test_the_move_destination_accepts_only_the_node_it_asked(tmp_path):
    from pynetdicom import AE, evt
    from pynetdicom import sop_class as sop

    from app.pacs.dimse import _Receiver, storage_scp
    from app.pacs.nodes import Node, PacsConfig

    config = PacsConfig(ae_title="SYNTHVIEW", storage_port=free_port())
    node = Node("pacs", "dimse", ae_title="THEPACS", host="127.0.0.1", port=104)
    receiver = _Receiver(tmp_path, "1.2.3", None, None, None)
    server = storage_scp(config, node).start_server(("127.0.0.1", config.storage_port), block=False,
                                                    evt_handlers=[(evt.EVT_C_STORE, receiver.handle_store)])  # fmt: skip
    try:
        outcomes = {}
        for calling in ("INTRUDER", "THEPACS"):
            client = AE(ae_title=calling)
            client.add_requested_context(sop.MRImageStorage)
            assoc = client.associate("127.0.0.1", config.storage_port, ae_title="SYNTHVIEW")
            outcomes[calling] = assoc.is_established
            if assoc.is_established:
                assoc.release()
        assert outcomes == {"INTRUDER": False, "THEPACS": True}
    finally:
        server.shutdown()
