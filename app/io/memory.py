"""Is there memory for what a file declares? Asked before allocating, so that a header claiming
65535 x 65535 pixels is refused with a message naming the file and the size, not a MemoryError."""

from __future__ import annotations

try:
    import resource
except ImportError:  # Windows: no address-space limits to read
    resource = None

from app.io.dicom_checks import format_bytes
from app.io.errors import LoadError


def available_memory_bytes() -> int:
    """Free memory (MemAvailable) or the process's address-space limit, whichever is smaller."""
    available = 1 << 62
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if resource is not None:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            available = min(available, soft)
    return available


def check_fits_in_memory(source: str, declared: str, nbytes: int) -> None:
    """``LoadError`` naming ``source`` and what it declares when ``nbytes`` would not fit."""
    available = available_memory_bytes()
    if nbytes > available:
        raise LoadError(
            f"{source}: declares {declared}, which needs {format_bytes(nbytes)}; "
            f"only {format_bytes(available)} of memory is available"
        )
