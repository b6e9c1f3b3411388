#!/usr/bin/env bash
# Detached OpenPGP signature of the .deb (FILE.deb.asc), from CI secrets:
#   SYNTHVIEW_GPG_PRIVATE_KEY  ASCII-armoured private key (the release signing key)
#   SYNTHVIEW_GPG_PASSPHRASE   its passphrase (may be empty)
# Without the key, it says so and exits 0: an unsigned build is still a valid test build,
# and SHA256SUMS (packaging/checksums.sh) is written either way.
#   gpg --verify synthview_<version>_amd64.deb.asc synthview_<version>_amd64.deb
set -euo pipefail
deb=${1:?usage: $0 FILE.deb}
if [ -z "${SYNTHVIEW_GPG_PRIVATE_KEY:-}" ]; then
  echo "[sign] SKIPPED: no SYNTHVIEW_GPG_PRIVATE_KEY secret; $deb is not signed (SHA256SUMS still written)"
  exit 0
fi
GNUPGHOME=$(mktemp -d)
export GNUPGHOME
trap 'rm -rf "$GNUPGHOME"' EXIT
printf '%s\n' "$SYNTHVIEW_GPG_PRIVATE_KEY" | gpg --batch --import
gpg --batch --yes --pinentry-mode loopback --passphrase "${SYNTHVIEW_GPG_PASSPHRASE:-}" \
  --armor --detach-sign --output "$deb.asc" "$deb"
gpg --batch --verify "$deb.asc" "$deb"
echo "[sign] $deb.asc"
