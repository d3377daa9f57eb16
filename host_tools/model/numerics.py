"""Training numerics shared by the writer, the converter's report and the reference: the update
rules of header byte 50 (c_src/mct_update_rule.c) and the RAM their trained copies take."""
import numpy as np

from host_tools.errors import UserError

# header byte 50, bits 0-1: how an update step reaches the int the forward reads
UPDATE_RULES = {"master": 0, "frac8": 1, "stochastic": 2, "nearest": 3}
RULE_NAMES = {v: k for k, v in UPDATE_RULES.items()}
RULE_MASK = 0x03
INT_BACKWARD = 0x04     # bit 2: the integer backward (c_src/mct_backward_int.c), not with master
KNOWN_FLAGS = 0x07
BACKWARDS = ("float", "int")

F32 = np.float32
STEP_LIMIT = F32(2.0 ** 30)     # largest step applied at once by frac8 (in 1/256), stochastic, nearest


def train_flags(update_rule="master", backward="float") -> int:
    if update_rule not in UPDATE_RULES:
        raise UserError(f"unknown update rule {update_rule!r}: one of {', '.join(UPDATE_RULES)}")
    if backward not in BACKWARDS:
        raise UserError(f"unknown backward {backward!r}: float or int")
    if backward == "int" and update_rule == "master":
        raise UserError("the integer backward needs an integer update rule (frac8, stochastic or nearest), not master")
    return UPDATE_RULES[update_rule] | (INT_BACKWARD if backward == "int" else 0)


def flags_problem(flags):
    """Why header byte 50 is invalid, or None."""
    if flags & ~KNOWN_FLAGS:
        return f"unknown training flags {flags:#04x} (header byte 50)"
    if flags & INT_BACKWARD and flags & RULE_MASK == 0:
        return f"training flags {flags:#04x} (header byte 50): the integer backward with the master rule"
    return None


def shadow_bytes(flags, n):
    """Bytes of the shadow of n trained elements: float32 master, int8 fraction (4-aligned), none."""
    rule = flags & RULE_MASK
    return 4 * n if rule == 0 else (n + 3) // 4 * 4 if rule == 1 else 0


def trained_bytes(n_tensors, trained, flags, n_acts=0):
    """Workspace after the arena (what mem_info calls 'trained'): the index (one entry per tensor,
    u16 where every offset after it, in 4-byte units, fits one, else u32; 4-aligned), then per
    trained tensor its int copy (4-aligned) and its shadow; with the integer backward, an int16
    gradient exponent per activation (4-aligned). trained: (elements, itemsize)."""
    if not trained:
        return 0
    copies = sum((n * size + 3) // 4 * 4 + shadow_bytes(flags, n) for n, size in trained)
    index = (2 * n_tensors + 3) // 4 * 4
    if (index + copies) // 4 > 0xFFFF:
        index = 4 * n_tensors
    exps = (2 * n_acts + 3) // 4 * 4 if flags & INT_BACKWARD else 0
    return index + copies + exps


def model_trained_bytes(model):
    """trained_bytes of a loaded model (host_tools.model.mct_format.Model), as the device computes it."""
    trained = [(n, t.itemsize) for t, n in zip(model.tensors, model.trained_count) if n]
    return trained_bytes(len(model.tensors), trained, model.train_flags, len(model.acts))


def rng_at(seed, idx):
    """Numbers idx (uint32 array) of the stream seeded `seed`: Weyl sequence + lowbias32 mix."""
    z = (np.uint32(seed) + np.asarray(idx, dtype=np.uint32) * np.uint32(0x9E3779B9)).astype(np.uint32)
    z ^= z >> np.uint32(16)
    z *= np.uint32(0x7FEB352D)
    z ^= z >> np.uint32(15)
    z *= np.uint32(0x846CA68B)
    z ^= z >> np.uint32(16)
    return z


def round_clamp(x, lo, hi):
    """Round half away from zero as the C core does: trunc(x + copysign(0.5, x)), then clamp."""
    x = np.asarray(x, dtype=F32)
    r = (x + np.where(x >= 0, F32(0.5), F32(-0.5)).astype(F32)).astype(F32)
    r = np.clip(r, F32(lo), F32(hi))
    return np.trunc(r).astype(np.int64)


def stochastic_round(x, r):
    """floor(x) + (u < frac(x)) with u = (r >> 8) / 2^24, in float32 as the C core."""
    x = np.clip(np.asarray(x, dtype=F32), -STEP_LIMIT, STEP_LIMIT)
    t = np.trunc(x).astype(np.int64)
    t -= (t.astype(F32) > x)
    frac = (x - t.astype(F32)).astype(F32)
    u = (np.asarray(r, dtype=np.uint32) >> np.uint32(8)).astype(F32) * F32(2.0 ** -24)
    return t + (u < frac)


def apply_step(flags, w, shadow, step, lo, hi, draws=None):
    """One update of elements w (int64 array) by `step` (float32, int units) under the rule.
    shadow: the float32 master or the int8 fraction (updated in place), None for the other rules.
    draws: the random numbers of stochastic rounding, one per element. Returns (new w, skipped):
    a step that is not finite (master: a result that is not) leaves its element as it was."""
    rule = flags & RULE_MASK
    step = np.asarray(step, dtype=F32)
    w = np.asarray(w, dtype=np.int64)
    with np.errstate(all="ignore"):
        if rule == 0:
            new = (shadow - step).astype(F32)
            ok = np.isfinite(new)
            shadow[ok] = new[ok]
            return round_clamp(shadow, lo, hi), int(ok.size - np.count_nonzero(ok))
        ok = np.isfinite(step)
        step = np.where(ok, step, F32(0)).astype(F32)
        if rule == 1:
            s = round_clamp((step * F32(256)).astype(F32), -STEP_LIMIT, STEP_LIMIT)
            v = w * 256 + shadow.astype(np.int64) - s
            v = np.clip(v, lo * 256 - 128, hi * 256 + 127)
            nw = (v + 128) >> 8
            shadow[ok] = (v - nw * 256)[ok].astype(np.int8)
        else:
            k = stochastic_round(step, draws) if rule == 2 else round_clamp(step, -STEP_LIMIT, STEP_LIMIT)
            nw = np.clip(w - k, lo, hi)
    return np.where(ok, nw, w), int(ok.size - np.count_nonzero(ok))
