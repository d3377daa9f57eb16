#!/usr/bin/env bash
# Fetch the Raspberry Pi Pico SDK 2.1.1, TinyUSB 0.18 and Mbed TLS 3.6 (what MicroPython v1.25's
# ports/rp2 uses as its lib/pico-sdk, lib/tinyusb and lib/mbedtls submodules) into $1 (default
# build/rp2-deps), once:   $1/pico-sdk   $1/tinyusb   $1/mbedtls
# Order: an SDK named by PICO_SDK_PATH (with PICO_TINYUSB_PATH, or its own lib/tinyusb) is used as is
# (nothing fetched, see mk/rp2.mk); else Debian trixie's arch-independent packages pico-sdk-source and
# tinyusb-source and the source package mbedtls, from the apt archive this machine already uses (the scheme of fetch_micropython.sh).
set -euo pipefail

dest=${1:-build/rp2-deps}
sdk_version=2.1.1
tusb_version=0.18

if [ -f "$dest/pico-sdk/pico_sdk_init.cmake" ] && [ -f "$dest/tinyusb/src/tusb.h" ] && [ -f "$dest/mbedtls/library/aes.c" ]; then
    exit 0
fi
mkdir -p "$dest"
tmp=$(cd "$dest" && mktemp -d "$PWD/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "fetching pico-sdk $sdk_version, tinyusb $tusb_version and mbedtls 3.6 (Debian trixie) into $dest"
. "$(dirname "$0")/debian_trixie_apt.sh"
trixie_apt "$tmp" "deb deb-src" "set PICO_SDK_PATH to a pico-sdk $sdk_version checkout (with lib/tinyusb, lib/mbedtls)"
(cd "$tmp/dl" && apt-get "${apt_opts[@]}" -qq download "pico-sdk-source=$sdk_version*" "tinyusb-source=$tusb_version*")
(cd "$tmp/dl" && apt-get "${apt_opts[@]}" -qq source --download-only mbedtls)
tar -xf "$(ls "$tmp"/dl/mbedtls_*.orig.tar.* | head -n 1)" -C "$tmp"
tls=$(dirname "$(dirname "$(find "$tmp" -maxdepth 3 -path '*/library/aes.c' | head -n 1)")")
[ -f "$tls/library/aes.c" ] || { echo "error: no library/aes.c in Debian's mbedtls source" >&2; exit 1; }
for deb in "$tmp"/dl/*.deb; do dpkg -x "$deb" "$tmp/root"; done
sdk=$(dirname "$(find "$tmp/root" -name pico_sdk_init.cmake | head -n 1)")
tusb=$(dirname "$(dirname "$(find "$tmp/root" -path '*/src/tusb.h' | head -n 1)")")
[ -f "$sdk/pico_sdk_init.cmake" ] || { echo "error: no pico_sdk_init.cmake in pico-sdk-source" >&2; exit 1; }
[ -f "$tusb/src/tusb.h" ] || { echo "error: no src/tusb.h in tinyusb-source" >&2; exit 1; }
rm -rf "$dest/pico-sdk" "$dest/tinyusb" "$dest/mbedtls"
mv "$tls" "$dest/mbedtls"
mv "$sdk" "$dest/pico-sdk"
mv "$tusb" "$dest/tinyusb"
