#!/usr/bin/env bash
# Install everything SynthView needs on a fresh Debian/Ubuntu machine, idempotently:
# system libraries for Qt/Xvfb/PostgreSQL and the DICOM reference tools, a virtual environment
# in .venv with the pinned Python packages, and the demo study built from registry data.
# Re-running it is cheap: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(
  python3-venv xvfb xauth
  libegl1 libgl1 libglib2.0-0 libfontconfig1 libdbus-1-3 libxkbcommon0 libxkbcommon-x11-0
  libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0
  libxcb-cursor0 libxcb-shape0 libxcb-xkb1 libxcb-randr0 libxrender1 libxi6
  postgresql dicom3tools dcmtk orthanc orthanc-dicomweb
  mricron-data
  desktop-file-utils
  libstdc++6 libgcc-s1 libexpat1 zstd
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[install] system packages: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[install] creating .venv"
  "$PYTHON" -m venv .venv
fi

# Reinstall the Python packages only when requirements.txt changed since the last install.
stamp=".venv/.requirements-sha256"
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[install] Python packages (requirements.txt)"
  .venv/bin/python -m pip install -q --upgrade pip
  # torch==2.13.0 is the CPU build here; see README for the CUDA build on GPU workstations.
  # piq (FSIM/GMSD), lpips and pytorch-fid (the tests' LPIPS and FID references) declare torchvision, whose PyPI wheels
  # are CUDA builds that do not load beside the CPU torch (and a newer one would pull a newer
  # torch): they go in without their dependencies; the app imports only piq's torch-only modules
  # (app/plugins/piq_metrics.py), the tests give lpips and pytorch-fid a stand-in torchvision.
  NO_DEPS='^(piq|lpips|pytorch-fid)=='
  .venv/bin/python -m pip install -q -r <(grep -Ev "$NO_DEPS" requirements.txt)
  .venv/bin/python -m pip install -q --no-deps $(grep -E "$NO_DEPS" requirements.txt)
  echo "$want" > "$stamp"
fi

.venv/bin/python scripts/build_demo_study.py --quiet
# The demo decoded into this user's viewer cache (a check of file stats when it is there already,
# 0.4 s): the viewer's first start on it reads the cache, as every later one does.
.venv/bin/python main.py cache --add resources/demo/generated/demo_mr_t1 --quiet \
  || echo "[install] the demo study is not cached: the viewer decodes it at its first start"
