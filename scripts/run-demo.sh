#!/usr/bin/env bash
# Install SynthView (idempotent) and open the viewer on the bundled demo study.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python main.py view resources/demo/generated/demo_mr_t1 "$@"
