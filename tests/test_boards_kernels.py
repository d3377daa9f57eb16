"""The forward kernels as each MCU build selects them (SIMD SMLAD paths on qemu-m7, portable C on
qemu-m3 and qemu-m0) against the numpy reference, bit for bit: single depthwise, pointwise and
general convs over many kernels, strides, paddings, sizes, zero points, clamps, requantization
shifts and int32-limit biases (tests/test_kernels.py's generator), and random graphs whose first
stage runs patch by patch (the kernels on windows of tensors). All models of a board in one run."""
import numpy as np
import pytest

from host_tools.boards import runners as boards
from host_tools.model import mct_format
from host_tools.memory import patch
from host_tools.reference import oracle as reference
from tests.support.graphgen import random_graph
from tests.test_kernels import conv_graph
from tests.test_patch import _stages

SCRIPT = """\
import mcutrain
for i in range({n}):
    m = mcutrain.Model(open('m%d.mct' % i, 'rb'))
    xs = open('x%d.bin' % i, 'rb').read()
    size = len(xs) // 2
    for j in range(2):
        print('F', i, bytes(m.forward(xs[j * size:(j + 1) * size])).hex())
"""


def _models(tmp):
    """(model bytes, 2 inputs, expected outputs) for every model, written as m<i>.mct, x<i>.bin."""
    rng = np.random.default_rng(77)
    graphs = [conv_graph(rng, "depthwise")[0] for _ in range(30)]
    # 3x3 at strides 1 and 2 (the unrolled and SIMD paths), output scales that keep most outputs
    # inside the int8 range
    graphs += [conv_graph(rng, "depthwise", k=3, stride=1 + i % 2, log2_scale=(8, 14))[0] for i in range(20)]
    graphs += [conv_graph(rng, kind, size=int(rng.integers(2, 12)))[0] for kind in ("pointwise", "general")
               for _ in range(8)]
    patched = 0
    for seed in range(200):
        if patched == 6:
            break
        r = np.random.default_rng(1000 + seed)
        gr = random_graph(r, size=int(r.integers(8, 16)), n_bias_update=0, weights=False)
        stages = [st for st in _stages(gr) if st.rows * st.cols > 1]
        dw = [k for k, op in enumerate(gr.ops) if getattr(op, "groups", 1) > 1 and op.groups == gr.shapes[op.input][0]
              and op.weight.shape[0] == op.groups]
        stages = [st for st in stages if any(k < st.ops for k in dw)]
        if stages:
            gr.patch = stages[int(r.integers(len(stages)))]
            graphs.append(gr)
            patched += 1
    assert patched == 6
    out = []
    for i, gr in enumerate(graphs):
        data = mct_format.to_bytes(gr)
        m = mct_format.load(data)
        xs = rng.integers(-128, 128, size=(2, int(np.prod(m.input_shape)))).astype(np.int8)
        ref = reference.Reference(m)
        (tmp / f"m{i}.mct").write_bytes(data)
        (tmp / f"x{i}.bin").write_bytes(xs.tobytes())
        out.append([ref.forward(x) for x in xs])
    return out


@pytest.mark.parametrize("board", ["qemu-m7", "qemu-m3", "qemu-m0"])
def test_conv_kernels_match_reference_on_mcus(board, tmp_path):
    boards.build_firmware(board)
    want = _models(tmp_path)
    n = len(want)
    (tmp_path / "main.py").write_text(SCRIPT.format(n=n))
    files = [tmp_path / f"{p}{i}.{e}" for i in range(n) for p, e in (("m", "mct"), ("x", "bin"))]
    res = boards.run_script(board, tmp_path / "main.py", files, timeout=600)
    assert res.returncode == 0, res.output
    got = {}
    for line in res.output.splitlines():
        if line.startswith("F "):
            _, i, hexed = line.split()
            got.setdefault(int(i), []).append(np.frombuffer(bytes.fromhex(hexed), dtype=np.int8))
    assert len(got) == n
    for i in range(n):
        for a, b in zip(got[i], want[i]):
            np.testing.assert_array_equal(a, b, err_msg=f"model {i} on {board}")
