"""PyInstaller runtime hook: let the frozen app use an already installed CUDA torch.

The installers bundle a CPU-only torch. On a workstation with an NVIDIA GPU and a CUDA build of
torch already installed for Python 3.11 (a venv or conda environment), point SynthView at that
environment's site-packages once, and the frozen app imports torch (and its NVIDIA libraries)
from there instead, keeping every other bundled package:

- environment variable ``SYNTHVIEW_TORCH_SITE_PACKAGES=/path/to/lib/python3.11/site-packages``, or
- the first line of ``~/.config/SynthView/external-torch.txt``
  (``%APPDATA%\\SynthView\\external-torch.txt`` on Windows).

The folder is used only if it holds a torch built for this Python (``torch/_C.cpython-311*`` or
``_C.cp311*``); otherwise a warning goes to stderr and the bundled CPU torch is used.
Help > About shows the device the plugins will run on (e.g. "CUDA: NVIDIA RTX A6000").
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from pathlib import Path

ENV_VARIABLE = "SYNTHVIEW_TORCH_SITE_PACKAGES"
CONFIG_FILE_NAME = "external-torch.txt"
# Only these top-level packages come from the external environment; everything else (numpy,
# sympy, ...) stays the bundled, tested version.
EXTERNAL_PACKAGES = frozenset({"torch", "torchgen", "functorch", "triton", "nvidia"})


class ExternalTorchFinder:
    """Finds EXTERNAL_PACKAGES in one external site-packages folder, before the bundle does.
    Submodules follow their package's ``__path__``, so they come from the same place."""

    def __init__(self, site_packages: Path) -> None:
        self.site_packages = str(site_packages)

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in EXTERNAL_PACKAGES:
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, [self.site_packages])


def config_file(environ: dict[str, str], home: Path, platform: str) -> Path:
    """Where the one-line pointer to an external torch lives on this platform."""
    if platform == "win32":
        return Path(environ.get("APPDATA", home / "AppData" / "Roaming")) / "SynthView" / CONFIG_FILE_NAME
    base = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    return base / "SynthView" / CONFIG_FILE_NAME


def external_torch_site_packages(
    environ: dict[str, str], home: Path, platform: str, python_tag: str
) -> tuple[Path | None, str | None]:
    """(site-packages to put first on sys.path, or None; a warning to print, or None)."""
    requested = environ.get(ENV_VARIABLE, "").strip()
    if not requested:
        pointer = config_file(environ, home, platform)
        if pointer.is_file():
            lines = pointer.read_text(encoding="utf-8").strip().splitlines()
            requested = lines[0].strip() if lines else ""
    if not requested:
        return None, None
    site_packages = Path(requested).expanduser()
    torch_dir = site_packages / "torch"
    if not (torch_dir / "__init__.py").is_file():
        return None, f"SynthView: no torch in {site_packages}; using the bundled CPU torch"
    if not any(torch_dir.glob(f"_C.cpython-{python_tag}*")) and not any(
        torch_dir.glob(f"_C.cp{python_tag}*")
    ):
        return None, (
            f"SynthView: the torch in {site_packages} is not built for Python "
            f"{python_tag[0]}.{python_tag[1:]}; using the bundled CPU torch"
        )
    return site_packages, None


def _apply() -> None:
    python_tag = f"{sys.version_info.major}{sys.version_info.minor}"
    site_packages, warning = external_torch_site_packages(
        dict(os.environ), Path.home(), sys.platform, python_tag
    )
    if warning:
        print(warning, file=sys.stderr)
    if site_packages is not None:
        sys.meta_path.insert(0, ExternalTorchFinder(site_packages))


if getattr(sys, "frozen", False):
    _apply()
