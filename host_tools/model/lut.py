"""Elementwise activations as int8 lookup tables (op type 7, docs/format.md): the function and its
derivative in float64, and the two tables the device reads.

An int8 input has 256 values, so any elementwise function of it is a table: y = T[x + 128] with
T[i] = clamp(round(f((i - 128 - x_zero) * x_scale) / y_scale + y_zero)). The backward multiplies the
output's gradient by D[x + 128] = f'(x) (real units), 0 where f(x) lies outside the int8 output's
range (the gradient of the clamp, as for ReLU6). The derivatives are PyTorch's, including at the kinks
(hardswish at +-3, leaky ReLU at 0), written here independently so the tests can check them
against autograd.
"""
from typing import Callable, Tuple

import numpy as np

from host_tools.errors import UserError
from host_tools.model.graph import Lut


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))       # no overflow for large |x|


def _hardsigmoid(alpha, beta):
    def f(x):
        return np.clip(alpha * x + beta, 0.0, 1.0)

    def d(x):
        v = alpha * x + beta
        return np.where((v > 0.0) & (v < 1.0), alpha, 0.0)
    return f, d


def _hardswish(x):
    return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0


def _hardswish_d(x):
    return np.where(x <= -3.0, 0.0, np.where(x < 3.0, x / 3.0 + 0.5, 1.0))


def _silu_d(x):
    s = _sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


def functions(fn: str, params: tuple = ()) -> Tuple[Callable, Callable]:
    """(f, f') of a supported activation. params: leaky_relu (negative slope,), hardsigmoid
    (alpha, beta) of clip(alpha x + beta, 0, 1) (default PyTorch's (1/6, 1/2))."""
    if fn == "hardswish":
        return _hardswish, _hardswish_d
    if fn == "hardsigmoid" and params:
        return _hardsigmoid(*params)
    if fn == "hardsigmoid":         # PyTorch's relu6(x + 3) / 6, rounded as PyTorch rounds it
        return (lambda x: np.clip(x + 3.0, 0.0, 6.0) / 6.0), (lambda x: np.where((x > -3.0) & (x < 3.0), 1 / 6, 0.0))
    if fn == "sigmoid":
        return _sigmoid, lambda x: _sigmoid(x) * (1.0 - _sigmoid(x))
    if fn == "tanh":
        return np.tanh, lambda x: 1.0 - np.tanh(x) ** 2
    if fn == "silu":
        return lambda x: x * _sigmoid(x), _silu_d
    if fn == "leaky_relu":
        alpha = params[0] if params else 0.01
        return (lambda x: np.where(x > 0.0, x, alpha * x)), (lambda x: np.where(x > 0.0, 1.0, alpha))
    raise UserError(f"no lookup table for the activation {fn!r}: supported are {', '.join(NAMES)}")


NAMES = ("hardswish", "hardsigmoid", "sigmoid", "tanh", "silu", "leaky_relu")



def tables(fn: str, params: tuple, x_scale: float, x_zero: int, y_scale: float, y_zero: int):
    """(int8 [256] table, float32 [256] derivative) for inputs i - 128, i = 0..255."""
    f, d = functions(fn, params)
    x = (np.arange(-128, 128, dtype=np.float64) - x_zero) * x_scale
    v = f(x) / y_scale + y_zero
    table = np.clip(np.round(v), -128, 127).astype(np.int8)
    # the gradient of clamp(f(x)) to the int8 range, as autograd gives it (torch.clamp passes its ends)
    deriv = np.where((v >= -128) & (v <= 127), d(x), 0.0).astype(np.float32)
    return table, deriv


def make_lut(name, input, output, fn, params, x_scale, x_zero, y_scale, y_zero) -> Lut:
    """The graph op of activation `fn` (with `params`, see functions) between two quantized activations."""
    table, deriv = tables(fn, tuple(params), x_scale, x_zero, y_scale, y_zero)
    label = fn + (f"({', '.join(f'{p:g}' for p in params)})" if params else "")
    return Lut(name, input, output, table, deriv, label, float(x_scale), int(x_zero), float(y_scale), int(y_zero))
