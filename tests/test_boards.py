"""The boards: firmware builds, scripts run with their files, qemu-m3 keeps to its memory budget."""
import textwrap

import pytest

from host_tools.boards import runners as boards
from host_tools.boards import romfs
from host_tools.errors import UserError


@pytest.fixture(scope="module", params=boards.BOARDS)
def board(request):
    """Each board, its firmware (re)built through the Makefile: incremental, so cheap when current."""
    boards.build_firmware(request.param)
    return request.param


def run(board, source, files=(), timeout=120, **kwargs):
    return boards.run_source(board, textwrap.dedent(source), files, timeout=timeout, **kwargs)


def test_script_output(board):
    rc, out = run(board, """
        print("hello", 6 * 7)
        print(sum(range(100)))
    """)
    assert (rc, out) == (0, "hello 42\n4950\n")


def test_error_gives_nonzero_returncode_and_traceback(board):
    rc, out = run(board, """
        print("before")
        raise ValueError("boom")
    """)
    assert rc == 1
    assert out == 'before\nTraceback (most recent call last):\n  File "main.py", line 3, in <module>\nValueError: boom\n'


def test_sys_exit_gives_its_status(board):
    assert run(board, "import sys\nprint('x')\nsys.exit(3)\n") == (3, "x\n")
    assert run(board, "import sys\nsys.exit(0)\n") == (0, "")


def test_files_are_readable_by_name(board, tmp_path):
    data = bytes(range(256)) * 1200  # 300 KB: more than the qemu-m3 board's SRAM
    (tmp_path / "data.bin").write_bytes(data)
    (tmp_path / "notes.txt").write_text("first line\nsecond\n")
    rc, out = run(board, """
        import os
        print(sorted(n for n in os.listdir() if n != "main.py"))
        print(open("notes.txt").read().splitlines())
        with open("data.bin", "rb") as f:
            f.seek(1000)
            print(f.read(3))
    """, [tmp_path / "data.bin", tmp_path / "notes.txt"])
    assert rc == 0, out
    assert out == "['data.bin', 'notes.txt']\n['first line', 'second']\nb'\\xe8\\xe9\\xea'\n"


def test_ticks_advance(board):
    rc, out = run(board, """
        import time
        t0 = time.ticks_us()
        m0 = time.ticks_ms()
        time.sleep_ms(20)
        dt = time.ticks_diff(time.ticks_us(), t0)
        # (the unix port's sleep_ms counts whole milliseconds, so it may be a little short)
        print(dt >= 19000, dt < 2000000, time.ticks_diff(time.ticks_ms(), m0) >= 19)
        print(time.ticks_diff(time.ticks_add(t0, 5), t0))
    """)
    assert (rc, out) == (0, "True True True\n5\n")


def test_unknown_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError):
        boards.run_source("unix", "print(1)", [tmp_path / "missing.bin"])


# --- qemu-m3 only ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def qemu_m3():
    boards.build_firmware("qemu-m3")
    return boards.qemu_m3_memory()


def test_qemu_m3_sram_budget(qemu_m3):
    assert qemu_m3["sram_size"] == 256 * 1024
    assert qemu_m3["sram_used"] <= 256 * 1024
    assert qemu_m3["data_bss"] + qemu_m3["heap"] + qemu_m3["stack"] <= qemu_m3["sram_used"]
    assert qemu_m3["heap"] >= 200 * 1024
    assert qemu_m3["stack"] >= 12 * 1024
    # The ROMFS partition lies in the Flash region, above the firmware image.
    assert qemu_m3["flash_used"] <= qemu_m3["romfs_start"]
    assert qemu_m3["romfs_start"] + qemu_m3["romfs_size"] <= 0x00400000


def test_qemu_m3_sram_budget_from_linker_map(qemu_m3):
    # Independent of our ELF reader: the sizes the linker itself reports.
    mapfile = boards.firmware_path("qemu-m3").with_suffix(".map").read_text()
    sizes = {}
    for line in mapfile.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in (".data", ".bss", ".stack") and parts[1].startswith("0x2"):
            sizes[parts[0]] = int(parts[2], 16)
    assert set(sizes) == {".data", ".bss", ".stack"}
    assert sum(sizes.values()) <= 256 * 1024


