"""A real Orthanc (Debian's `orthanc` + `orthanc-dicomweb`) on free ports with a temporary
configuration and storage, for the PACS tests; stopped afterwards."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def available() -> bool:
    return ORTHANC.exists() and DICOMWEB_PLUGIN.exists()


@dataclass
class Orthanc:
    folder: Path
    http_port: int
    dicom_port: int
    our_ae: str
    our_port: int
    process: subprocess.Popen | None = None
    aet: str = "ORTHANC"
    extra: dict | None = None  # more configuration (TLS, users)

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.rest}/dicom-web"

    @property
    def dimse(self) -> str:
        return f"{self.aet}@127.0.0.1:{self.dicom_port}"

    def start(self) -> Orthanc:
        storage = self.folder / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "synthview-test", "HttpPort": self.http_port, "DicomPort": self.dicom_port,
            "DicomAet": self.aet, "StorageDirectory": str(storage), "IndexDirectory": str(storage),
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "DicomCheckCalledAet": True,
            "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True, "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": True, "DicomAlwaysAllowMove": True, "UnknownSopClassAccepted": True,
            "DicomModalities": {"synthview": {"AET": self.our_ae, "Host": "127.0.0.1", "Port": self.our_port,
                                              "AllowGet": True, "AllowMove": True, "AllowFind": True, "AllowStore": True}},
            "Plugins": [str(DICOMWEB_PLUGIN)], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "StableAge": 1, "ConcurrentJobs": 2, "HttpTimeout": 30,
        }  # fmt: skip
        config.update(self.extra or {})
        (self.folder / "orthanc.json").write_text(json.dumps(config))
        log = (self.folder / "orthanc.log").open("w")
        self.process = subprocess.Popen([str(ORTHANC), str(self.folder / "orthanc.json")], stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited: {(self.folder / 'orthanc.log').read_text()[-2000:]}")
            try:
                answer = requests.get(f"{self.rest}/system", timeout=1)
                if answer.ok or answer.status_code == 401:
                    return self
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError("Orthanc did not start within 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)

    def upload(self, files) -> list[str]:
        ids = []
        for path in files:
            response = requests.post(f"{self.rest}/instances", data=Path(path).read_bytes(), timeout=30)
            response.raise_for_status()
            ids.append(response.json()["ID"])
        return ids

    def instance_tags(self, sop_instance_uid: str) -> dict:
        """The stored instance's elements, "gggg,eeee" -> value."""
        found = requests.post(f"{self.rest}/tools/find", json={"Level": "Instance", "Query": {"SOPInstanceUID": sop_instance_uid}}, timeout=10).json()
        assert found, f"{sop_instance_uid} not in Orthanc"
        # ?short: keys are tags ("0008,001c"); this Orthanc's dictionary predates Synthetic Data.
        return requests.get(f"{self.rest}/instances/{found[0]}/tags?short", timeout=10).json()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
