"""numpy reference of the integer backward (header byte 50 bit 2, c_src/mct_backward_int.c).

Gradients are int32 mantissas with one exponent per activation (block floating point). Integer sums
are exact, so whole-tensor numpy operations give the C core's numbers as long as every rounding is
the same: the contributions T of each op, the rescaling of a buffer to a coarser exponent, the
renormalization after each op, the per-channel step factors (float32) and the update rules.
"""
import numpy as np

from host_tools.model import graph as g
from host_tools.model import numerics
from host_tools.reference.kernels import clamp_mask, softmax_exp, windows
from host_tools.reference.concat import concat_input_grad_int
from host_tools.reference.lut import lut_input_grad_int
from host_tools.reference.mul import mul_input_grads_int

F32 = np.float32
I64 = np.int64
BOUND_BITS = 29
BIAS_LIMIT = 2147483520
STEP_Q8_LIMIT = 1 << 38


def bitlen(v):
    """Bits of |v| (int64 array or scalar, |v| < 2^63)."""
    a = np.abs(np.asarray(v, dtype=I64)).astype(np.uint64)
    n = np.zeros(a.shape, dtype=I64)
    for b in range(64):
        n = np.where((a >> np.uint64(b)) != 0, b + 1, n)
    return n


def shift_round(v, s):
    """v * 2^-s rounded half up (s > 0, 0 beyond 62); v * 2^-s exactly (s <= 0), saturated at
    +-2^62 (as mct_shift_round)."""
    v = np.asarray(v, dtype=I64)
    s = np.broadcast_to(np.asarray(s, dtype=I64), v.shape)
    sr = np.clip(s, 1, 62)
    right = (v + (np.int64(1) << (sr - 1))) >> sr
    sl = np.clip(-s, 0, 62)
    big = (s < -62) | (np.abs(v).astype(np.uint64) >= (np.uint64(1) << (62 - sl).astype(np.uint64)))
    with np.errstate(over="ignore"):
        left = np.where(big, np.where(v < 0, -(1 << 62), 1 << 62), v * (np.int64(1) << sl))
    return np.where(s > 62, 0, np.where(s > 0, right, np.where(v == 0, 0, left)))


def f32_split(f):
    """float32 array -> (mant, exp) with f = mant * 2^exp exactly, |mant| < 2^24 (as mct_f32_split)."""
    u = np.asarray(f, dtype=F32).view(np.uint32).astype(I64)
    e = (u >> 23) & 0xFF
    mt = (u & 0x7FFFFF) | np.where(e != 0, 0x800000, 0)
    mt = np.where(u >> 31 != 0, -mt, mt)
    return mt, np.where(e != 0, e, 1) - 150


def step_q8(v, sh):
    v = np.asarray(v, dtype=I64)
    sh = np.broadcast_to(np.asarray(sh, dtype=I64), v.shape)
    sat = (sh < 0) & (v != 0) & (bitlen(v) - sh > 39)
    s = np.clip(shift_round(v, sh), -STEP_Q8_LIMIT, STEP_Q8_LIMIT)
    return np.where(sat, np.where(v < 0, -STEP_Q8_LIMIT, STEP_Q8_LIMIT), s)


def apply_q8(flags, w, shadow, s, ok, lo, hi, draws):
    """mct_apply_step_q8 on whole arrays: returns (new w, skipped)."""
    rule = flags & numerics.RULE_MASK
    w = np.asarray(w, dtype=I64)
    s = np.asarray(s, dtype=I64)
    if rule == 1:
        v = np.clip(w * 256 + shadow.astype(I64) - s, lo * 256 - 128, hi * 256 + 127)
        nw = (v + 128) >> 8
        shadow[ok] = (v - nw * 256)[ok].astype(np.int8)
    else:
        whole = s >> 8
        if rule == 2:
            k = whole + ((np.asarray(draws, dtype=np.uint32) >> np.uint32(24)).astype(I64) < s - whole * 256)
        else:
            k = (s + 128) >> 8
        nw = np.clip(w - k, lo, hi)
    return np.where(ok, nw, w), int(np.size(ok) - np.count_nonzero(ok))


def channel_factor(c, total, max_bits, e_t):
    """(ok, R, sh): the step of `total` (T units, exponent e_t) times float32 c, in 1/256."""
    c = np.asarray(c, dtype=F32)
    ok = np.isfinite(c)
    mc, ec = f32_split(np.where(ok, c, F32(0)))
    total = np.asarray(total, dtype=I64)
    d = np.maximum(bitlen(total) - max_bits, 0)
    return ok, shift_round(total, d) * mc, -(ec + e_t + 8) - d