def test_qemu_m3_romfs_file_is_zero_copy_from_flash(qemu_m3, tmp_path):
    data = bytes(range(256)) * 2048  # 512 KB: twice the board's SRAM
    (tmp_path / "big.bin").write_bytes(data)
    (tmp_path / "small.bin").write_bytes(b"\x01\x02\x03")
    rc, out = run("qemu-m3", """
        import gc, uctypes
        gc.collect()
        free = gc.mem_free()
        big = memoryview(open("big.bin", "rb"))
        small = memoryview(open("small.bin", "rb"))
        gc.collect()
        print(len(big), big[1000], sum(big[-4:]), bytes(small))
        print(hex(uctypes.addressof(big)), hex(uctypes.addressof(small)))
        print(free - gc.mem_free() < 1024)
    """, [tmp_path / "big.bin", tmp_path / "small.bin"])
    assert rc == 0, out
    lines = out.splitlines()
    assert lines[0] == f"{len(data)} 232 {sum(data[-4:])} b'\\x01\\x02\\x03'"
    addresses = [int(a, 16) for a in lines[1].split()]
    for address in addresses:
        assert qemu_m3["romfs_start"] <= address < qemu_m3["romfs_start"] + qemu_m3["romfs_size"]
        assert address % 16 == 0  # host_tools.boards.romfs aligns file data
    assert lines[2] == "True"  # the 512 KB were not copied into the heap


def test_qemu_m3_os_on_rom(qemu_m3, tmp_path):
    (tmp_path / "a.txt").write_text("x")
    rc, out = run("qemu-m3", """
        import os, sys
        print(os.getcwd(), sorted(os.listdir("/rom")))
        os.chdir("/")
        print("rom" in os.listdir(), sys.platform)
    """, [tmp_path / "a.txt"])
    assert (rc, out) == (0, "/rom ['a.txt', 'main.py']\nTrue qemu\n")


def test_qemu_m3_icount_timing_is_repeatable(qemu_m3):
    # Under -icount emulated time counts instructions: the same work takes the same time, up to
    # where the 1 ms SysTick interrupts happen to fall (a few SysTick counts).
    source = """
        import time
        def work():
            s = 0
            for i in range(2000):
                s += i * i
            return s
        t0 = time.ticks_cpu()
        s = work()
        print(time.ticks_diff(time.ticks_cpu(), t0), s)
    """
    runs = [run("qemu-m3", source, icount=True) for _ in range(3)]
    assert all(rc == 0 for rc, _ in runs), runs
    cycles = [int(out.split()[0]) for _, out in runs]
    assert all(out.split()[1] == "2664667000" for _, out in runs)
    assert cycles[0] > 0 and max(cycles) - min(cycles) <= cycles[0] // 100, cycles


def test_qemu_m3_timeout(qemu_m3):
    rc, out = boards.run_source("qemu-m3", "while True:\n    pass\n", timeout=3)
    assert rc == boards.TIMEOUT_RC
    assert "timed out" in out


def test_romfs_image_round_trip():
    tree = {"a.bin": bytes(1000), "lib": {"m.py": b"x = 1\n"}, "odd": b"\x01"}
    for align in (1, 16, 64):
        image = romfs.build_image(tree, align)
        assert image[:3] == b"\xd2\xcd\x31" and len(image) % 2 == 0
        assert romfs.read_image(image) == tree
        # Every file's data starts at an aligned offset in the image.
        assert image.index(bytes(1000)) % align == 0


def test_qemu_m3_cpu_fault_ends_the_run(qemu_m3):
    # A crash (here: a write to an unmapped address) stops the run at once, with the registers.
    rc, out = run("qemu-m3", """
        import machine
        print("before")
        machine.mem32[0x4ff00000] = 1
    """, timeout=20)
    assert rc == 1, out
    assert out.startswith("before\nHardFault exception caught:\n")
    assert "stopped on a CPU fault" in out


def test_qemu_m3_files_larger_than_romfs_are_a_user_error(qemu_m3, tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate(qemu_m3["romfs_size"])
    with pytest.raises(UserError, match="ROMFS"):
        run("qemu-m3", "print(1)", [big])
