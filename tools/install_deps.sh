#!/usr/bin/env bash
# Install the Debian packages mcutrain's builds and tests need, only those missing.
# apt-get update runs only when something has to be installed; sudo is used when not root.
set -euo pipefail

packages=(
    gcc-arm-none-eabi          # Cortex-M cross compiler (qemu-m3 firmware)
    libnewlib-arm-none-eabi    # its C library headers
    libstdc++-arm-none-eabi-newlib  # C++ headers: pico-sdk compiles one C++ file (the rp2-pico firmware)
    qemu-system-arm            # runs the qemu-m3 board
    pkg-config                 # the unix port's build asks it for libraries
    dataset-fashion-mnist      # Fashion-MNIST, under /usr/share/datasets/fashion-mnist/
    clang                      # libFuzzer targets (make fuzz, tests/test_reliability.py)
    libclang-rt-dev            # clang's libFuzzer and sanitizer runtimes
    valgrind                   # make valgrind (also its headers, for the instrumented unix build)
    cmake                      # the rp2-pico firmware (MicroPython's ports/rp2 is a CMake build)
    nodejs                     # runs rp2040js, the emulated Raspberry Pi Pico
)

missing=()
for pkg in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
# npm installs rp2040js (tools/install_rp2040js.sh); some nodejs builds carry it, Debian's has not.
command -v npm >/dev/null || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "error: not root and no sudo; install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
fi
echo "installing: ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
