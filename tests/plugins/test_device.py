"""Device choice: explicit override, a clear error for an absent device, a one-line description."""

from __future__ import annotations

import pytest
import torch

from app.plugins.device import choose_device, describe_device, is_out_of_memory
from app.plugins.errors import DeviceUnavailableError


def test_cpu_override_and_environment_default(monkeypatch):
    assert choose_device("cpu").type == "cpu"
    monkeypatch.setenv("SYNTHVIEW_DEVICE", "cpu")
    assert choose_device("auto").type == "cpu"
    assert describe_device("cpu").startswith("CPU (")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_absent_cuda_is_an_error_not_a_silent_fallback():
    with pytest.raises(DeviceUnavailableError, match="run with --device cpu"):
        choose_device("cuda")
    assert describe_device("cuda").startswith("unavailable:")


def test_unknown_device_and_oom_recognition():
    with pytest.raises(DeviceUnavailableError, match="unknown device 'tpu'"):
        choose_device("tpu")
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    import app.plugins.device as device

    monkeypatch.delenv("SYNTHVIEW_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "_mps_available", lambda: True)
    assert choose_device("auto").type == "mps" and choose_device("mps").type == "mps"
    assert choose_device("cpu").type == "cpu"  # the explicit override wins
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "_mps_available", lambda: False)
    assert choose_device("auto").type == "cpu"
    with pytest.raises(DeviceUnavailableError, match="Apple MPS was requested"):
        choose_device("mps")


def test_float64_volumes_are_converted_before_they_travel_to_apple_mps(monkeypatch):
    """MPS has no float64; the upload converts on the CPU first (checked by intercepting .to)."""
    import numpy as np

    from app.plugins import runtime

    sent = []
    original_to = torch.Tensor.to

    def record_to(tensor, *args, **kwargs):
        target = args[0] if args else kwargs.get("device")
        if isinstance(target, torch.device) and target.type == "mps":
            sent.append(tensor.dtype)
            return tensor  # stand in for the Apple GPU
        return original_to(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", record_to)
    volume = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    uploaded = runtime._upload(volume, torch.device("mps"))
    assert sent == [torch.float32] and uploaded.dtype == torch.float32
    runtime._upload(volume.astype(np.int16), torch.device("mps"))
    assert sent[-1] == torch.int16  # small integers travel as they are
