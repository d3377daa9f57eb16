"""Check a model on a board against the numpy reference: forward bit-exact, training steps identical.

The board runs a generated script that prints each input's int8 logits, the loss of each training
step and the CRC-32 of the model saved after the steps (the CRC in the saved header covers every
tensor, so equal CRCs mean identical trained tensors).
"""
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np

from host_tools.boards import runners as boards
from host_tools.data_checks import check_labels, check_range
from host_tools.model import mct_format
from host_tools.model.layout import to_device
from host_tools.reference import oracle as reference
from host_tools.errors import UserError

BOARD_SCRIPT = """\
import mcutrain
m = mcutrain.Model(open('model.mct', 'rb'))
n = {n}
size = {size}
f = open('inputs.bin', 'rb')
try:
    xs = memoryview(f)          # ROMFS: the inputs stay in Flash, not copied to RAM
except TypeError:
    xs = memoryview(f.read())
labels = open('labels.bin', 'rb').read()
for i in range(n):
    y = m.forward(xs[i * size:(i + 1) * size])
    print('F', bytes(y).hex())
for i in range({steps}):
    j = i % n
    label = labels[2 * j] | labels[2 * j + 1] << 8
    print('L', m.train_step(xs[j * size:(j + 1) * size], label, {lr}))

class Head:
    def __init__(self):
        self.head = b''
    def write(self, data):
        if len(self.head) < 16:
            self.head += bytes(data[:16 - len(self.head)])
        return len(data)

h = Head()
m.save(h)
print('C', int.from_bytes(h.head[12:16], 'little'))
print('M', m.mem_info())
"""


@dataclass
class CheckResult:
    forward_equal: int
    forward_total: int
    max_step_diff: int
    losses_board: List[float]
    losses_ref: List[float]
    crc_board: Optional[int]
    crc_ref: int
    trains: bool
    output: str

    @property
    def ok(self):
        return (self.forward_equal == self.forward_total and
                (not self.trains or self.crc_board == self.crc_ref))


def make_inputs(model, n, data=None, seed=0, path="the model"):
    """n int8 inputs (and labels) for the model, each the device's bytes (channels last): from an .npz
    (`x` [N, C, H, W] as PyTorch takes it, float in the model's input range or int8; `y` labels) or
    random."""
    c, h, w = model.input_shape
    size = c * h * w
    rng = np.random.default_rng(seed)
    if data is None:
        xs = rng.integers(-128, 128, size=(n, size)).astype(np.int8)
        ys = rng.integers(0, model.n_classes, size=n)
        return xs, ys
    with np.load(data) as f:
        if "x" not in f:
            raise UserError(f"{data} has no array 'x'")
        x = f["x"][:n]
        ys = f["y"][:n] if "y" in f else rng.integers(0, model.n_classes, size=len(x))
    if x.reshape(len(x), -1).shape[1] != size:
        raise UserError(f"inputs in {data} have {x[0].size} values ({'x'.join(map(str, x.shape[1:]))}), "
                        f"the model {Path(path).name} takes {size} ({c}x{h}x{w})")
    check_labels(ys, model.n_classes, data)
    if x.dtype != np.int8:
        check_range(x, model.input_scale, model.input_zero, data)
        x = np.clip(np.round(x / model.input_scale) + model.input_zero, -128, 127).astype(np.int8)
    return to_device(x.reshape(len(x), c, h, w)), np.asarray(ys)


def check_model(path, board="unix", n_inputs=8, steps=3, lr=0.01, data=None, timeout=600, stream=None):
    model_bytes = Path(path).read_bytes()
    model = mct_format.load(model_bytes)
    xs, ys = make_inputs(model, n_inputs, data, path=path)
    trains = any(model.trainable)
    steps = steps if trains else 0
    ref = reference.Reference(mct_format.load(model_bytes))
    want = [ref.forward(x) for x in xs]
    losses_ref = [ref.train_step(xs[i % len(xs)], int(ys[i % len(xs)]), lr) for i in range(steps)]
    crc_ref = zlib.crc32(ref.m.to_bytes()[16:]) & 0xFFFFFFFF

    with tempfile.TemporaryDirectory(prefix="mcutrain-check-") as tmp:
        tmp = Path(tmp)
        (tmp / "model.mct").write_bytes(model_bytes)
        (tmp / "inputs.bin").write_bytes(xs.tobytes())
        (tmp / "labels.bin").write_bytes(np.asarray(ys, dtype="<u2").tobytes())
        (tmp / "check_main.py").write_text(BOARD_SCRIPT.format(n=len(xs), size=xs.shape[1], steps=steps, lr=lr))
        res = boards.run_script(board, tmp / "check_main.py",
                                [tmp / "model.mct", tmp / "inputs.bin", tmp / "labels.bin"],
                                timeout=timeout, stream=stream,
                                heapsize="256M" if board in boards.UNIX_BOARDS else None)
    if res.returncode != 0:
        raise UserError(f"the model failed on the {board} board:\n{res.output.strip()}")
    got, losses, crc = [], [], None
    for line in res.output.splitlines():
        tag, _, rest = line.partition(" ")
        if tag == "F":
            got.append(np.frombuffer(bytes.fromhex(rest), dtype=np.int8))
        elif tag == "L":
            losses.append(float(rest))
        elif tag == "C":
            crc = int(rest)
    equal = sum(np.array_equal(a, b) for a, b in zip(got, want))
    diff = max((int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(got, want)), default=0)
    return CheckResult(equal, len(want), diff, losses, losses_ref, crc if trains else None, crc_ref,
                       trains, res.output)