class IntBackward:
    """The integer training step of a reference.Reference (which owns the model, the forward and the
    update-rule state)."""

    def __init__(self, ref):
        self.r = ref

    def train_step(self, x, label, lr):
        r, m = self.r, self.r.m
        lr = F32(lr)
        r.forward(x)
        ex, d_label = softmax_exp(r.t(m.exp_table), r.logits, label)
        mant, e = f32_split(ex)
        q = [int(v) for v in np.minimum(shift_round(np.maximum(mant, 0), -(e + 24)), 1 << 24)]
        total = sum(q)
        with np.errstate(divide="ignore"):
            loss = float(np.log(np.float64(total) / 2 ** 24)) + float(F32(m.ops[-1].out_scale)) * float(d_label)
        if not np.isfinite(loss):
            r.skipped_steps += 1
            return loss
        grad = np.array([((v << 30) + total // 2) // total for v in q], dtype=I64)
        grad[label] -= 1 << 30
        self.grads = {m.output: grad}
        self.gexp = {m.output: -30}
        self.written = set()
        self.lr = lr
        for k in range(len(m.ops) - 1, -1, -1):
            op = m.ops[k]
            if op.out in self.grads:
                self.backward_op(k, op)
        return loss

    # -- gradient buffers ---------------------------------------------------------------------
    def _grad_in(self, a):
        m = self.r.m
        if m.acts[a][4] is None:
            return None
        if a not in self.written:
            self.grads[a] = np.zeros(int(np.prod(m.acts[a][:3])), dtype=I64)
            self.gexp[a] = None
            self.written.add(a)
        return self.grads[a]

    def _align(self, a, e_t):
        cur = self.gexp[a]
        if cur is None or cur >= e_t:
            if cur is None:
                self.gexp[a] = e_t
            return self.gexp[a]
        self.grads[a][:] = shift_round(self.grads[a], e_t - cur)
        self.gexp[a] = e_t
        return e_t

    def _normalize(self, a):
        gr = self.grads[a]
        d = int(bitlen(np.abs(gr).max() if gr.size else 0)) - BOUND_BITS
        if d > 0:
            gr[:] = shift_round(gr, d)
            self.gexp[a] += d

    def _plain_shift(self, a, gout, e_g, div, n_terms):
        mx = int(np.abs(gout).max()) if gout.size else 0
        if mx:
            e_t = e_g - (28 - int(bitlen(mx)) + int(bitlen(div)) - int(bitlen(n_terms)))
        else:
            e_t = e_g if self.gexp[a] is None else self.gexp[a]
        return e_g - self._align(a, e_t)

    @staticmethod
    def _plain_value(gv, k, div):
        v = shift_round(gv, -k)
        if div > 1:
            v = np.sign(v) * ((np.abs(v) + div // 2) // div)
        return v

    # -- ops ----------------------------------------------------------------------------------
    def backward_op(self, k, op):
        r, m = self.r, self.r.m
        gout = self.grads[op.out]
        e_g = self.gexp[op.out]
        if op.type in (g.AVGPOOL, g.AVGPOOL2D, g.MAXPOOL2D):
            gin = self._grad_in(op.in0)
            if gin is None:
                return
            c, h, w = m.acts[op.in0][:3]
            if op.type == g.AVGPOOL:
                kk = self._plain_shift(op.in0, gout, e_g, h * w, 1)
                gin.reshape(c, h * w)[:] += self._plain_value(gout, kk, h * w)[:, None]
            else:
                n = op.kernel[0] * op.kernel[1]
                avg = op.type == g.AVGPOOL2D
                kk = self._plain_shift(op.in0, gout, e_g, n if avg else 1, n)
                self._pool_grad(op, self._plain_value(gout, kk, n if avg else 1), gin)
            self._normalize(op.in0)
            return
        if op.type == g.LUT:
            lut_input_grad_int(self, op, gout, e_g, r.acts[op.in0])
            return
        if op.type == g.CONCAT:
            concat_input_grad_int(self, op, gout, e_g)
            return
        y = r.acts[op.out].reshape(-1).astype(I64)
        gout[:] = np.where(clamp_mask(m, k, op, y), gout, 0)
        if op.type == g.MUL:
            mul_input_grads_int(self, op, gout, e_g)
            return
        if op.type == g.ADD:
            for a in (op.in0, op.in1):
                gi = self._grad_in(a)
                if gi is not None:
                    gi += self._plain_value(gout, self._plain_shift(a, gout, e_g, 1, 1), 1)
                    self._normalize(a)
            return
        o = r.t(op.bias).size
        gin = self._grad_in(op.in0)
        t2 = gout.reshape(o, -1)
        if op.type == g.CONV2D:
            c_in = m.acts[op.in0][0]
            n_terms = (o // op.groups) * op.kernel[0] * op.kernel[1]
        else:
            n_terms = o
        e_t = self._contributions(op, t2, n_terms, e_g, gin is not None)
        ws = r.t(op.wscale).astype(F32)
        if op.type == g.CONV2D:
            bias_draws, weight_draws = r._conv_draws(op, o)
            if m.trainable[op.bias]:
                self._bias_update(op, t2.sum(axis=1), e_t, ws, bias_draws)
            if gin is not None:
                self._conv_input_grad(op, t2, gin, c_in)
                self._normalize(op.in0)
            if m.trainable[op.weight]:
                self._conv_weight_update(op, t2, e_t, ws, weight_draws)
            return
        t = t2[:, 0]
        if gin is not None:
            w = r.t(op.weight).reshape(o, -1).astype(I64)
            gin += (w * t[:, None]).sum(axis=0)
            self._normalize(op.in0)
        if m.trainable[op.weight]:
            xv = r.acts[op.in0].reshape(-1).astype(I64) - op.in0_zero
            n = m.trained_count[op.weight] // xv.size
            ok, rr, sh = channel_factor(self._weight_factor(op, ws[:n]), t[:n], 30, e_t)
            s = step_q8(rr[:, None] * xv[None, :], sh[:, None])
            okk = np.broadcast_to(ok[:, None], s.shape)
            r.grads[op.weight] = (t[:n, None] * xv[None, :]).astype(np.float64) * 2.0 ** e_t / ws[:n, None] * op.in0_scale
            self._apply(op.weight, s.reshape(-1), okk.reshape(-1), -127, 127, r._draws(s.size))
        if m.trainable[op.bias]:
            self._bias_update(op, t, e_t, ws, r._draws(o))

    def _contributions(self, op, t2, n_terms, e_g, has_gin):
        """T = G * w_scale in a common exponent, written over G; returns that exponent."""
        mw, ew = f32_split(self.r.t(op.wscale).astype(F32))
        mx = np.abs(t2).max(axis=1)
        live = mx != 0
        bound = BOUND_BITS - int(bitlen(127 * n_terms))
        e_t = int((bitlen(mx * mw) + ew)[live].max()) + e_g - bound if live.any() else e_g
        if has_gin:
            e_t = self._align(op.in0, e_t)
        t2[:] = shift_round(t2 * mw[:, None], (e_t - e_g - ew)[:, None])
        return e_t

    def _weight_factor(self, op, ws):
        lr, xs = self.lr, F32(op.in0_scale)
        return ((lr * xs) / ws) / ws if self.r.qas else np.full(ws.shape, lr * xs, dtype=F32)

    def _bias_update(self, op, total, e_t, ws, draws):
        r = self.r
        lr, xs = self.lr, F32(op.in0_scale)
        c = ((lr / ws) / ws) / xs if r.qas else np.full(ws.shape, lr * xs, dtype=F32)
        ok, rr, sh = channel_factor(c, total, 38, e_t)
        r.grads[op.bias] = total.astype(np.float64) * 2.0 ** e_t / ws
        self._apply(op.bias, step_q8(rr, sh), ok, -BIAS_LIMIT, BIAS_LIMIT, draws)

    def _apply(self, t, s, ok, lo, hi, draws):
        r = self.r
        n = s.size
        new, skipped = apply_q8(r.flags, r.m.tensors[t][:n].astype(I64), r.shadow[t], s, ok, lo, hi, draws)
        r.m.tensors[t][:n] = new
        r.skipped_updates += skipped

    def _conv_weight_update(self, op, t2, e_t, ws, draws):
        r, m = self.r, self.r.m
        n = m.trained_count[op.weight] // (r.t(op.weight).size // t2.shape[0])
        total = conv_weight_sums(t2[:n], r.acts[op.in0], op.in0_zero, m.acts[op.out][1:3], op.kernel, op.stride,
                                 op.padding, op.groups, t2.shape[0])
        c_w = self._weight_factor(op, ws[:n])
        ok, rr, shf = channel_factor(np.broadcast_to(c_w[:, None, None, None], total.shape), total, 38, e_t)
        r.grads[op.weight] = total.astype(np.float64) * 2.0 ** e_t / ws[:n, None, None, None] * op.in0_scale
        self._apply(op.weight, step_q8(rr, shf).reshape(-1), ok.reshape(-1), -127, 127, draws)

    def _conv_input_grad(self, op, t2, gin, c):
        r, m = self.r, self.r.m
        gin += conv_input_grad(t2, r.t(op.weight), (c, *m.acts[op.in0][1:3]), m.acts[op.out][1:3], op.kernel,
                               op.stride, op.padding, op.groups)

    def _pool_grad(self, op, v, gin):
        """v (one value per output) to the window: every position inside (average) or the first
        maximum (max)."""
        m = self.r.m
        c, h, w = m.acts[op.in0][:3]
        _, oh, ow = m.acts[op.out][:3]
        (kh, kw), (sh, sw), (ph, pw) = op.kernel, op.stride, op.padding
        g3 = gin.reshape(c, h, w)
        v = v.reshape(c, oh, ow)
        chans = np.arange(c)
        if op.type == g.MAXPOOL2D:
            first = windows(self.r.acts[op.in0].astype(I64), op.kernel, op.stride, op.padding, -129).argmax(axis=-1)
        for oy in range(oh):
            for ox in range(ow):
                if op.type == g.MAXPOOL2D:
                    iy = oy * sh - ph + first[:, oy, ox] // kw
                    ix = ox * sw - pw + first[:, oy, ox] % kw
                    np.add.at(g3, (chans, iy, ix), v[:, oy, ox])
                    continue
                for ky in range(kh):
                    iy = oy * sh - ph + ky
                    for kx in range(kw):
                        ix = ox * sw - pw + kx
                        if 0 <= iy < h and 0 <= ix < w:
                            g3[:, iy, ix] += v[:, oy, ox]


def conv_weight_sums(t2, x, zero, out_hw, kernel, stride, padding, groups, n_out):
    """A conv's weight-gradient sums of its first len(t2) output channels: [n][cpg][kh][kw] int64,
    the sum over output positions of T * (x - zero) at each tap (x int8 [c][h][w], T [n][oh * ow],
    n_out the conv's output channels)."""
    c, h, w = x.shape
    oh, ow = out_hw
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    xp = np.zeros((c, h + 2 * ph + sh * oh, w + 2 * pw + sw * ow), dtype=I64)
    xp[:, ph:ph + h, pw:pw + w] = x.astype(I64) - zero
    n = t2.shape[0]
    cpg, opg = c // groups, n_out // groups
    chans = (np.arange(n) // opg)[:, None] * cpg + np.arange(cpg)[None, :]
    total = np.zeros((n, cpg, kh, kw), dtype=I64)
    for p in range(oh * ow):
        oy, ox = divmod(p, ow)
        patch = xp[chans][:, :, oy * sh + np.arange(kh)][:, :, :, ox * sw + np.arange(kw)]
        total += t2[:, p][:, None, None, None] * patch
    return total


def conv_input_grad(t2, weight, in_shape, out_hw, kernel, stride, padding, groups):
    """A conv's input-gradient sums of products w * T (int64, [c][h][w] flattened): T [o][oh * ow],
    weight int8 [o][cpg][kh][kw]."""
    c, h, w = in_shape
    oh, ow = out_hw
    o = t2.shape[0]
    cpg, opg = c // groups, o // groups
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    wg = np.asarray(weight).reshape(groups, opg, cpg, kh, kw).astype(I64)
    t = t2.reshape(groups, opg, oh, ow)
    gp = np.zeros((groups, cpg, h + 2 * ph + sh, w + 2 * pw + sw), dtype=I64)
    for j in range(opg):
        for i in range(kh):
            for jj in range(kw):
                gp[:, :, i:i + sh * oh:sh, jj:jj + sw * ow:sw] += wg[:, j, :, i, jj][:, :, None, None] * t[:, j][:, None]
    return gp[:, :, ph:ph + h, pw:pw + w].reshape(-1)
