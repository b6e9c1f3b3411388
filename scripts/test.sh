#!/usr/bin/env bash
# Run the whole test suite on this machine: installs what it needs first (idempotent),
# runs ruff and pytest under a virtual X display (VTK's interactor needs one; Qt runs offscreen).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export QT_QPA_PLATFORM=offscreen
export PYTHONDONTWRITEBYTECODE=1
.venv/bin/ruff check app tests main.py bench scripts plugins
exec xvfb-run -a -s "-screen 0 1920x1200x24" .venv/bin/python -m pytest -p no:cacheprovider "$@"
