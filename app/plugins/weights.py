"""Weights are data: hash check, then a loader that cannot run code.

* ``.pth``/``.pt`` state dicts: ``torch.load(weights_only=True)``; a pickle that names Python
  callables (the way a malicious checkpoint runs code) is refused with a clear message.
* TorchScript archives: ``torch.jit.load`` (no arbitrary Python unpickling).
* ONNX models: onnxruntime sessions.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import warnings
import zipfile
from pathlib import Path

import torch

from app.plugins.errors import UnsafeWeightsError, WeightsFormatError, WeightsHashMismatchError

_CHUNK_BYTES = 1 << 20


def sha256_of_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: str | Path, expected_sha256: str) -> str:
    """Return the file's SHA-256, raising if it differs from the manifest's."""
    actual = sha256_of_file(path)
    if actual.lower() != expected_sha256.lower():
        raise WeightsHashMismatchError(
            f"{Path(path).name}: SHA-256 mismatch — the manifest expects {expected_sha256.lower()}"
            f" but the file has {actual}. The weights were changed or replaced; refusing to load them."
            " If you retrained the model on purpose, put the new hash in the manifest."
        )
    return actual


def is_torchscript_archive(path: str | Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(
                name.endswith("/constants.pkl") or name == "constants.pkl" for name in archive.namelist()
            )
    except (zipfile.BadZipFile, OSError):
        return False


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain ``{name: tensor}`` state dict from a checkpoint, loaded as data only.

    Accepts the bare state dict the pix2pix/CycleGAN code saves, a ``{"state_dict": ...}`` or
    ``{"model": ...}`` wrapper, and strips a DataParallel ``module.`` prefix.
    """
    path = Path(path)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if _is_corrupt_pickle(error):
            raise WeightsFormatError(
                f"{path.name}: not a readable PyTorch checkpoint (corrupt or another format)"
            ) from error
        raise UnsafeWeightsError(
            f"{path.name}: refused — the file contains Python objects that would run code when"
            " loaded, not just tensors. SynthView loads weights as data only. Re-save the generator"
            " with torch.save(model.state_dict(), path), or export TorchScript/ONNX."
            f" (Loader said: {_first_line(error)})"
        ) from error
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as error:
        raise WeightsFormatError(
            f"{path.name}: not a readable PyTorch checkpoint ({_first_line(error)})"
        ) from error
    for wrapper_key in ("state_dict", "model", "netG", "generator"):
        if isinstance(loaded, dict) and isinstance(loaded.get(wrapper_key), dict):
            loaded = loaded[wrapper_key]
            break
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsFormatError(
            f"{path.name}: expected a state dict of tensors, found {type(loaded).__name__}"
        )
    if loaded and all(key.startswith("module.") for key in loaded):
        loaded = {key[len("module.") :]: value for key, value in loaded.items()}
    return dict(loaded)


def load_torchscript(path: str | Path) -> torch.jit.ScriptModule:
    path = Path(path)
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated upstream but still the portable format
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError, OSError) as error:
        raise WeightsFormatError(
            f"{path.name}: not a readable TorchScript archive ({_first_line(error)})"
        ) from error
    return module.eval()


def onnx_session(path: str | Path, device_type: str = "cpu"):
    """An onnxruntime session; CUDA provider first on a CUDA device when onnxruntime has it."""
    import onnxruntime

    path = Path(path)
    available = onnxruntime.get_available_providers()
    providers = ["CPUExecutionProvider"]
    if device_type == "cuda" and "CUDAExecutionProvider" in available:
        providers.insert(0, "CUDAExecutionProvider")
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as error:  # onnxruntime raises its own exception types
        raise WeightsFormatError(f"{path.name}: not a readable ONNX model ({_onnx_reason(error)})") from error


def _onnx_reason(error: BaseException) -> str:
    """onnxruntime's message without its C++ source location and function signature, which
    otherwise fill the line before the reason (an opset newer than it supports, an unknown op)."""
    text = re.sub(r"/onnxruntime_src/\S+:\d+ [^()]*\([^()]*\)\s*", "", " ".join(str(error).split()))
    text = text.replace("[ONNXRuntimeError] : ", "").strip()
    return text[:600] if text else type(error).__name__


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__


def _is_corrupt_pickle(error: BaseException) -> bool:
    """A file that is not a pickle at all, as opposed to one naming forbidden callables."""
    text = str(error)
    return "GLOBAL" not in text and ("Unsupported operand" in text or "invalid load key" in text)


def _offending_global(error: BaseException) -> str:
    for line in str(error).splitlines():
        if "GLOBAL" in line:
            return line.strip()[:300]
    return _first_line(error)
