"""Reading a killed child's stdout completely: raw bytes from the pipe (no Python buffer that a
later communicate() would bypass), to EOF after the kill, whole lines only."""

from __future__ import annotations

import os
import subprocess
import time


def read_until(child: subprocess.Popen, marker: bytes, timeout_s: float = 60.0) -> bytes:
    """Raw bytes from the child's stdout until ``marker`` has arrived (or the child ended)."""
    data = b""
    deadline = time.monotonic() + timeout_s
    while marker not in data and time.monotonic() < deadline:
        chunk = os.read(child.stdout.fileno(), 65536)
        if not chunk:
            break
        data += chunk
    return data


def read_to_eof(child: subprocess.Popen) -> bytes:
    chunks = []
    while chunk := os.read(child.stdout.fileno(), 65536):
        chunks.append(chunk)
    child.stdout.close()
    return b"".join(chunks)


def confirmations(output: bytes) -> list[str]:
    """Item ids of every whole CONFIRMED line. The kill can cut the last line short ("CONFIRMED"
    with no id, or a partial id with no newline); an answer whose confirmation was not printed in
    full was never confirmed."""
    lines = output.split(b"\n")[:-1]  # the part after the last newline is not a whole line
    return [
        line.split()[1].decode() for line in lines if line.startswith(b"CONFIRMED") and len(line.split()) == 2
    ]
