#!/usr/bin/env bash
# macOS: build dist/SynthView.app (PyInstaller BUNDLE in packaging/synthview.spec) and pack it
# into dist/SynthView-<version>.dmg with a drag-to-Applications link. Runs on macOS only
# (hdiutil); CI job "macos" in .github/workflows/installers.yml. Apple silicon (arm64) only.
# With the signing secrets in the environment (packaging/macos/sign_notarize.sh) the app is
# signed with the hardened runtime and notarised before it goes into the .dmg, then the .dmg
# too; without them both stay unsigned and the script says so.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(uname -s)" = Darwin ] || { echo "build_dmg.sh runs on macOS only (hdiutil)" >&2; exit 1; }
bash packaging/build.sh --no-deb
VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' app/__init__.py)
APP=dist/SynthView.app
[ -d "$APP" ] || { echo "no $APP (the spec builds it on macOS)" >&2; exit 1; }
bash packaging/macos/sign_notarize.sh "$APP"
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
cp "$(find "$APP/Contents" -name THIRD-PARTY-NOTICES.txt | head -1)" "$STAGE/THIRD-PARTY-NOTICES.txt"
dmg="dist/SynthView-${VERSION}.dmg"
rm -f "$dmg"
hdiutil create -volname "SynthView ${VERSION}" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$dmg"
bash packaging/macos/sign_notarize.sh "$dmg"
echo "dmg_mib=$(( ($(stat -f %z "$dmg") + 1048575) / 1048576 ))" >> dist/build-figures.txt
echo "[dmg] $dmg"
