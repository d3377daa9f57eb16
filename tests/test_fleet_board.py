"""The update blob on every board and in the native module: the same bytes as the C core on the
host, and every bad blob refused with the numpy reference's message (tests/board/fleet_blob.py)."""
import struct
import zlib

import numpy as np
import pytest

from tests import test_board_api as api
from tests.support.graphgen import random_model
from host_tools.boards import runners as boards
from host_tools.model import mct_format
from host_tools.ccore.core import CoreModel
from host_tools.fleet import blob as fblob
from tests.test_natmod import natmods, run_stock_qemu, stock_qemu, stock_unix  # noqa: F401 (fixtures)

files = api.files
SCRIPT = api.HERE / "fleet_blob.py"
NAMES = ["model.mct", "inputs.bin", "labels.bin", "bad.bin"]


def _fix_crc(b):
    b[12:16] = struct.pack("<I", zlib.crc32(bytes(b[16:])) & 0xFFFFFFFF)
    return bytes(b)


@pytest.fixture(scope="module")
def expected(files):
    """The C core's blob after the script's steps, the bad blobs, and the reference's messages."""
    data = (files / "model.mct").read_bytes()
    m = mct_format.load(data)
    xs = np.frombuffer((files / "inputs.bin").read_bytes(), np.int8)
    labels = np.frombuffer((files / "labels.bin").read_bytes(), np.uint8)
    core = CoreModel(data)
    core.train(xs.reshape(len(labels), -1), labels, np.arange(len(labels)), 0.05)
    good = core.update_blob()
    other = random_model(3, n_bias_update=2)[2]
    out_of_range, pos = bytearray(good), fblob.HEADER.size
    for e in fblob.layout(m):                   # the first int8 value: -128, outside the trained range
        if e.dtype == mct_format.DT_INT8:
            out_of_range[pos + fblob.ENTRY.size + 4 * e.channels] = 0x80
            break
        pos += e.nbytes()
    bad = [good[:20], good[:-1] + bytes([good[-1] ^ 1]), fblob.write(other, fblob.trained_values(other)),
           _fix_crc(out_of_range), b"MCTR" + good[4:]]
    (files / "bad.bin").write_bytes(b"".join(struct.pack("<I", len(b)) + b for b in bad))
    messages = []
    for b in bad:
        with pytest.raises(ValueError) as e:
            fblob.read(m, b)
        messages.append(f"refused {e.value}")
    return "\n".join([f"blob {good.hex()}", "loaded True", *messages, "unchanged True"])


def _check(res, expected):
    assert res.returncode == 0, res.output
    assert res.output.strip() == expected


@pytest.mark.parametrize("board", list(boards.BOARDS))
def test_board(board, files, expected):
    _check(boards.run_script(board, SCRIPT, [files / n for n in NAMES], timeout=300), expected)


def test_x64_mpy_on_stock_unix(files, expected, natmods, stock_unix):  # noqa: F811
    _check(boards.run_script("unix", SCRIPT, [natmods["x64"], *(files / n for n in NAMES)], timeout=120,
                             heapsize="2M", firmware=stock_unix), expected)


def test_armv7m_mpy_on_stock_qemu(files, expected, natmods, stock_qemu):  # noqa: F811
    _check(run_stock_qemu(stock_qemu, SCRIPT, [natmods["armv7m"], *(files / n for n in NAMES)]), expected)
