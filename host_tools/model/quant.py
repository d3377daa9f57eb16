"""Fixed-point requantization, exactly as the C core computes it (gemmlowp/TFLite rules).

A real multiplier r > 0 is stored as (M, shift) with r ~= M * 2^(shift - 31), M in [2^30, 2^31).
Every function here works on numpy int64 arrays and reproduces the C integer arithmetic bit for bit.
"""
import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
ADD_LEFT_SHIFT = 20


def quantize_multiplier(real: float):
    """(M, shift) for a real multiplier; (0, 0) for 0 and for values too small to represent."""
    if real < 0 or not math.isfinite(real):
        raise ValueError(f"requantization multiplier must be finite and >= 0, got {real}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)              # real = q * 2^shift, q in [0.5, 1)
    m = int(round(q * (1 << 31)))
    if m == (1 << 31):
        m //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise ValueError(f"requantization multiplier {real} is too large")
    return m, shift


def _sat32(v):
    return np.clip(v, INT32_MIN, INT32_MAX)


def srdhm(a, b):
    """SaturatingRoundingDoublingHighMul: round(a * b / 2^31), ties away from zero, saturated."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    s = ab + nudge
    # C's int64 division truncates toward zero
    q = np.where(s >= 0, s >> 31, -((-s) >> 31))
    overflow = (a == INT32_MIN) & (b == INT32_MIN)
    return np.where(overflow, INT32_MAX, q)


def rounding_divide_by_pot(x, exponent):
    """x / 2^exponent rounded to nearest, ties away from zero (exponent >= 0)."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def multiply_by_quantized_multiplier(x, m, shift):
    """round(x * M * 2^(shift-31)) with the C core's exact integer steps."""
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.where(shift > 0, shift, 0)
    right = np.where(shift > 0, 0, -shift)
    return rounding_divide_by_pot(srdhm(_sat32(x << left), m), right)


def round_half_even_div(total, n):
    """round(total / n), ties to even, for integer arrays and n > 0 (the average pool's rounding)."""
    total = np.asarray(total, dtype=np.int64)
    q = total // n                           # floor
    r = total - q * n                        # 0 <= r < n
    up = (2 * r > n) | ((2 * r == n) & (q % 2 != 0))
    return q + up


def add_params(a_scale, b_scale, y_scale):
    """Multipliers of the int8 residual add (TFLite's scheme, left shift 20)."""
    twice_max = 2.0 * max(a_scale, b_scale)
    ma, sa = quantize_multiplier(a_scale / twice_max)
    mb, sb = quantize_multiplier(b_scale / twice_max)
    mo, so = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * y_scale))
    return (ma, sa), (mb, sb), (mo, so)
