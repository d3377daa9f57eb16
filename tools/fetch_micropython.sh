#!/usr/bin/env bash
# Fetch MicroPython v1.25.0 source into $1 (default build/micropython), once.
# Order: an existing checkout named by MICROPY_DIR is used as is (nothing fetched);
# else a shallow git clone of the v1.25.0 tag; if that fails (no internet), Debian's
# source package micropython=1.25.0+ds-1, from the apt archive this machine already uses.
set -euo pipefail

dest=${1:-build/micropython}
version=1.25.0

if [ -f "$dest/py/mpconfig.h" ]; then
    exit 0
fi
mkdir -p "$(dirname "$dest")"
tmp=$(cd "$(dirname "$dest")" && mktemp -d "$PWD/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "fetching MicroPython v$version into $dest"
if timeout 120 git clone -q --depth 1 -b "v$version" https://github.com/micropython/micropython "$tmp/src" 2>/dev/null; then
    mv "$tmp/src" "$dest"
    exit 0
fi

echo "git clone failed; using Debian's source package micropython=$version+ds-1"
. "$(dirname "$0")/debian_trixie_apt.sh"
trixie_apt "$tmp" deb-src "set MICROPY_DIR to a MicroPython v$version checkout"
(cd "$tmp/dl" && apt-get "${apt_opts[@]}" -qq source --download-only "micropython=$version+ds-1")
tar -xf "$tmp"/dl/micropython_"$version"+ds.orig.tar.xz -C "$tmp"
src=$(find "$tmp" -maxdepth 1 -type d -name 'micropython*' | head -n 1)
[ -f "$src/py/mpconfig.h" ] || { echo "error: unpacked source has no py/mpconfig.h" >&2; exit 1; }
mv "$src" "$dest"
