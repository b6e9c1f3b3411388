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
