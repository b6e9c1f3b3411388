"""Deterministic de-identified UIDs: a keyed hash of the original UID with a per-installation secret.

Two exports of one study, on one installation, must land in one de-identified study, and an SR
or SEG de-identified on its own must refer to the de-identified images: the replacement of a UID
therefore depends only on the UID and a secret, never on the order of calls. The secret (32
random bytes) is created once in the user's configuration folder, readable by its owner only
(0600); without it nobody can tell which original UID a pseudonym stands for.

A pseudonym is ``2.25.<128-bit integer>``: 96 bits of HMAC-SHA256 of the UID, then 32 bits that
authenticate those 96 with the same key. Mapping is idempotent: a UID that already is one of
this installation's pseudonyms is kept, so de-identifying an SR that refers to de-identified
images leaves its references resolving.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sys
from pathlib import Path

SECRET_FILE = "deidentify.key"
_PREFIX = "2.25."


class SecretError(OSError):
    """The installation secret cannot be read or created (message says where and why)."""


def config_dir() -> Path:
    """``SYNTHVIEW_CONFIG_DIR`` if set, else the platform's per-user configuration folder."""
    configured = os.environ.get("SYNTHVIEW_CONFIG_DIR")
    if configured:
        return Path(configured).expanduser()
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "SynthView"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "SynthView"
    return Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config")) / "synthview"


def installation_secret(folder: Path | None = None) -> bytes:
    """The secret, created on first use (atomically: two processes starting together agree)."""
    path = (folder or config_dir()) / SECRET_FILE
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{SECRET_FILE}.{os.getpid()}.partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(partial, path)  # fails if another process made it first: use theirs
        except FileExistsError:
            pass
        finally:
            partial.unlink(missing_ok=True)
        return _read(path)
    except OSError as error:
        raise SecretError(
            f"cannot create the de-identification secret {path} ({error.strerror or error})"
        ) from None


def _read(path: Path) -> bytes:
    if os.name == "posix" and path.stat().st_mode & 0o077:
        path.chmod(0o600)  # someone widened it: the key is the owner's alone
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise SecretError(f"the de-identification secret {path} is damaged; move it away to make a new one")
    return key


class UidPseudonyms:
    """Maps original UIDs to this installation's pseudonyms (a dict-like cache of the map)."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret if secret is not None else installation_secret()
        self._cache: dict[str, str] = {}

    def __call__(self, uid: str) -> str:
        uid = str(uid).strip("\x00 ")
        if not uid or self.is_pseudonym(uid):
            return uid
        mapped = self._cache.get(uid)
        if mapped is None:
            body = hmac.new(self._secret, uid.encode("ascii", "replace"), hashlib.sha256).digest()[:12]
            mapped = _PREFIX + str(int.from_bytes(body + self._tag(body), "big"))
            self._cache[uid] = mapped
        return mapped

    def is_pseudonym(self, uid: str) -> bool:
        """True for a UID this installation's key produced (it is not mapped again)."""
        if not uid.startswith(_PREFIX) or not uid[len(_PREFIX) :].isdigit():
            return False
        number = int(uid[len(_PREFIX) :])
        if number >= 1 << 128:
            return False
        raw = number.to_bytes(16, "big")
        return hmac.compare_digest(raw[12:], self._tag(raw[:12]))

    def _tag(self, body: bytes) -> bytes:
        return hmac.new(self._secret, b"pseudonym:" + body, hashlib.sha256).digest()[:4]
