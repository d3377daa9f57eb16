"""Every emulated MCU (qemu-m3: Cortex-M3, qemu-m7: Cortex-M7 + FPU, qemu-m0: Cortex-M0, the Pico in
rp2040js): no allocation per training step; the qemu boards' 256 KB SRAM budget. (test_board_api.py runs the board API
scripts and the match against the host reference on them.)"""
import pytest

from host_tools.boards import runners as boards
from tests import test_board_api as api

MORE_BOARDS = [b for b in boards.BOARDS if b not in boards.UNIX_BOARDS]
files = api.files   # the same model and data files (a module-scoped fixture)


@pytest.fixture(scope="module", params=MORE_BOARDS)
def board(request):
    boards.build_firmware(request.param)
    return request.param


def test_train_step_does_not_allocate(board, files):
    """The heap after N steps does not depend on N: nothing but the returned loss per step."""
    source = """
import gc, mcutrain
xs = open('inputs.bin', 'rb').read()
a = mcutrain.Model(open('model.mct', 'rb').read())
x = xs[:len(xs) // 12]
out = []
for n in (20, 100, 400):
    gc.collect()
    before = gc.mem_free()
    for i in range(n):
        a.train_step(x, 1, 0.01)
    gc.collect()
    out.append(before - gc.mem_free())
print(out)
"""
    res = boards.run_source(board, source, [files / "model.mct", files / "inputs.bin"], timeout=300)
    assert res.returncode == 0, res.output
    grown = eval(res.output)
    assert max(grown) - min(grown) <= 64, grown


@pytest.mark.parametrize("qemu_board", sorted(boards.QEMU_BOARDS))
def test_sram_budget(qemu_board):
    """The qemu boards' own memory layout (the Pico's RAM is the chip's: bench/rp2_pico.py)."""
    boards.build_firmware(qemu_board)
    mem = boards.qemu_memory(qemu_board)
    assert mem["sram_size"] == 256 * 1024
    assert mem["data_bss"] + mem["heap"] + mem["stack"] <= mem["sram_used"] <= 256 * 1024
    assert mem["heap"] >= 200 * 1024
    assert mem["flash_used"] <= mem["romfs_start"]
