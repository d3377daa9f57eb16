"""The emulated boards' persistent Flash (boards/qemu-m3/qemu_flash.c): a NOR-flash block device on a
host file, mounted with LittleFS at /flash, that outlives qemu."""
import pytest

from host_tools.boards import runners as boards
from host_tools.errors import UserError

QEMU = [b for b in boards.BOARDS if b in boards.QEMU_BOARDS]

WRITE = """
import os
print(sorted(os.listdir('/')))
with open('/flash/note.txt', 'w') as f:
    f.write('kept %d' % 12345)
"""
READ = "print(open('/flash/note.txt').read())\n"

# The block device itself, on the raw Flash: NOR semantics (erase to 0xff, programming only clears
# bits), bounds checked. The test unmounts /flash first: it writes blocks LittleFS owns.
NOR = """
import os, qemu_flash
os.umount('/flash')
d = qemu_flash.bdev()
n = d.ioctl(4, 0)
print('blocks', n, 'size', d.ioctl(5, 0))
print('erase', d.ioctl(6, n - 1))
b = bytearray(8)
d.readblocks(n - 1, b, 100)
print(bytes(b))
d.writeblocks(n - 1, b'\\x0f\\xf0\\x55\\xaa', 100)
d.writeblocks(n - 1, b'\\xff\\x3c\\xf0\\x0f', 100)
d.readblocks(n - 1, b, 100)
print(bytes(b))
d.writeblocks(n - 2, b'\\x12' * 4)          # simple protocol: erases the block first
c = bytearray(4096)
d.readblocks(n - 2, c)
print(c[:4] == b'\\x12' * 4, c[4:] == b'\\xff' * 4092)
try:
    d.readblocks(n, b)
except OSError as e:
    print('out of range', e.errno)
"""


@pytest.mark.parametrize("board", QEMU)
def test_flash_outlives_qemu(board, tmp_path):
    boards.build_firmware(board)
    flash = boards.make_flash_image(tmp_path / "flash.img")
    res = boards.run_source(board, WRITE, flash_image=flash, timeout=60)
    assert res.returncode == 0 and res.output == "['flash', 'rom']\n", res.output
    res = boards.run_source(board, READ, flash_image=flash, timeout=60)     # a new qemu
    assert res.returncode == 0 and res.output == "kept 12345\n", res.output
    # Without a flash image the board is as before: no /flash.
    res = boards.run_source(board, "import os\nprint(os.listdir('/'))\n", timeout=60)
    assert res.output == "['rom']\n", res.output


def test_flash_behaves_like_nor(tmp_path):
    boards.build_firmware("qemu-m3")
    flash = boards.make_flash_image(tmp_path / "flash.img", 16 * boards.FLASH_BLOCK)
    res = boards.run_source("qemu-m3", NOR, flash_image=flash, timeout=60)
    assert res.returncode == 0, res.output
    assert res.output.split("\n")[:-1] == [
        "blocks 16 size 4096", "erase 0", "b'\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff'",
        "b'\\x0f0P\\n\\xff\\xff\\xff\\xff'", "True True", "out of range 22"]
    # ... and the host file holds the same bytes.
    data = flash.read_bytes()
    assert data[15 * 4096 + 100:15 * 4096 + 104] == bytes([0x0F & 0xFF, 0xF0 & 0x3C, 0x55 & 0xF0, 0xAA & 0x0F])
    assert data[14 * 4096:14 * 4096 + 8] == b"\x12" * 4 + b"\xff" * 4


def test_flash_image_checks(tmp_path):
    with pytest.raises(UserError, match="multiple of 4096"):
        boards.make_flash_image(tmp_path / "f.img", 5000)
    with pytest.raises(UserError, match="no flash image"):
        boards.run_source("qemu-m3", "print(1)", flash_image=tmp_path / "missing.img")
    with pytest.raises(UserError, match="qemu boards only"):
        boards.run_source("unix", "print(1)", flash_image=tmp_path / "missing.img")
