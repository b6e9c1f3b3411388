#!/usr/bin/env bash
# Build the frozen one-folder application (dist/synthview/) with PyInstaller, then the .deb on
# Debian/Ubuntu. Prints the build time and the sizes, and writes them to dist/build-figures.txt.
#
#   bash packaging/build.sh            # frozen app + .deb (Linux)
#   bash packaging/build.sh --no-deb   # frozen app only (what the Windows/macOS CI jobs use)
#
# Runs at low CPU priority (nice) because build machines are shared. SYNTHVIEW_CUDA=1 keeps the
# NVIDIA libraries of a CUDA torch in the bundle (see packaging/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO_ROOT=$(pwd)
PYTHON="${PYTHON:-$REPO_ROOT/.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON="$REPO_ROOT/.venv/Scripts/python.exe"  # Windows venv layout
make_deb=1
for arg in "$@"; do
  case "$arg" in
    --no-deb) make_deb=0 ;;
    *) echo "usage: $0 [--no-deb]" >&2; exit 2 ;;
  esac
done

# The demo study ships inside the bundle: build it first (idempotent, seconds when present).
"$PYTHON" scripts/build_demo_study.py --quiet

NICE=()
command -v nice >/dev/null && NICE=(nice -n 10)
started=$(date +%s)
rm -f dist/build-checks.txt
${NICE[@]+"${NICE[@]}"} "$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
  --workpath build/pyinstaller --distpath dist packaging/synthview.spec
build_seconds=$(( $(date +%s) - started ))

bundle_dir=dist/synthview
if [ "$(uname -s)" = Linux ]; then
  # No bundled library may need a newer glibc than the package's Depends: libc6 (>= X) declares.
  "$PYTHON" packaging/buildtools/glibc_floor.py "$bundle_dir" --control packaging/deb/control.in \
    | tee -a dist/build-checks.txt
fi
bundle_mib=$(du -sm "$bundle_dir" | cut -f1)
{
  echo "pyinstaller_build_seconds=$build_seconds"
  echo "bundle_mib=$bundle_mib"
} > dist/build-figures.txt
echo "[build] frozen app: $bundle_dir (${bundle_mib} MiB) in ${build_seconds} s"

if [ "$make_deb" = 1 ] && command -v dpkg-deb >/dev/null; then
  bash packaging/deb/build_deb.sh "$bundle_dir" dist
fi
cat dist/build-figures.txt
