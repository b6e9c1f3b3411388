"""Which device runs a generator: CUDA, Apple MPS or CPU, with an explicit override.

``auto`` (the default) takes CUDA, then MPS, then CPU; the environment variable
``SYNTHVIEW_DEVICE`` replaces ``auto``. Asking for a device that is absent is an error, not a
silent fallback, so a user who typed ``--device cuda`` knows the GPU was not used.
"""

from __future__ import annotations

import os

import torch

from app.plugins.errors import DeviceUnavailableError

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def choose_device(preference: str | None = "auto") -> torch.device:
    preference = (preference or "auto").lower()
    if preference == "auto":
        preference = os.environ.get("SYNTHVIEW_DEVICE", "auto").lower() or "auto"
    if preference.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                "CUDA was requested but no CUDA GPU is usable (torch built without CUDA, or no driver);"
                " run with --device cpu"
            )
        return torch.device(preference)
    if preference == "mps":
        if not _mps_available():
            raise DeviceUnavailableError(
                "Apple MPS was requested but is not available; run with --device cpu"
            )
        return torch.device("mps")
    if preference == "cpu":
        return torch.device("cpu")
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    raise DeviceUnavailableError(f"unknown device {preference!r}; choose one of {', '.join(DEVICE_CHOICES)}")


def device_report(preference: str | None = "auto") -> dict[str, str]:
    """What a plugin would run on, as plain data: ``device`` (e.g. 'CUDA: NVIDIA H100 (79.1 GiB)',
    'CPU (8 threads)' or 'unavailable: ...') and ``torch`` (its version). The viewer asks for it
    in a child process (``python -m app.plugins.device`` prints it as JSON), so the window itself
    never imports torch."""
    try:
        device = choose_device(preference)
    except DeviceUnavailableError as error:
        return {"device": f"unavailable: {error}", "torch": torch.__version__}
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device.index or 0)
        name = f"CUDA: {properties.name} ({properties.total_memory / 2**30:.1f} GiB)"
    elif device.type == "mps":
        name = "Apple MPS"
    else:
        name = f"CPU ({torch.get_num_threads()} threads)"
    return {"device": name, "torch": torch.__version__}


def describe_device(preference: str | None = "auto") -> str:
    """One line for the About dialog and status bar, e.g. 'CUDA: NVIDIA H100 (79.1 GiB), torch 2.13.0'."""
    report = device_report(preference)
    if report["device"].startswith("unavailable:"):
        return report["device"]
    return f"{report['device']}, torch {report['torch']}"


def is_out_of_memory(error: BaseException) -> bool:
    """True for a GPU (CUDA or MPS) allocation failure, whatever exception type carries it."""
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def release_cached_memory(device: torch.device) -> None:
    if device.type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif device.type == "mps" and _mps_available():
        torch.mps.empty_cache()


if __name__ == "__main__":  # the viewer's device check (app.ui.device_status) runs this as a child
    import json

    print(json.dumps(device_report()))
