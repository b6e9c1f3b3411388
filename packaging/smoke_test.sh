#!/usr/bin/env bash
# Packaging smoke test: build the frozen app and the .deb, install it, run the INSTALLED app
# headless on the bundled demo study (version, plugin list, a GAN plugin run through the
# `synthesize` CLI, a viewer screenshot of original + synthesized), then uninstall and check
# that the package's files are gone and user data stayed in place. Exit 0 only if all passed.
#
#   bash packaging/smoke_test.sh               # build + install with dpkg (root) or dpkg -x
#   bash packaging/smoke_test.sh --skip-build  # reuse dist/synthview_*.deb from a previous build
#   bash packaging/smoke_test.sh --extract     # never touch the system: dpkg -x into a temp tree
#
# Slow (a full PyInstaller build: minutes), so CI runs it only when packaging/ changed.
# SMOKE_PLUGIN=NAME picks the plugin; by default each shipped plugin is tried until one runs.
# SMOKE_XVFB_STARTS=N: viewer starts under a fresh Xvfb each (default 50; 0 skips them).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO_ROOT=$(pwd)
skip_build=0
mode=dpkg
for arg in "$@"; do
  case "$arg" in
    --skip-build) skip_build=1 ;;
    --extract) mode=extract ;;
    *) echo "usage: $0 [--skip-build] [--extract]" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" -ne 0 ] || ! command -v dpkg >/dev/null; then mode=extract; fi

step() { echo "[smoke] $*"; }
fail() { echo "[smoke] FAILED: $*" >&2; exit 1; }

if [ "$skip_build" = 0 ]; then
  rm -f dist/synthview_*.deb
  bash packaging/build.sh
