"""The checks every operator's tests run (tests/test_lut.py, test_concat.py, test_se.py): the CLI as
a subprocess, the C core against the numpy reference over training steps, the reference's gradients
against PyTorch autograd."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from host_tools.ccore.core import CoreModel
from host_tools.model import mct_format
from host_tools.reference import oracle as reference
from tests.support import torch_graph
from tests.support.graphgen import random_input

ROOT = Path(__file__).resolve().parents[2]


def cli(*args):
    return subprocess.run([sys.executable, "-m", "host_tools", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


def core_trains_like_the_reference(data, rng, n_classes, steps=4):
    """Forward, loss and every trained tensor after `steps` steps: C core == numpy reference."""
    m = mct_format.load(data)
    ref, core = reference.Reference(m), CoreModel(data)
    for _ in range(steps):
        x, label = random_input(rng, m), int(rng.integers(0, n_classes))
        assert np.array_equal(core.forward(x, n_classes), ref.forward(x))
        assert core.train_step(x, label, 0.05) == pytest.approx(ref.train_step(x, label, 0.05), rel=1e-5)
    assert core.save() == m.to_bytes()


def gradients_are_autograds(m, rng, n_classes, luts=None, min_tensors=1, steps=3):
    """The reference's gradients of the trained tensors against autograd on the dequantized graph at
    the same int8 point: equal but for float32 rounding."""
    for _ in range(steps):
        ref = reference.Reference(m)
        x, label = random_input(rng, m), int(rng.integers(0, n_classes))
        want = torch_graph.autograd_grads(ref, x, label, luts)
        ref.train_step(x, label, 0.0)
        assert len(want) >= min_tensors
        for t, w in want.items():
            got = ref.grads[t].reshape(-1)[:w.size].astype(np.float64)
            w = w.reshape(-1)[:got.size]
            np.testing.assert_allclose(got, w, rtol=1e-4, atol=1e-5 * max(np.abs(w).max(), 1e-12))


def patch_stage_is_whole(graph, stage, rng, n_classes, steps=4):
    """The graph with `stage` as its patch-based first stage: the C core's logits those of the whole-
    tensor forward and of the reference."""
    from host_tools.memory import patch as patching
    graph.patch = None
    data_whole = mct_format.to_bytes(graph)
    graph.patch = stage
    data_patch = mct_format.to_bytes(graph)
    assert mct_format.load(data_patch).stage == stage and isinstance(stage, patching.Stage)
    a, b = CoreModel(data_whole), CoreModel(data_patch)
    m = mct_format.load(data_whole)
    for _ in range(steps):
        x = random_input(rng, m)
        assert np.array_equal(a.forward(x, n_classes), b.forward(x, n_classes))
        assert np.array_equal(b.logits32(n_classes)[0], a.logits32(n_classes)[0])
        assert np.array_equal(b.forward(x, n_classes), reference.Reference(m).forward(x))


def random_images(d, shape=(1, 16, 16), n_classes=5, n=48):
    """A file of n random images of `shape` in [0, 1) with random labels: x, y in d/data.npz."""
    rng = np.random.default_rng(1)
    np.savez(d / "data.npz", x=rng.random((n,) + shape, dtype=np.float32), y=rng.integers(0, n_classes, n))
    return d / "data.npz"


def tflite_conv_input(w, rng, zero):
    """A .tflite's int8 input [1, 8, 8, 1] and a 3x3 conv to 4 channels (scale 0.03, `zero`) on it,
    written with examples/tflite_writer.py's TFLiteWriter w: (input, conv output) tensors."""
    x = w.tensor("input", [1, 8, 8, 1], "int8", scale=1 / 255, zero=-128)
    k = w.tensor("conv/w", [4, 3, 3, 1], "int8", scale=rng.uniform(0.01, 0.03, 4), zero=np.zeros(4),
                 data=rng.integers(-127, 128, (4, 3, 3, 1)))
    b = w.tensor("conv/b", [4], "int32", scale=np.full(4, 1e-4), zero=np.zeros(4), data=rng.integers(-900, 500, 4))
    c = w.tensor("conv", [1, 8, 8, 4], "int8", scale=0.03, zero=zero)
    w.op("CONV_2D", [x, k, b], [c], "Conv2DOptions", padding="SAME")
    return x, c


def save_onnx_classifier(path, name, nodes, inits, in_shape, last):
    """An ONNX model (opset 17) of `nodes` on input x [N, *in_shape], then a global average pool of
    `last`, a flatten and a MatMul by the initializer "fc/w" as its logits y; saved to path."""
    import onnx
    from onnx import TensorProto, helper
    nodes = nodes + [helper.make_node("GlobalAveragePool", [last], ["g"], name="gap"),
                     helper.make_node("Flatten", ["g"], ["f"], name="flat"),
                     helper.make_node("MatMul", ["f", "fc/w"], ["y"], name="dense")]
    gr = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
                           [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(gr, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, path)
    return path
