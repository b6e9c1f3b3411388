"""Where the application's own files are: the icon and the licences, beside the package (in the
frozen application, under ``sys._MEIPASS``, laid out the same way)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # sys._MEIPASS in the frozen app
LICENSES_PATH = REPO_ROOT / "packaging" / "LICENSES.md"
ICON_PATH = REPO_ROOT / "resources" / "icons" / "synthview.png"
