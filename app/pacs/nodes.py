"""PACS nodes: the user's configuration file and the NODE argument of the ``pacs`` commands.

NODE is a configured name, ``AE_TITLE@HOST:PORT`` (DIMSE) or an ``http(s)://.../dicom-web`` base
URL (DICOMweb). The configuration (YAML; default ``~/.config/synthview/pacs.yaml``, or
``$SYNTHVIEW_PACS_CONFIG``, or ``--config``) holds our own AE title and storage port and the
nodes. Credentials are never stored in it: a node names where its secret lives, the system
keyring (``keyring: SERVICE``, when the ``keyring`` package is installed) or an environment
variable (``password_env: NAME`` / ``token_env: NAME``).

    local: {ae_title: SYNTHVIEW, storage_port: 11113}
    nodes:
      hospital:  {ae_title: PACS, host: pacs.example.org, port: 104, retrieve: move, timeout_s: 10}
      secure:    {ae_title: PACS, host: pacs.example.org, port: 2762, tls: {ca: /etc/ssl/pacs-ca.pem,
                  cert: ~/.config/synthview/me.pem, key: ~/.config/synthview/me.key}}
      web:       {url: https://pacs.example.org/dicom-web, auth: basic, username: reader1, keyring: synthview-pacs}
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

DEFAULT_AE_TITLE = "SYNTHVIEW"
DEFAULT_STORAGE_PORT = 11113
DEFAULT_TIMEOUT_S = 10.0
_DIMSE = re.compile(r"^(?P<ae>[^@\s\\]{1,16})@(?P<host>[^:\s]+):(?P<port>\d{1,5})$")


class NodeError(ValueError):
    """A NODE that cannot be used (unknown name, malformed address, bad configuration)."""


@dataclass(frozen=True)
class TlsSettings:
    ca: str | None = None  # CA bundle to verify the server; None: the system's
    cert: str | None = None  # our client certificate (mutual TLS)
    key: str | None = None


@dataclass(frozen=True)
class Node:
    name: str
    kind: str  # "dimse" or "dicomweb"
    ae_title: str = ""
    host: str = ""
    port: int = 0
    url: str = ""
    retrieve: str = "get"  # DIMSE: "get" (C-GET) or "move" (C-MOVE to our storage SCP)
    timeout_s: float = DEFAULT_TIMEOUT_S
    tls: TlsSettings | None = None
    auth: str = ""  # DICOMweb: "", "basic" or "bearer"
    username: str = ""
    keyring_service: str = ""
    secret_env: str = ""

    def describe(self) -> str:
        if self.kind == "dimse":
            return f"{self.name} ({self.ae_title}@{self.host}:{self.port}, DIMSE{' over TLS' if self.tls else ''})"
        return f"{self.name} ({self.url}, DICOMweb{', ' + self.auth + ' auth' if self.auth else ''})"

    def secret(self) -> str | None:
        """The password or token, from the keyring or the environment; never from the file."""
        if self.keyring_service:
            try:
                import keyring
            except ImportError:
                raise NodeError(
                    f"node {self.name}: its secret is in the system keyring, but the 'keyring' package is not installed"
                ) from None
            value = keyring.get_password(self.keyring_service, self.username or self.name)
            if value is None:
                raise NodeError(f"node {self.name}: no secret for {self.username or self.name} in keyring {self.keyring_service}")
            return value
        if self.secret_env:
            value = os.environ.get(self.secret_env)
            if value is None:
                raise NodeError(f"node {self.name}: the environment variable {self.secret_env} (its secret) is not set")
            return value
        return None


@dataclass
class PacsConfig:
    ae_title: str = DEFAULT_AE_TITLE
    storage_port: int = DEFAULT_STORAGE_PORT
    cache_dir: str = ""
    cache_limit_gb: float = 20.0
    nodes: dict[str, Node] = field(default_factory=dict)
    path: str = ""


def default_config_path() -> Path:
    if env := os.environ.get("SYNTHVIEW_PACS_CONFIG"):
        return Path(env)
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "synthview" / "pacs.yaml"


def default_cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "synthview" / "pacs-cache"


_SECRET_KEYS = {"password", "token", "secret", "bearer_token"}


def load_config(path: str | Path | None = None) -> PacsConfig:
    """The configuration at ``path`` (default: :func:`default_config_path`); none there: defaults."""
    path = Path(path).expanduser() if path else default_config_path()
    if not path.exists():
        if path != default_config_path():
            raise NodeError(f"configuration {path} does not exist")
        return PacsConfig(path=str(path), cache_dir=str(default_cache_dir()))
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise NodeError(f"{path}: not a readable YAML configuration ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise NodeError(f"{path}: expected a mapping with 'local' and 'nodes'")
    local = data.get("local") or {}
    config = PacsConfig(
        ae_title=str(local.get("ae_title", DEFAULT_AE_TITLE)),
        storage_port=int(local.get("storage_port", DEFAULT_STORAGE_PORT)),
        cache_dir=str(Path(str(local.get("cache_dir", default_cache_dir()))).expanduser()),
        cache_limit_gb=float(local.get("cache_limit_gb", 20.0)),
        path=str(path),
    )
    for name, entry in (data.get("nodes") or {}).items():
        if not isinstance(entry, dict):
            raise NodeError(f"{path}: node {name}: expected a mapping")
        leaked = sorted(_SECRET_KEYS & set(entry))
        if leaked:
            raise NodeError(
                f"{path}: node {name} holds a secret in clear text ({', '.join(leaked)}); store it in the system keyring"
                " (keyring: SERVICE) or an environment variable (password_env: NAME) and remove it from the file"
            )
        config.nodes[str(name)] = _node_from(str(name), entry, path)
    return config


def _node_from(name: str, entry: dict, path: Path) -> Node:
    timeout = float(entry.get("timeout_s", DEFAULT_TIMEOUT_S))
    tls = entry.get("tls")
    tls_settings = None
    if tls:
        tls = tls if isinstance(tls, dict) else {}
        tls_settings = TlsSettings(*(str(Path(tls[k]).expanduser()) if tls.get(k) else None for k in ("ca", "cert", "key")))
    if entry.get("url"):
        url = str(entry["url"]).rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise NodeError(f"{path}: node {name}: url must start with http:// or https://")
        auth = str(entry.get("auth", "")).lower()
        if auth not in ("", "basic", "bearer"):
            raise NodeError(f"{path}: node {name}: auth must be basic or bearer")
        return Node(
            name, "dicomweb", url=url, timeout_s=timeout, auth=auth, username=str(entry.get("username", "")),
            keyring_service=str(entry.get("keyring", "")), secret_env=str(entry.get("password_env") or entry.get("token_env") or ""),
            tls=tls_settings,
        )  # fmt: skip
    try:
        port = int(entry["port"])
        ae, host = str(entry["ae_title"]), str(entry["host"])
    except (KeyError, TypeError, ValueError):
        raise NodeError(f"{path}: node {name}: a DIMSE node needs ae_title, host and port (or a url for DICOMweb)") from None
    retrieve = str(entry.get("retrieve", "get")).lower()
    if retrieve not in ("get", "move"):
        raise NodeError(f"{path}: node {name}: retrieve must be get or move")
    _check_ae(ae, f"{path}: node {name}")
    return Node(name, "dimse", ae_title=ae, host=host, port=port, retrieve=retrieve, timeout_s=timeout, tls=tls_settings)


def _check_ae(ae: str, where: str) -> None:
    if not 0 < len(ae) <= 16 or "\\" in ae or not ae.isprintable():
        raise NodeError(f"{where}: AE title {ae!r} must be 1-16 printable characters without a backslash")


def resolve_node(spec: str, config: PacsConfig) -> Node:
    """A configured name, ``AE@HOST:PORT`` or a DICOMweb URL -> Node."""
    if spec in config.nodes:
        return config.nodes[spec]
    if spec.startswith(("http://", "https://")):
        return Node(spec, "dicomweb", url=spec.rstrip("/"))
    match = _DIMSE.match(spec)
    if match:
        _check_ae(match["ae"], spec)
        port = int(match["port"])
        if not 0 < port < 65536:
            raise NodeError(f"{spec}: port must be 1-65535")
        return Node(spec, "dimse", ae_title=match["ae"], host=match["host"], port=port)
    known = ", ".join(sorted(config.nodes)) or "none configured"
    raise NodeError(
        f"unknown node {spec!r}: give a configured name ({known}), AE_TITLE@HOST:PORT or an http(s)://.../dicom-web URL"
    )
