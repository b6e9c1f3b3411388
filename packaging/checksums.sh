#!/usr/bin/env bash
# SHA-256 sums of release artefacts: writes SHA256SUMS in the folder of the first file (same
# format as sha256sum; check with `sha256sum -c SHA256SUMS`). Always run, signed or not.
#
#   bash packaging/checksums.sh dist/synthview_0.1.0_amd64.deb [MORE...]
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 FILE..." >&2; exit 2; }
dir=$(dirname "$1")
sum=(sha256sum)
command -v sha256sum >/dev/null || sum=(shasum -a 256)  # macOS
names=()
for file in "$@"; do
  [ -f "$file" ] || { echo "checksums: no file $file" >&2; exit 1; }
  [ "$(dirname "$file")" = "$dir" ] || { echo "checksums: $file is not in $dir" >&2; exit 1; }
  names+=("$(basename "$file")")
done
(cd "$dir" && "${sum[@]}" "${names[@]}" > SHA256SUMS)
echo "[checksums] $dir/SHA256SUMS:"
cat "$dir/SHA256SUMS"
