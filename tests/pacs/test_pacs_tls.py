"""DIMSE over TLS (Orthanc's own) and DICOMweb over HTTPS (a TLS front: Debian's Orthanc 1.10.1
crashes with its own HTTPS) with basic authentication, with a test certificate: the server is verified against that certificate, the password comes from the
environment and is never printed, a wrong password or an unverified server is one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.pacs.https_proxy import start_https_proxy
from tests.pacs.orthanc import Orthanc, available, free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
PASSWORD = "s3cret-Pa55"
TOKEN = "tok-3f9a1c77"


@pytest.fixture(scope="module")
def secure_orthanc(tmp_path_factory, orthanc):
    if not available():
        pytest.skip("no Orthanc")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)  # fmt: skip
    extra = {
        "AuthenticationEnabled": True, "RegisteredUsers": {"reader": PASSWORD},
        "DicomTlsEnabled": True, "DicomTlsCertificate": str(cert), "DicomTlsPrivateKey": str(key),
        "DicomTlsTrustedCertificates": str(cert), "DicomTlsRemoteCertificateRequired": False,
    }  # fmt: skip
    server = Orthanc(folder / "orthanc", free_port(), free_port(), "SYNTHVIEWTEST", free_port(), extra=extra).start()
    import requests

    for path in orthanc.study["files"][:12]:
        requests.post(f"{server.rest}/instances", data=Path(path).read_bytes(), auth=("reader", PASSWORD),
                      timeout=30).raise_for_status()  # fmt: skip
    proxy, port = start_https_proxy(server.rest, str(cert), str(key))
    gateway, gateway_port = start_https_proxy(server.rest, str(cert), str(key), bearer=(TOKEN, ("reader", PASSWORD)))
    server.cert, server.https = cert, f"https://127.0.0.1:{port}/dicom-web"
    server.bearer_url = f"https://127.0.0.1:{gateway_port}/dicom-web"
    yield server
    proxy.shutdown()
    gateway.shutdown()
    server.remove()


def run(config: Path, *args, env_password: str | None = PASSWORD) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PACS_PASSWORD"}
    if env_password is not None:
        env["PACS_PASSWORD"] = env_password
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "pacs", args[0], "--config", str(config), *map(str, args[1:])],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)  # fmt: skip


def write_config(tmp_path: Path, server, ca) -> Path:
    path = tmp_path / "pacs.yaml"
    path.write_text(yaml.safe_dump({"nodes": {
        "tls": {"ae_title": "ORTHANC", "host": "127.0.0.1", "port": server.dicom_port, "tls": {"ca": str(ca)}, "timeout_s": 10},
        "https": {"url": server.https, "auth": "basic", "username": "reader", "password_env": "PACS_PASSWORD",
                  "tls": {"ca": str(ca)}, "timeout_s": 10},
    }}))  # fmt: skip
    return path


def test_tls_and_https_with_basic_auth(secure_orthanc, orthanc, tmp_path):
    config = write_config(tmp_path, secure_orthanc, secure_orthanc.cert)
    for node in ("tls", "https"):
        result = run(config, "echo", node)
        assert result.returncode == 0 and "answered" in result.stdout, result.stderr
        found = json.loads(run(config, "find", node, "--patient-id", orthanc.study["patient_id"], "--json").stdout)
        assert [m["study_uid"] for m in found] == [orthanc.study["study_uid"]]
    result = run(config, "get", "https", "--study", orthanc.study["study_uid"], tmp_path / "got")
    assert result.returncode == 0 and "retrieved 12 instance(s)" in result.stdout, result.stderr
    result = run(config, "get", "tls", "--study", orthanc.study["study_uid"], tmp_path / "got-tls")
    assert result.returncode == 0 and "retrieved 12 instance(s)" in result.stdout, result.stderr


def test_a_wrong_password_and_an_unverified_server_are_one_line_and_say_no_secret(secure_orthanc, tmp_path):
    config = write_config(tmp_path, secure_orthanc, secure_orthanc.cert)
    wrong = run(config, "echo", "https", env_password="wrong-password")
    assert wrong.returncode == 2 and "HTTP 401 (check the user name and the secret)" in wrong.stderr
    missing = run(config, "echo", "https", env_password=None)
    assert missing.returncode == 2 and "PACS_PASSWORD" in missing.stderr
    other_ca = tmp_path / "other.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "k.pem"),
                    "-out", str(other_ca), "-days", "1", "-subj", "/CN=other"], check=True, capture_output=True)  # fmt: skip
    untrusted = write_config(tmp_path / "u", secure_orthanc, other_ca) if (tmp_path / "u").mkdir() is None else None
    for node in ("tls", "https"):
        result = run(untrusted, "echo", node)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    for result in (wrong, missing):
        assert PASSWORD not in result.stderr + result.stdout and "Traceback" not in result.stderr


def test_bearer_token_from_the_environment(secure_orthanc, orthanc, tmp_path):
    config = tmp_path / "pacs.yaml"
    config.write_text(yaml.safe_dump({"nodes": {"cloud": {"url": secure_orthanc.bearer_url, "auth": "bearer",
                                                          "token_env": "PACS_PASSWORD", "tls": {"ca": str(secure_orthanc.cert)}}}}))  # fmt: skip
    found = run(config, "find", "cloud", "--patient-id", orthanc.study["patient_id"], "--json", env_password=TOKEN)
    assert found.returncode == 0 and json.loads(found.stdout)[0]["study_uid"] == orthanc.study["study_uid"], found.stderr
    refused = run(config, "echo", "cloud", env_password="not-the-token")
    assert refused.returncode == 2 and "HTTP 401" in refused.stderr and TOKEN not in refused.stderr


def test_a_secret_from_the_system_keyring(monkeypatch):
    import types

    from app.pacs.nodes import Node, NodeError

    asked = []
    fake = types.SimpleNamespace(get_password=lambda service, user: asked.append((service, user)) or (PASSWORD if user == "reader" else None))
    monkeypatch.setitem(sys.modules, "keyring", fake)
    node = Node("web", "dicomweb", url="https://pacs.example.org/dicom-web", auth="basic", username="reader", keyring_service="synthview-pacs")
    assert node.secret() == PASSWORD and asked == [("synthview-pacs", "reader")]
    nobody = Node("web", "dicomweb", url="https://x/dicom-web", auth="basic", username="nobody", keyring_service="synthview-pacs")
    with pytest.raises(NodeError, match="no secret for nobody in keyring synthview-pacs"):
        nobody.secret()
    monkeypatch.setitem(sys.modules, "keyring", None)  # not installed
    with pytest.raises(NodeError, match="'keyring' package is not installed"):
        node.secret()
