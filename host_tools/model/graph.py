"""The quantized graph: what every converter produces and the format writer consumes.

Activations are int8 tensors named by strings; their shapes are (C, H, W) (a flat vector is
(N, 1, 1)). Each op reads named activations and writes one. Every op carries the quantization
of what it reads and writes, as the MIT models define it (real = scale * (q - zero)); the writer
derives the fixed-point multipliers from these float scales.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

CONV2D, ADD, AVGPOOL, FC, MAXPOOL2D, AVGPOOL2D, LUT, CONCAT, MUL = 1, 2, 3, 4, 5, 6, 7, 8, 9


@dataclass
class Conv2d:
    """int8 conv, bias, requantization and clamp fused (ReLU/ReLU6 are the clamp).

    acc = conv(x - x_zero, weight) + bias; y = clamp(requant(acc, x_scale*w_scales/y_scale) + y_zero).
    """
    name: str
    input: str
    output: str
    weight: np.ndarray          # int8 [O, I/groups, kH, kW], symmetric (zero point 0)
    bias: np.ndarray            # int32 [O], in units of w_scales * x_scale
    w_scales: np.ndarray        # float32 [O]
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)
    groups: int = 1
    x_scale: float = 1.0
    x_zero: int = 0
    y_scale: float = 1.0
    y_zero: int = 0
    act_min: int = -128         # clamp of the output, int8 domain (ReLU6 -> [y_zero, q(6)])
    act_max: int = 127
    kind: int = CONV2D


@dataclass
class FullyConnected:
    """int8 linear layer on the flattened input (C*H*W in row-major order)."""
    name: str
    input: str
    output: str
    weight: np.ndarray          # int8 [O, I]
    bias: np.ndarray            # int32 [O]
    w_scales: np.ndarray        # float32 [O]
    x_scale: float = 1.0
    x_zero: int = 0
    y_scale: float = 1.0
    y_zero: int = 0
    act_min: int = -128
    act_max: int = 127
    kind: int = FC


@dataclass
class _TwoInputs:
    """An op reading two activations, a and b, each with its quantization, and writing y."""
    name: str
    input: str                  # a
    input2: str                 # b
    output: str
    a_scale: float = 1.0
    a_zero: int = 0
    b_scale: float = 1.0
    b_zero: int = 0
    y_scale: float = 1.0
    y_zero: int = 0


@dataclass
class Add(_TwoInputs):
    """y = clamp(round(((a - a_zero)*a_scale + (b - b_zero)*b_scale) / y_scale) + y_zero)."""
    act_min: int = -128
    act_max: int = 127
    kind: int = ADD


@dataclass
class GlobalAvgPool:
    """y[c] = round_half_even(mean over H, W of x[c]) in the int8 domain (one scale in and out)."""
    name: str
    input: str
    output: str
    scale: float = 1.0
    zero: int = 0
    kind: int = AVGPOOL


@dataclass
class _WindowPool:
    """Pooling over kH x kW windows; one scale in and out."""
    name: str
    input: str
    output: str
    kernel: Tuple[int, int]
    stride: Tuple[int, int]
    padding: Tuple[int, int] = (0, 0)
    scale: float = 1.0
    zero: int = 0
    kind: int = 0


@dataclass
class MaxPool2d(_WindowPool):
    """Max over each window; the padding never wins (as PyTorch's -inf)."""
    kind: int = MAXPOOL2D


@dataclass
class AvgPool2d(_WindowPool):
    """round_half_even(sum of the window / (kH*kW)), padding counted as real zero (PyTorch's
    count_include_pad=True)."""
    kind: int = AVGPOOL2D


POOLS = (GlobalAvgPool, MaxPool2d, AvgPool2d)


@dataclass
class Lut:
    """An elementwise activation as a 256-entry int8 table: y = table[x + 128], and its derivative
    (real units, float32, 0 where the int8 output saturates) for the backward; host_tools/model/lut.py
    builds both from the function and the quantization in and out."""
    name: str
    input: str
    output: str
    table: np.ndarray           # int8 [256]
    deriv: np.ndarray           # float32 [256]: dy/dx at x = (q - x_zero) * x_scale
    fn: str = ""                # what it computes, for the reports (e.g. "hardswish")
    x_scale: float = 1.0
    x_zero: int = 0
    y_scale: float = 1.0
    y_zero: int = 0
    kind: int = LUT


@dataclass
class Concat(_TwoInputs):
    """y = [a, b] along channels, each requantized to y's quantization:
    clamp(round((a - a_zero) * a_scale / y_scale) + y_zero) (TF-Lite's CONCATENATION), likewise b."""
    kind: int = CONCAT


@dataclass
class Mul(_TwoInputs):
    """Squeeze-and-excitation's gate: y = clamp(round((a - a_zero)(b[c] - b_zero) a_scale b_scale / y_scale)
    + y_zero), a the map C x H x W, b the gate C x 1 x 1 (TF-Lite's MUL with a broadcast)."""
    act_min: int = -128
    act_max: int = 127
    kind: int = MUL


@dataclass
class Graph:
    input: str                              # name of the input activation
    output: str                             # name of the logits activation
    shapes: Dict[str, Tuple[int, int, int]]  # activation name -> (C, H, W)
    ops: List[object]                       # in execution order
    input_scale: float = 1.0
    input_zero: int = 0
    # what the device trains: the last `n_bias_update` Conv2d/FC biases before the classifier,
    # and the classifier (the last op, an FC) when train_classifier is set
    n_bias_update: int = 0
    train_classifier: bool = True
    # weights trained on the device: conv layer index (as conv_layers() numbers them, the paper's
    # numbering) -> fraction of its output channels, the first ones (1/8, 1/4, 1/2, 1)
    weight_update: Dict[int, float] = field(default_factory=dict)
    # the patch-based first stage (host_tools/memory/patch.py): "auto" (the memory plan picks the stage
    # and grid that lower the peak most, or none), None (whole tensors) or a patch.Stage
    patch: object = "auto"
    meta: Dict[str, str] = field(default_factory=dict)
    update_rule: str = "master"         # how updates reach the int8 weights (host_tools.model.numerics)
    backward: str = "float"             # "int": the integer backward (docs/numerics.md)

    def op_output_scale(self, op) -> Tuple[float, int]:
        if isinstance(op, POOLS):
            return op.scale, op.zero
        return op.y_scale, op.y_zero

    def classifier(self) -> Optional[FullyConnected]:
        last = self.ops[-1] if self.ops else None
        return last if isinstance(last, FullyConnected) else None

    def conv_layers(self) -> list:
        """Conv2d ops in forward order (the numbering of the paper's schemes), classifier excluded."""
        return [op for op in self.ops if isinstance(op, Conv2d)]
