"""Find plugins: the repository's ``plugins/`` folder, a per-user folder, Python entry points.

Discovery reads manifests only (YAML + schema); it never imports torch, so listing plugins is
cheap and the application starts without it. An entry point in the group ``synthview.plugins``
names an object that is a plugin folder path, or a callable returning one (or a list of them).
A broken plugin is listed with its error instead of hiding the others.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from app.plugins.errors import ManifestError, PluginNotFoundError
from app.plugins.manifest import MANIFEST_NAMES, PluginManifest, load_manifest

ENTRY_POINT_GROUP = "synthview.plugins"
REPO_PLUGIN_DIR = Path(__file__).resolve().parents[2] / "plugins"


def user_plugin_dirs() -> list[Path]:
    """``SYNTHVIEW_PLUGIN_PATH`` (os.pathsep-separated) if set, else the platform's data folder."""
    configured = os.environ.get("SYNTHVIEW_PLUGIN_PATH")
    if configured:
        return [Path(p).expanduser() for p in configured.split(os.pathsep) if p]
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
        return [base / "SynthView" / "plugins"]
    if sys.platform == "darwin":
        return [Path.home() / "Library" / "Application Support" / "SynthView" / "plugins"]
    base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return [base / "synthview" / "plugins"]


@dataclass(frozen=True)
class DiscoveredPlugin:
    folder: Path
    source: str  # "repository", "user", "entry point NAME", "path"
    manifest: PluginManifest | None
    error: str = ""

    @property
    def name(self) -> str:
        return self.manifest.name if self.manifest else self.folder.name


def _has_manifest(folder: Path) -> bool:
    return any((folder / name).is_file() for name in MANIFEST_NAMES)


def _plugin_folders(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(child for child in root.iterdir() if child.is_dir() and _has_manifest(child))


def _read(folder: Path, source: str) -> DiscoveredPlugin:
    try:
        return DiscoveredPlugin(folder, source, load_manifest(folder))
    except ManifestError as error:
        return DiscoveredPlugin(folder, source, None, str(error))


def _entry_point_plugins() -> list[DiscoveredPlugin]:
    found = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        source = f"entry point {entry.name}"
        try:
            target = entry.load()
            target = target() if callable(target) else target
        except Exception as error:  # a third-party package's import failure must not stop discovery
            found.append(DiscoveredPlugin(Path(entry.name), source, None, f"{source} (failed: {error})"))
            continue
        targets = target if isinstance(target, list | tuple) else [target]
        found += [_read(Path(folder), source) for folder in targets]
    return found


def discover_plugins(
    include_repository: bool = True, include_user: bool = True, include_entry_points: bool = True
) -> list[DiscoveredPlugin]:
    """Every plugin found, repository first; the first of two with the same name wins."""
    found: list[DiscoveredPlugin] = []
    if include_repository:
        found += [_read(folder, "repository") for folder in _plugin_folders(REPO_PLUGIN_DIR)]
    if include_user:
        for root in user_plugin_dirs():
            found += [_read(folder, "user") for folder in _plugin_folders(root)]
    if include_entry_points:
        found += _entry_point_plugins()
    unique: dict[str, DiscoveredPlugin] = {}
    for plugin in found:
        unique.setdefault(plugin.name, plugin)
    return list(unique.values())


def find_plugin(name_or_folder: str | Path) -> PluginManifest:
    """A plugin by folder/manifest path (no installation needed) or by discovered name."""
    path = Path(name_or_folder).expanduser()
    if path.exists():
        return load_manifest(path)
    plugins = discover_plugins()
    for plugin in plugins:
        if plugin.name == str(name_or_folder):
            if plugin.manifest is None:
                raise ManifestError(plugin.error)
            return plugin.manifest
    names = ", ".join(p.name for p in plugins if p.manifest) or "none"
    raise PluginNotFoundError(
        f"no plugin named {str(name_or_folder)!r} and no such folder; available plugins: {names}"
    )