fi
deb=$(ls -t dist/synthview_*.deb 2>/dev/null | head -1 || true)
[ -n "$deb" ] || fail "no .deb in dist/ (run without --skip-build)"
step "package: $deb ($(du -h "$deb" | cut -f1))"
deb_info=$(dpkg-deb --info "$deb") || fail "control file unreadable"
grep -q "Package: synthview" <<<"$deb_info" || fail "not the synthview package"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/synthview-smoke.XXXXXX")
installed_by_us=0
cleanup() {
  if [ "$installed_by_us" = 1 ]; then dpkg --purge synthview >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$mode" = dpkg ]; then
  step "installing with dpkg -i"
  dpkg -i "$deb" >"$WORK/dpkg-install.log" 2>&1 || { cat "$WORK/dpkg-install.log"; fail "dpkg -i"; }
  installed_by_us=1
  ROOT=""
else
  step "extracting with dpkg -x into $WORK/root (no maintainer scripts run)"
  dpkg -x "$deb" "$WORK/root"
  ROOT="$WORK/root"
fi
APP="$ROOT/opt/synthview/synthview"
DEMO="$ROOT/opt/synthview/_internal/resources/demo/generated/demo_mr_t1"
for path in "$APP" "$ROOT/usr/share/applications/synthview.desktop" "$ROOT/usr/share/mime/packages/synthview.xml" \
  "$ROOT/usr/share/icons/hicolor/256x256/apps/synthview.png" "$DEMO"; do
  [ -e "$path" ] || fail "missing after install: $path"
done
if [ "$mode" = dpkg ]; then
  [ -x /usr/bin/synthview ] || fail "/usr/bin/synthview launcher missing"
  APP=/usr/bin/synthview  # what the desktop entry runs: the symlink must find the bundle
fi
# Package hygiene: /opt stays the system's, md5sums and changelog ship, the generated licence
# notice is the copyright file, nothing GPL-only or build-host-specific is bundled.
if [ "$mode" = dpkg ]; then
  if dpkg -S /opt >/dev/null 2>&1; then fail "the package owns /opt ($(dpkg -S /opt))"; fi
  dpkg --verify synthview || fail "dpkg --verify (md5sums) reports changed files"
  [ -s /var/lib/dpkg/info/synthview.md5sums ] || fail "no md5sums"
fi
DOC="$ROOT/usr/share/doc/synthview"
[ -s "$DOC/changelog.gz" ] && gzip -t "$DOC/changelog.gz" || fail "no changelog.gz"
grep -q "PySide6" "$DOC/copyright" && grep -q "GNU LESSER GENERAL PUBLIC LICENSE" "$DOC/copyright" \
  || fail "copyright is not the generated notice with Qt's LGPL text"
cmp -s "$DOC/copyright" "$ROOT/opt/synthview/_internal/licenses/THIRD-PARTY-NOTICES.txt" \
  || fail "the bundle's notice and the package's copyright differ"
for unwanted in 'libreadline.so*' 'libqgtk3.so' 'libgtk-3.so*' 'libstdc++.so*' 'libgcc_s.so*' 'libexpat.so*'; do
  found=$(find "$ROOT/opt/synthview" -name "$unwanted" | head -1)
  [ -z "$found" ] || fail "bundled although it must not be: $found"
done
step "package hygiene ok (/opt not owned, md5sums, changelog, generated notice, no readline/GTK/libstdc++)"
if command -v desktop-file-validate >/dev/null; then
  desktop-file-validate "$ROOT/usr/share/applications/synthview.desktop" || fail "desktop entry invalid"
fi

# The desktop now opens .dcm/.nii/.nii.gz with SynthView (postinst refreshed the caches).
if [ "$mode" = dpkg ] && command -v update-mime-database >/dev/null; then
  grep -q 'application/x-nifti-gz:\*\.nii\.gz' /usr/share/mime/globs2 || fail ".nii.gz not registered"
  grep -q 'application/dicom:\*\.dcm' /usr/share/mime/globs2 || fail ".dcm not registered"
fi
if [ "$mode" = dpkg ] && command -v update-desktop-database >/dev/null; then
  grep -q '^application/x-nifti=.*synthview.desktop' /usr/share/applications/mimeinfo.cache \
    || fail "desktop database does not list SynthView for NIfTI"
fi

# A clean user: its own HOME, no Python on PATH, no access to the repository's virtualenv.
export HOME="$WORK/home"
mkdir -p "$HOME"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
unset PYTHONPATH PYTHONHOME VIRTUAL_ENV
export QT_QPA_PLATFORM=offscreen
RUN=()
command -v xvfb-run >/dev/null && RUN=(xvfb-run -a -s "-screen 0 1280x1024x24")
cd "$WORK"

timed() {  # timed LABEL CMD...: run, print wall time, keep output in $WORK/LABEL.log
  local label=$1; shift
  local started ended
  started=$(date +%s%N)
  if ! "$@" >"$WORK/$label.log" 2>&1; then cat "$WORK/$label.log"; fail "$label: $*"; fi
  ended=$(date +%s%N)
  step "$label ok ($(( (ended - started) / 1000000 )) ms)"
}

timed version "$APP" --version
grep -q "SynthView" "$WORK/version.log" || fail "--version printed: $(cat "$WORK/version.log")"
timed plugins-list "$APP" plugins list
cat "$WORK/plugins-list.log"
timed help "$APP" --help
grep -q "synthview COMMAND --help" "$WORK/help.log" || fail "installed --help does not name the synthview command"
# No console (stdout/stderr closed, as for a windowed Windows executable): no AttributeError.
"$APP" info "$DEMO" >&- 2>&- || fail "info with stdout and stderr closed exited $?"
step "info without stdout/stderr ok"

# A GAN plugin run on the demo study through the frozen app's synthesize CLI.
synthesized=""
if [ -n "${SMOKE_PLUGIN:-}" ]; then
  candidates=("$SMOKE_PLUGIN")
else
  candidates=()
  # Image-to-image plugins first (a denoiser is the quickest); the DCGAN sampler takes no input.
  # A segmentation plugin (mr_t1_brain_tissue) makes label maps, not images: synthesize refuses it.
  for manifest in "$ROOT"/opt/synthview/_internal/plugins/*/{plugin.yaml,plugin.yml,plugin.toml}; do
    [ -e "$manifest" ] && ! grep -Eq '^task:[[:space:]]*"?segmentation' "$manifest" && candidates+=("$(dirname "$manifest")")
  done
  ordered=()
  for plugin in "${candidates[@]}"; do [[ "$plugin" == *dcgan* ]] || ordered+=("$plugin"); done
  for plugin in "${candidates[@]}"; do if [[ "$plugin" == *dcgan* ]]; then ordered+=("$plugin"); fi; done
  candidates=("${ordered[@]}")
fi
[ ${#candidates[@]} -gt 0 ] || fail "no shipped plugin found in the bundle"
for plugin in "${candidates[@]}"; do
  out="$WORK/synth_$(basename "$plugin").nii.gz"
  step "synthesize with $(basename "$plugin")"
  if "$APP" synthesize --plugin "$plugin" "$DEMO" "$out" --device cpu >"$WORK/synthesize.log" 2>&1 && [ -s "$out" ]; then
    synthesized="$out"
    break
  fi
  tail -5 "$WORK/synthesize.log"
done
[ -n "$synthesized" ] || fail "no shipped plugin ran through 'synthesize'"
step "synthesized: $synthesized"

timed screenshot ${RUN[@]+"${RUN[@]}"} "$APP" view "$DEMO" --synthesized "$synthesized" --layout compare \
  --screenshot "$WORK/screenshot.png"
[ -s "$WORK/screenshot.png" ] || fail "no screenshot written"
mkdir -p "$REPO_ROOT/dist"
cp "$WORK/screenshot.png" "$REPO_ROOT/dist/smoke-screenshot.png"
step "screenshot: dist/smoke-screenshot.png"

# Starts under a fresh X server each time (Xvfb without -noreset resets when its last client
# leaves; a display probe that disconnected first made Qt's connection fail, exit 134).
starts=${SMOKE_XVFB_STARTS:-50}
if [ "$starts" -gt 0 ] && command -v Xvfb >/dev/null; then
  ok=0
  started=$(date +%s)
  for attempt in $(seq "$starts"); do
    number=$((400 + attempt % 100))
    while [ -e "/tmp/.X11-unix/X$number" ] || [ -e "/tmp/.X$number-lock" ]; do number=$((number + 100)); done
    Xvfb ":$number" -screen 0 1024x768x24 -nolisten tcp >/dev/null 2>&1 &
    xvfb_pid=$!
    for _ in $(seq 200); do [ -e "/tmp/.X11-unix/X$number" ] && break; sleep 0.05; done
    rm -f "$WORK/fresh.png"
    if env -u QT_QPA_PLATFORM DISPLAY=":$number" "$APP" view "$DEMO" --screenshot "$WORK/fresh.png" --size 400x300 \
      >"$WORK/fresh-xvfb.log" 2>&1 && [ -s "$WORK/fresh.png" ]; then
      ok=$((ok + 1))
    else
      echo "[smoke] start $attempt under a fresh Xvfb failed:"; tail -3 "$WORK/fresh-xvfb.log"
    fi
    kill "$xvfb_pid"; wait "$xvfb_pid" 2>/dev/null || true
  done
  step "starts under a fresh Xvfb: $ok of $starts ($(( $(date +%s) - started )) s)"
  echo "fresh_xvfb_starts=$ok/$starts" >> "$REPO_ROOT/dist/build-checks.txt"
  [ "$ok" = "$starts" ] || fail "the viewer failed to start under a fresh Xvfb $((starts - ok)) times of $starts"
fi

# User data the app or the user created must survive the uninstall.
mkdir -p "$HOME/.config/SynthView" && echo keep > "$HOME/.config/SynthView/user-data-marker"
if [ "$mode" = dpkg ]; then
  step "uninstalling with dpkg --purge (remove, then purge: the strongest uninstall)"
  dpkg --purge synthview >"$WORK/dpkg-remove.log" 2>&1 || { cat "$WORK/dpkg-remove.log"; fail "dpkg --purge"; }
  installed_by_us=0
  for path in /opt/synthview /usr/bin/synthview /usr/share/applications/synthview.desktop \
    /usr/share/mime/packages/synthview.xml; do
    [ ! -e "$path" ] || fail "still there after uninstall: $path"
  done
else
  rm -rf "$WORK/root"
fi
[ -f "$HOME/.config/SynthView/user-data-marker" ] || fail "user data removed by uninstall"
step "uninstall left user data in place"
echo "[smoke] PASSED"
