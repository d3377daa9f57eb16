#!/usr/bin/env python3
"""Collect `make dist`'s files into dist/ with manifest.json and SHA256SUMS (standard library only).

dist/firmware/<board>/firmware.elf   the emulated boards' firmware (qemu-system-arm -kernel)
dist/mpy/<arch>/mcutrain.mpy         the dynamic native module, per MicroPython native architecture
dist/mpy/mcutrain_util.py            board-side helper: save_atomic() and load() of a trained model
"""
import argparse
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from host_tools.boards import runners as boards  # noqa: E402

MPY_ARCHS = ["none", "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp",
             "xtensa", "xtensawin", "rv32imc"]
CPUS = {"qemu-m3": "Cortex-M3", "qemu-m7": "Cortex-M7 with single-precision FPU", "qemu-m0": "Cortex-M0"}


def micropython_version(mpy_dir: Path) -> str:
    text = (mpy_dir / "py" / "mpconfig.h").read_text()
    parts = [re.search(rf"#define MICROPY_VERSION_{k} \(?(\d+)", text).group(1) for k in ("MAJOR", "MINOR", "MICRO")]
    return "v" + ".".join(parts)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--firmware", type=Path, required=True)
    p.add_argument("--natmod", type=Path, required=True)
    p.add_argument("--micropython", type=Path, required=True)
    p.add_argument("--boards", nargs="*", default=[])
    p.add_argument("--archs", nargs="*", default=[])
    p.add_argument("--py", nargs="*", type=Path, default=[], help="board-side Python helpers")
    a = p.parse_args()
    version = micropython_version(a.micropython)
    if a.out.exists():
        shutil.rmtree(a.out)
    entries = []
    for board in a.boards:
        src = a.firmware / board / "firmware.elf"
        dst = a.out / "firmware" / board / "firmware.elf"
        dst.parent.mkdir(parents=True)
        shutil.copyfile(src, dst)
        mem = boards.qemu_memory(board, src)
        machine, extra = boards.QEMU_BOARDS[board]
        entries.append({"file": str(dst.relative_to(a.out)), "kind": "firmware", "board": board,
                        "cpu": CPUS.get(board, ""), "micropython": version,
                        "qemu": " ".join(["qemu-system-arm", "-machine", machine, *extra]),
                        "sram_used": mem["sram_used"], "heap": mem["heap"], "flash_used": mem["flash_used"],
                        "romfs_start": mem["romfs_start"], "romfs_size": mem["romfs_size"]})
    for arch in a.archs:
        src = a.natmod / arch / "mcutrain.mpy"
        dst = a.out / "mpy" / arch / "mcutrain.mpy"
        dst.parent.mkdir(parents=True)
        shutil.copyfile(src, dst)
        header = dst.read_bytes()[:4]
        assert header[:1] == b"M" and MPY_ARCHS[header[2] >> 2] == arch, (arch, header)
        entries.append({"file": str(dst.relative_to(a.out)), "kind": "mpy", "arch": arch, "micropython": version,
                        "mpy_version": f"{header[1]}.{header[2] & 3}"})
    for src in a.py:
        dst = a.out / "mpy" / src.name
        shutil.copyfile(src, dst)
        entries.append({"file": str(dst.relative_to(a.out)), "kind": "py", "micropython": version})
    for e in entries:
        path = a.out / e["file"]
        e["size"] = path.stat().st_size
        e["sha256"] = sha256(path)
    (a.out / "manifest.json").write_text(json.dumps({"micropython": version, "files": entries}, indent=2) + "\n")
    (a.out / "SHA256SUMS").write_text("".join(f"{e['sha256']}  {e['file']}\n" for e in entries))
    for e in entries:
        print(f"{e['size']:>8}  {e['file']}")
    print(f"{a.out}/manifest.json, {a.out}/SHA256SUMS")


if __name__ == "__main__":
    main()
