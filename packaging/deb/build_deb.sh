#!/usr/bin/env bash
# Package the frozen one-folder app into a .deb (ar + tar: no fakeroot, no dpkg-deb needed).
#
#   bash packaging/deb/build_deb.sh [BUNDLE_DIR=dist/synthview] [OUT_DIR=dist]
#
# Layout: the bundle in /opt/synthview, /usr/bin/synthview -> /opt/synthview/synthview, the
# desktop entry, hicolor icons and MIME types (.dcm, .nii, .nii.gz) under /usr/share, the
# generated third-party notice as /usr/share/doc/synthview/copyright and changelog.gz.
# Writes OUT_DIR/synthview_<version>_<arch>.deb and appends deb_mib to OUT_DIR/build-figures.txt.
#
# The data archive is written with tar rather than dpkg-deb --build, so that it holds
# ./opt/synthview but not ./opt itself: dpkg would otherwise record the package as an owner of
# /opt and try to remove it on purge (preinst creates /opt on the rare system without one).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
BUNDLE_DIR="$(cd "${1:-$REPO_ROOT/dist/synthview}" && pwd)"
OUT_DIR="$(mkdir -p "${2:-$REPO_ROOT/dist}" && cd "${2:-$REPO_ROOT/dist}" && pwd)"
[ -x "$BUNDLE_DIR/synthview" ] || { echo "no frozen app at $BUNDLE_DIR (run packaging/build.sh)" >&2; exit 1; }

VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$REPO_ROOT/app/__init__.py")
ARCH=$(dpkg --print-architecture)
STAGE=$(mktemp -d "${TMPDIR:-/tmp}/synthview-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT

NOTICE="$BUNDLE_DIR/_internal/licenses/THIRD-PARTY-NOTICES.txt"
[ -s "$NOTICE" ] || { echo "no generated third-party notice at $NOTICE (the spec writes it)" >&2; exit 1; }
install -d "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
  "$STAGE/usr/share/mime/packages" "$STAGE/usr/share/icons/hicolor/256x256/apps" \
  "$STAGE/usr/share/icons/hicolor/scalable/apps" "$STAGE/usr/share/doc/synthview"
cp -a "$BUNDLE_DIR" "$STAGE/opt/synthview"
ln -s /opt/synthview/synthview "$STAGE/usr/bin/synthview"
install -m 644 "$HERE/synthview.desktop" "$STAGE/usr/share/applications/synthview.desktop"
install -m 644 "$HERE/synthview-mime.xml" "$STAGE/usr/share/mime/packages/synthview.xml"
install -m 644 "$REPO_ROOT/resources/icons/synthview.png" "$STAGE/usr/share/icons/hicolor/256x256/apps/synthview.png"
install -m 644 "$REPO_ROOT/resources/icons/synthview.svg" "$STAGE/usr/share/icons/hicolor/scalable/apps/synthview.svg"
install -m 644 "$NOTICE" "$STAGE/usr/share/doc/synthview/copyright"
gzip -9n -c "$HERE/changelog" > "$STAGE/usr/share/doc/synthview/changelog.gz"
for script in preinst postinst prerm postrm; do install -m 755 "$HERE/$script" "$STAGE/DEBIAN/$script"; done
# Directories 755 and files readable by all users, whatever the build machine's umask.
chmod -R u+rwX,go+rX,go-w "$STAGE"

installed_kib=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@INSTALLED_SIZE_KIB@/$installed_kib/" \
  "$HERE/control.in" > "$STAGE/DEBIAN/control"
grep -q "^ -- .*$VERSION\|^synthview ($VERSION)" "$HERE/changelog" \
  || { echo "packaging/deb/changelog has no entry for $VERSION" >&2; exit 1; }
# md5sums of every regular file (dpkg --verify, debsums).
(cd "$STAGE" && find opt usr -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum) > "$STAGE/DEBIAN/md5sums"
chmod 644 "$STAGE/DEBIAN/md5sums" "$STAGE/DEBIAN/control"

deb="$OUT_DIR/synthview_${VERSION}_${ARCH}.deb"
started=$(date +%s)
# zstd (level 3) compresses the ~1.6 GB bundle about 30x faster than xz for ~20% more size;
# dpkg reads it since Debian 12 / Ubuntu 21.10. DEB_COMPRESSION=xz for older systems.
compression="${DEB_COMPRESSION:-zstd}"
level=3
[ "$compression" = xz ] && level=6
ARCHIVE=$(mktemp -d "${TMPDIR:-/tmp}/synthview-ar.XXXXXX")
trap 'rm -rf "$STAGE" "$ARCHIVE"' EXIT
TAR=(tar --owner=0 --group=0 --numeric-owner --sort=name --format=gnu)
echo 2.0 > "$ARCHIVE/debian-binary"
(cd "$STAGE/DEBIAN" && "${TAR[@]}" -cf - ./*) | xz -6 > "$ARCHIVE/control.tar.xz"
if [ "$compression" = xz ]; then
  (cd "$STAGE" && "${TAR[@]}" -cf - ./usr ./opt/synthview) | nice -n 10 xz "-$level" -T0 > "$ARCHIVE/data.tar.xz"
else
  (cd "$STAGE" && "${TAR[@]}" -cf - ./usr ./opt/synthview) | nice -n 10 zstd -q "-$level" -T0 > "$ARCHIVE/data.tar.zst"
fi
rm -f "$deb"
(cd "$ARCHIVE" && ar rc "$deb" debian-binary control.tar.xz data.tar.*)
dpkg-deb --info "$deb" >/dev/null  # a readable package, or the build fails here
deb_seconds=$(( $(date +%s) - started ))
deb_mib=$(( ($(stat -c %s "$deb") + 1048575) / 1048576 ))
{
  echo "deb_build_seconds=$deb_seconds"
  echo "deb_mib=$deb_mib"
  echo "deb_installed_mib=$(( installed_kib / 1024 ))"
} >> "$OUT_DIR/build-figures.txt"
echo "[deb] $deb (${deb_mib} MiB, installs $(( installed_kib / 1024 )) MiB) in ${deb_seconds} s"
