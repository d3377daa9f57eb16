"""Bare-metal programs of bench/bare/ (no MicroPython) for qemu's Cortex-M machines: built with
arm-none-eabi-gcc at -O2 into build/bare/, run with semihosting (files in the run's folder)."""
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BARE = ROOT / "bench" / "bare"
OUT = ROOT / "build" / "bare"
CC = "arm-none-eabi-gcc"
QEMU = "qemu-system-arm"

# core -> (gcc -mcpu, qemu machine options). The microbit's nRF51 gets 2 MB of SRAM (bench.ld) and 1 MB of Flash.
CORES = {
    "m7": ("cortex-m7", ["-machine", "mps2-an500"]),
    "m3": ("cortex-m3", ["-machine", "mps2-an385"]),
    "m0": ("cortex-m0", ["-machine", "microbit", "-global", "nrf51-soc.sram-size=2097152",
                         "-global", "nrf51-soc.flash-size=1048576"]),
}
KERNELS_HWC = [ROOT / "c_src" / f for f in ("mct_pointwise_s8_hwc.c", "mct_depthwise_s8_hwc.c",
                                             "mct_conv_s8_hwc.c", "mct_requant.c")]


def missing_tools():
    """What is not installed of the cross compiler and qemu, '' when both are."""
    return " and ".join(t for t in (CC, QEMU) if shutil.which(t) is None)


def build(name, core, sources, includes=(), flags=(), ldscript="bare.ld"):
    """build/bare/<name>_<core>.elf from bench/bare/bare.c and `sources`, rebuilt when older than one."""
    elf = OUT / f"{name}_{core}.elf"
    srcs = [BARE / "bare.c"] + [Path(s) for s in sources]
    deps = srcs + sorted(BARE.glob("*.h")) + sorted((ROOT / "c_src").glob("*.h")) + sorted(BARE.glob("*.ld"))
    if elf.exists() and elf.stat().st_mtime >= max(p.stat().st_mtime for p in deps):
        return elf
    OUT.mkdir(parents=True, exist_ok=True)
    # soft float unless `flags` name a float ABI: given twice, gcc would link the wrong (ARM-mode) libc
    abi = [] if any(f.startswith("-mfloat-abi=") for f in flags) else ["-mfloat-abi=soft"]
    cmd = [CC, "-std=c99", "-O2", "-mthumb", f"-mcpu={CORES[core][0]}"] + abi + ["-ffunction-sections",
           "-I", str(ROOT / "c_src"), "-I", str(BARE)] + [f"-I{i}" for i in includes] + list(flags) + [
           "-nostartfiles", "--specs=nano.specs", "-L", str(BARE), "-T", str(BARE / ldscript), "-Wl,--gc-sections",
           "-o", str(elf)] + [str(s) for s in srcs] + ["-lc", "-lgcc"]
    subprocess.run(cmd, check=True)
    return elf


def run(elf, core, cwd, plugin=None, timeout=600):
    """Runs the program in `cwd` (its semihosting files); plugin: the -plugin argument, if any.
    Returns qemu's completed process (returncode 0: the program returned 0)."""
    cmd = [QEMU] + CORES[core][1] + ["-nographic", "-monitor", "null", "-semihosting-config",
                                     "enable=on,target=native", "-kernel", str(elf)]
    if plugin:
        cmd += ["-plugin", plugin]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
