"""The flagship example, examples/fashion_new_classes.py, on the emulated 256 KB board the ways the
docs run it, each through the CLI as a user does: `host_tools run` (every file in ROMFS),
`host_tools deploy --emulate` (every file in the Flash filesystem, its images file larger than the
board's RAM) and `deploy --emulate --romfs` (the model in ROMFS, the data in /flash). Each time the
model it saves must be the one the numpy reference (host_tools/reference/oracle.py) trains on the same
images in the same order, and `host_tools export` reads it back.

The model is the demo's FashionNet with random weights, on random images: what is tested is where
the script finds and reads its files and that it saves, not what it learns (test_end_to_end does).
"""
import re
import subprocess
import sys
import zlib

import numpy as np
import pytest

from host_tools.boards import runners as boards
from host_tools.model import mct_format
from host_tools.reference import oracle as reference

ROOT = boards.REPO
EXAMPLE = ROOT / "examples" / "fashion_new_classes.py"
UTIL = ROOT / "natmod" / "mcutrain_util.py"
ROMFILE = ROOT / "boards" / "lib" / "romfile.py"
SIZE = 28 * 28
N_TRAIN, N_TEST, EPOCHS, LR = 12, 6, 2, 0.05     # the script's EPOCHS and LR


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "host_tools", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """fashion.mct (FashionNet, random weights, converted by the CLI) and the example's data files."""
    boards.build_firmware("qemu-m3")
    tmp = tmp_path_factory.mktemp("example")
    rng = np.random.default_rng(7)
    np.savez(tmp / "calib.npz", x=rng.random((8, 1, 28, 28), dtype=np.float32))
    res = _cli("convert", "examples/fashion_net.py:FashionNet", "--calib", tmp / "calib.npz",
               "--n-bias-update", "2", "--update-rule", "master", "-o", tmp / "fashion.mct")
    assert res.returncode == 0, res.stderr
    for name, n in (("train", N_TRAIN), ("test", N_TEST)):
        (tmp / f"{name}.bin").write_bytes(rng.integers(-128, 128, size=n * SIZE).astype(np.int8).tobytes())
        (tmp / f"{name}_labels.bin").write_bytes(bytes(rng.integers(0, 10, size=n).tolist()))
    return tmp


@pytest.fixture(scope="module")
def reference_crc(demo):
    """The CRC of the model the numpy reference trains as the script does (2 epochs, LR 0.05)."""
    ref = reference.Reference(mct_format.load((demo / "fashion.mct").read_bytes()))
    xs = np.frombuffer((demo / "train.bin").read_bytes(), dtype=np.int8).reshape(-1, SIZE)
    ys = (demo / "train_labels.bin").read_bytes()
    for _ in range(EPOCHS):
        for x, y in zip(xs, ys):
            ref.train_step(x, y, LR)
    return zlib.crc32(ref.m.to_bytes()[16:]) & 0xFFFFFFFF


def _files(demo):
    return [EXAMPLE, ROMFILE, UTIL] + [demo / n for n in ("fashion.mct", "train.bin", "train_labels.bin",
                                                 "test.bin", "test_labels.bin")]


def _check_trained(path, demo, crc, tmp_path):
    """The saved model is the reference's, and `host_tools export` reads it back: what trained
    changed, nothing else did."""
    data = path.read_bytes()
    assert int.from_bytes(data[12:16], "little") == zlib.crc32(data[16:]) & 0xFFFFFFFF == crc
    res = _cli("export", path, "--original", demo / "fashion.mct", "-o", tmp_path / "state.npz")
    assert res.returncode == 0, res.stderr
    state = np.load(tmp_path / "state.npz")
    assert "classifier.weight" in state.files and state["classifier.weight"].shape == (10, 128)
    assert re.search(r"classifier\.weight\s+yes\s+[1-9]", res.stdout), res.stdout


def test_run_from_romfs_saves_to_flash(demo, reference_crc, tmp_path):
    """`host_tools run`, as `make demo` does: every file in ROMFS (read-only), the model saved in /flash."""
    flash = tmp_path / "flash.img"
    res = _cli("run", "--board", "qemu-m3", "--flash", flash, *_files(demo))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "saved /flash/trained.mct" in res.stdout
    assert re.search(r"accuracy before [\d.]+ % after [\d.]+ %", res.stdout)
    res = _cli("deploy", "--emulate", "qemu-m3", "--flash", flash, "--get", "/flash/trained.mct",
               "--out", tmp_path)
    assert res.returncode == 0, res.stderr
    _check_trained(tmp_path / "trained.mct", demo, reference_crc, tmp_path)


GROW = """\
# train.bin on the board made larger than its 256 KB of RAM: the example must read it in pieces.
# The first images stay those of the host's file (the reference trains on them).
import os
with open('train.bin', 'rb') as f:
    small = f.read()
with open('big.bin', 'wb') as f:
    for _ in range(300 * 1024 // len(small) + 1):
        f.write(small)
os.rename('big.bin', 'train.bin')
print('train.bin', os.stat('train.bin')[6], 'bytes')
execfile('fashion_new_classes.py')
"""


def test_deploy_to_flash_with_data_larger_than_ram(demo, reference_crc, tmp_path):
    grow = tmp_path / "grow_and_train.py"
    grow.write_text(GROW)
    out = tmp_path / "out"
    out.mkdir()
    res = _cli("deploy", "--emulate", "qemu-m3", "--flash", tmp_path / "flash.img", *_files(demo), grow,
               "--run", grow.name, "--get", "trained.mct", "--out", out)
    assert res.returncode == 0, res.stdout + res.stderr
    size = int(re.search(r"train.bin (\d+) bytes", res.stdout).group(1))
    assert size > 256 * 1024
    assert "saved trained.mct" in res.stdout and "accuracy before" in res.stdout
    _check_trained(out / "trained.mct", demo, reference_crc, tmp_path)


def test_deploy_model_to_romfs_data_to_flash(demo, reference_crc, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    res = _cli("deploy", "--emulate", "qemu-m3", "--flash", tmp_path / "flash.img", "--rom-image",
               tmp_path / "rom.img", "--romfs", *_files(demo), "--run", EXAMPLE.name, "--get", "trained.mct",
               "--out", out)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "fashion.mct -> ROMFS" in res.stderr
    assert "saved trained.mct" in res.stdout
    _check_trained(out / "trained.mct", demo, reference_crc, tmp_path)
