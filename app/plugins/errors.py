"""Errors a plugin can raise, each with a message a radiologist or researcher can act on.

All derive from ``PluginError`` so the CLI and the panel can show ``str(error)`` and stop,
instead of printing a traceback.
"""

from __future__ import annotations


class PluginError(Exception):
    """Anything wrong with a plugin or its run; ``str()`` is the message to show."""


class ManifestError(PluginError):
    """The manifest is missing, unreadable or does not follow the schema."""


class PluginNotFoundError(PluginError):
    """No discovered plugin has that name and no folder exists at that path."""


class WeightsHashMismatchError(PluginError):
    """The weights file is not the one the manifest vouches for."""


class UnsafeWeightsError(PluginError):
    """The weights file holds Python objects that would run code when loaded."""


class WeightsFormatError(PluginError):
    """The weights file cannot be read as a state dict, TorchScript or ONNX model."""


class ArchitectureMismatchError(PluginError):
    """The weights do not fit the declared architecture key for key and shape for shape."""


class InputMismatchError(PluginError):
    """The input volume is not what the plugin was made for (modality, shape)."""


class DeviceUnavailableError(PluginError):
    """An explicitly requested device (cuda, mps) is not present."""


class SynthesisCancelled(PluginError):
    """The user cancelled a run; nothing was produced."""


def error_summary(error: BaseException) -> str:
    """One line saying what went wrong in a plugin's own code.

    A TorchScript module's error starts with 'The following operation failed in the TorchScript
    interpreter.' and a traceback through the scripted code; the cause is on its last line.
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    return lines[-1] if "TorchScript interpreter" in lines[0] else lines[0]
