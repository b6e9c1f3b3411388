#!/usr/bin/env bash
# Sign SynthView.app with the hardened runtime (Developer ID), notarise it and staple the ticket,
# or (given a .dmg) sign, notarise and staple the disk image. Driven by CI secrets:
#   MACOS_CERTIFICATE_P12_BASE64, MACOS_CERTIFICATE_PASSWORD   Developer ID Application cert
#   MACOS_SIGNING_IDENTITY     e.g. "Developer ID Application: Example Ltd (TEAMID1234)"
#   APPLE_ID, APPLE_TEAM_ID, APPLE_APP_PASSWORD                notarytool credentials
# Without them it says so and exits 0 (an unsigned build; Gatekeeper will warn users).
#   bash packaging/macos/sign_notarize.sh dist/SynthView.app      (build_dmg.sh, before the .dmg)
#   bash packaging/macos/sign_notarize.sh dist/SynthView-<version>.dmg
set -euo pipefail
target=${1:?usage: $0 SynthView.app|FILE.dmg}
if [ -z "${MACOS_CERTIFICATE_P12_BASE64:-}" ] || [ -z "${MACOS_SIGNING_IDENTITY:-}" ]; then
  echo "[sign] SKIPPED: no MACOS_CERTIFICATE_P12_BASE64 / MACOS_SIGNING_IDENTITY secrets; $target is not signed or notarised"
  exit 0
fi
RUNNER_TEMP=${RUNNER_TEMP:-$(mktemp -d)}
here=$(cd "$(dirname "$0")" && pwd)
notarise() {  # notarise FILE: submit, wait for Apple's verdict
  if [ -z "${APPLE_ID:-}" ] || [ -z "${APPLE_TEAM_ID:-}" ] || [ -z "${APPLE_APP_PASSWORD:-}" ]; then
    echo "[sign] notarisation SKIPPED: no APPLE_ID / APPLE_TEAM_ID / APPLE_APP_PASSWORD secrets"
    return 1
  fi
  xcrun notarytool submit "$1" --apple-id "$APPLE_ID" --team-id "$APPLE_TEAM_ID" \
    --password "$APPLE_APP_PASSWORD" --wait
}
keychain="$RUNNER_TEMP/synthview-signing.keychain-db"
if security list-keychains -d user | grep -q synthview-signing; then keychain_ready=1; else keychain_ready=0; fi
if [ "$keychain_ready" = 0 ]; then
keychain_password=$(uuidgen)
echo "$MACOS_CERTIFICATE_P12_BASE64" | base64 --decode > "$RUNNER_TEMP/cert.p12"
security create-keychain -p "$keychain_password" "$keychain"
security set-keychain-settings -lut 21600 "$keychain"
security unlock-keychain -p "$keychain_password" "$keychain"
security import "$RUNNER_TEMP/cert.p12" -k "$keychain" -P "${MACOS_CERTIFICATE_PASSWORD:-}" -T /usr/bin/codesign
security set-key-partition-list -S apple-tool:,apple: -k "$keychain_password" "$keychain" >/dev/null
security list-keychains -d user -s "$keychain" $(security list-keychains -d user | tr -d '"')
rm -f "$RUNNER_TEMP/cert.p12"
fi

if [ "${target%.dmg}" != "$target" ]; then
  codesign --force --timestamp --sign "$MACOS_SIGNING_IDENTITY" "$target"
  if notarise "$target"; then xcrun stapler staple "$target"; fi
  echo "[sign] $target signed"
  exit 0
fi
app=$target

# Inside out: every Mach-O file, then the bundle, all with the hardened runtime and a timestamp.
find "$app/Contents" -type f \( -name '*.dylib' -o -name '*.so' -o -perm -u+x \) -print0 |
  while IFS= read -r -d '' file; do
    if file "$file" | grep -q Mach-O; then
      codesign --force --timestamp --options runtime --entitlements "$here/entitlements.plist" \
        --sign "$MACOS_SIGNING_IDENTITY" "$file"
    fi
  done
codesign --force --timestamp --options runtime --entitlements "$here/entitlements.plist" \
  --sign "$MACOS_SIGNING_IDENTITY" "$app"
codesign --verify --deep --strict --verbose=2 "$app"

zip_path="$RUNNER_TEMP/SynthView-notarize.zip"
ditto -c -k --keepParent "$app" "$zip_path"
if notarise "$zip_path"; then
  xcrun stapler staple "$app"
  spctl --assess --type execute --verbose "$app"
fi
echo "[sign] $app signed"
