#!/usr/bin/env bash
# Install the rp2040js emulator (npm, MIT), at the pinned version, into $1 (default build/rp2040js):
# $1/node_modules/rp2040js, which host_tools/rp2040js.py and boards/rp2-pico/emulator/run.mjs use.
set -euo pipefail

dest=${1:-build/rp2040js}
version=1.4.1

if [ -f "$dest/node_modules/rp2040js/package.json" ] &&
   grep -q "\"version\": \"$version\"" "$dest/node_modules/rp2040js/package.json"; then
    exit 0
fi
command -v npm >/dev/null || { echo "error: npm is not installed (make deps)" >&2; exit 1; }
mkdir -p "$dest"
[ -f "$dest/package.json" ] || echo '{"private": true}' > "$dest/package.json"
npm install --prefix "$dest" --no-audit --no-fund --save-exact "rp2040js@$version"
