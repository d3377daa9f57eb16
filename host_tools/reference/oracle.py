"""numpy reference of the C core: the oracle of every test.

The forward pass is integer arithmetic and must match the C kernels bit for bit. The backward pass
and the updates are float32; every float32 operation here is one IEEE operation in the same order
as the C core (c_src/ is compiled with -ffp-contract=off), so training steps match bit for bit too.
Reductions are written as sequential loops (or np.cumsum) for that reason: numpy's own sum is
pairwise and would round differently.
"""
import numpy as np

import struct

from host_tools.model import graph as g
from host_tools.model import numerics
from host_tools.model.layout import from_device, to_device
from host_tools.model.mct_format import Model
from host_tools.reference import concat, lut, mul
from host_tools.reference.int_backward import IntBackward
from host_tools.reference.kernels import (add_z, avgpool2d_s8, avgpool_global_s8, clamp_mask, conv2d_z, fc_z,
                                         maxpool2d_s8, seq_sum_rows, softmax_exp, windows)

F32 = np.float32


round_to_int = numerics.round_clamp
BIAS_LIMIT = 2147483520     # the largest float32 below 2^31 (c_src/mct_sgd_qas.c)


class Reference:
    """Runs a loaded model (host_tools.model.mct_format.Model) like the device does."""

    def __init__(self, model: Model, qas=True):
        self.m = model
        self.qas = qas
        self.acts = [None] * len(model.acts)
        # the shadows of trained tensors under the update rule (header byte 50), as the device
        # keeps them: float32 masters, int8 fractions of a step, or none
        self.flags = model.train_flags
        rule = self.flags & numerics.RULE_MASK
        trained = [(i, t[:n]) for i, (t, n) in enumerate(zip(model.tensors, model.trained_count)) if n]
        self.shadow = {i: (t.astype(F32) if rule == 0 else np.zeros(t.size, np.int8) if rule == 1 else None)
                       for i, t in trained}
        self.master = self.shadow if rule == 0 else {}
        self.seed(struct.unpack_from("<I", model.data, 12)[0])      # the file's CRC, as the device
        self.grads = {}     # tensor index -> gradient of the last step, real units (for tests)
        self.skipped_steps = 0      # steps skipped because the loss was not finite
        self.skipped_updates = 0    # element updates not written because they were not finite

    def seed(self, seed):
        """Restart the stochastic-rounding stream (the device's mct_model_t rng_seed/rng_counter)."""
        self.rng_seed, self.rng_counter = int(seed) & 0xFFFFFFFF, 0

    def _draws(self, n):
        """The next n numbers of the stream (stochastic rule only; the others draw none)."""
        if self.flags & numerics.RULE_MASK != 2:
            return None
        idx = (self.rng_counter + np.arange(n, dtype=np.int64)) & 0xFFFFFFFF
        self.rng_counter = (self.rng_counter + n) & 0xFFFFFFFF
        return numerics.rng_at(self.rng_seed, idx)

    def _shape(self, a):
        return self.m.acts[a][:3]

    def t(self, i):
        return self.m.tensors[i]

    # -- forward ------------------------------------------------------------------------------
    def forward(self, x):
        """x: the input's bytes as the device takes them (channels last). The int8 output, in the
        device's order; self.logits keeps the last op's value before its clamp (int64), likewise.
        The activations (self.acts) are kept channel-planar, (C, H, W)."""
        m = self.m
        x = np.frombuffer(bytes(x), dtype=np.int8) if not isinstance(x, np.ndarray) else x.astype(np.int8)
        if x.ndim != 1:
            raise ValueError(f"the input must be the device's bytes (flat, channels last), not an array of shape "
                             f"{x.shape}: host_tools.model.layout.to_device puts (C, H, W) values in that order")
        self.acts[m.input] = from_device(x, self._shape(m.input))
        for op in m.ops:
            y, z = self.forward_op_z(op)
            self.acts[op.out] = y.reshape(self._shape(op.out))
        self.logits = to_device(z.reshape(self._shape(m.output)))
        return to_device(self.acts[m.output])

    def forward_op(self, op):
        return self.forward_op_z(op)[0]

    def forward_op_z(self, op):
        """(int8 output, int64 z): z is the output in integer steps from its zero point before the
        int8 clamp (conv, FC, add: the requantized accumulators; pools clamp nothing: y - zero)."""
        x = self.acts[op.in0]
        if op.type == g.CONV2D:
            o = self.t(op.bias).size
            wt = self.t(op.weight).reshape(o, x.shape[0] // op.groups, *op.kernel)
            z = conv2d_z(x, wt, self.t(op.bias), self.t(op.mult), self.t(op.shift), op.in0_zero,
                         op.stride, op.padding, op.groups)
        elif op.type == g.FC:
            o = self.t(op.bias).size
            z = fc_z(x, self.t(op.weight).reshape(o, -1), self.t(op.bias), self.t(op.mult), self.t(op.shift),
                     op.in0_zero)
        elif op.type == g.ADD:
            z = add_z(x, self.acts[op.in1], op)
        elif op.type == g.MUL:
            z = mul.mul_z(x, self.acts[op.in1], op)
        else:
            if op.type == g.AVGPOOL:
                y = avgpool_global_s8(x)
            elif op.type == g.MAXPOOL2D:
                y = maxpool2d_s8(x, op)
            elif op.type == g.AVGPOOL2D:
                y = avgpool2d_s8(x, op)
            elif op.type == g.LUT:
                y = lut.lut_s8(self.t(op.weight), x)
            elif op.type == g.CONCAT:
                y = concat.concat_s8(x, self.acts[op.in1], op)
            else:
                raise ValueError(f"unknown op type {op.type}")
            return y, y.astype(np.int64) - op.out_zero
        return np.clip(z + op.out_zero, op.act_min, op.act_max).astype(np.int8), z

    def predict(self, x):
        """The class of the largest unclamped logit (the first one on ties), as mct_argmax."""
        self.forward(x)
        return int(np.argmax(self.logits))

    # -- training -----------------------------------------------------------------------------
    def train_step(self, x, label, lr):
        """One SGD step of batch 1; returns the loss. Same order of float32 operations as C."""
        if self.flags & numerics.INT_BACKWARD:
            return IntBackward(self).train_step(x, label, lr)
        m = self.m
        lr = F32(lr)
        self.forward(x)
        e, d_label = softmax_exp(self.t(m.exp_table), self.logits, label)
        total = seq_sum_rows(e[None, :])[0]
        out_scale = F32(m.ops[-1].out_scale)
        loss = float(np.log(np.float64(total))) + float(out_scale) * float(d_label)
        if not np.isfinite(loss):
            self.skipped_steps += 1         # as the C core: the step is skipped, nothing updated
            return loss
        grads = {m.output: (e / total).astype(F32)}
        grads[m.output][label] = grads[m.output][label] - F32(1.0)
        written = set()
        for k in range(len(m.ops) - 1, -1, -1):
            op = m.ops[k]
            if op.out not in grads:
                continue
            self.backward_op(k, op, grads, written, lr)
        return loss

    def _grad_in(self, grads, written, k, a):
        """The gradient buffer of activation a, zeroed by its first writer (its last consumer)."""
        if m_acts_has_grad(self.m, a) and a not in written:
            grads[a] = np.zeros(int(np.prod(self._shape(a))), dtype=F32)
            written.add(a)
        return grads.get(a) if m_acts_has_grad(self.m, a) else None

    def backward_op(self, k, op, grads, written, lr):
        m = self.m
        y = self.acts[op.out].reshape(-1).astype(np.int64)
        gout = grads[op.out]
        if op.type == g.AVGPOOL:
            gin = self._grad_in(grads, written, k, op.in0)
            if gin is not None:
                c, h, w = self._shape(op.in0)
                gin.reshape(c, h * w)[:] += (gout / F32(h * w))[:, None]
            return
        if op.type in (g.MAXPOOL2D, g.AVGPOOL2D):
            gin = self._grad_in(grads, written, k, op.in0)
            if gin is not None:
                self._pool_input_grad(op, gout, gin)
            return
        if op.type == g.LUT:
            gin = self._grad_in(grads, written, k, op.in0)
            if gin is not None:
                lut.lut_input_grad_f32(self.t(op.wscale), self.acts[op.in0], gout, gin)
            return
        if op.type == g.CONCAT:
            concat.concat_input_grad_f32(self, grads, written, k, op, gout)
            return
        mask = clamp_mask(m, k, op, y)
        gpre = np.where(mask, gout, F32(0.0)).astype(F32)
        if op.type == g.MUL:
            mul.mul_input_grads_f32(self, grads, written, k, op, gpre)
            return
        if op.type == g.ADD:
            for a in (op.in0, op.in1):
                gin = self._grad_in(grads, written, k, a)
                if gin is not None:
                    gin += gpre
            return
        o = self.t(op.bias).size
        x_scale = F32(op.in0_scale)
        wscale = self.t(op.wscale).astype(F32)
        gpre = gpre.reshape(o, -1)
        if op.type == g.CONV2D:
            # (the core goes channel by channel; each channel's bias, input-gradient share and
            # weights only depend on that channel, so whole-tensor steps give the same numbers)
            gb = seq_sum_rows(gpre)
            bias_draws, weight_draws = self._conv_draws(op, o)
            if m.trainable[op.bias]:
                self._update_bias(op, gb, wscale, x_scale, lr, bias_draws)
            gin = self._grad_in(grads, written, k, op.in0)
            if gin is not None:
                self._conv_input_grad(op, gpre, wscale, gin)
            if m.trainable[op.weight]:
                self._update_conv_weight(op, gpre, wscale, x_scale, lr, weight_draws)
            return
        # FC: input gradient with the weights before this step's update, then the updates
        gin = self._grad_in(grads, written, k, op.in0)
        gb = gpre[:, 0]
        if gin is not None:
            t = gb * wscale
            w = self.t(op.weight).reshape(o, -1).astype(F32)
            for oo in range(o):
                gin += w[oo] * t[oo]
        if m.trainable[op.weight]:
            x = self.acts[op.in0].reshape(-1).astype(np.int64) - op.in0_zero
            n = m.trained_count[op.weight] // x.size
            self.grads[op.weight] = gb[:n, None] * (x_scale * x.astype(F32))[None, :]
            c = (lr * gb[:n]) * x_scale
            c = c / wscale[:n] if self.qas else c * wscale[:n]
            step = (c[:, None] * x.astype(F32)[None, :]).reshape(-1)
            self._apply(op.weight, step, -127, 127, self._draws(step.size))
        # the C core updates the biases after the weights (their random numbers come next)
        if self.m.trainable[op.bias]:
            self._update_bias(op, gb, wscale, x_scale, lr, self._draws(gb.size))

    def _update_bias(self, op, gb, wscale, x_scale, lr, draws):
        self.grads[op.bias] = gb.copy()
        step = (lr * gb) / (wscale * x_scale) if self.qas else (lr * gb) * (wscale * x_scale)
        self._apply(op.bias, step, -BIAS_LIMIT, BIAS_LIMIT, draws)

    def _apply(self, t, step, lo, hi, draws):
        """The trained prefix of tensor t after `step` (float32, int units, flat) under the update
        rule; steps that are not finite are skipped and counted (numerics.apply_step)."""
        n = step.size
        cur = self.m.tensors[t][:n].astype(np.int64)
        new, skipped = numerics.apply_step(self.flags, cur, self.shadow[t], step.reshape(-1), lo, hi, draws)
        self.m.tensors[t][:n] = new
        self.skipped_updates += skipped

    def _pool_input_grad(self, op, gout, gin):
        """Each output's gradient to its window, in output order: the first maximum (max pool) or
        every position inside the input, divided by kH*kW (average pool)."""
        c, h, w = self._shape(op.in0)
        _, oh, ow = self._shape(op.out)
        (kh, kw), (sh, sw), (ph, pw) = op.kernel, op.stride, op.padding
        g3 = gin.reshape(c, h, w)
        gout = gout.reshape(c, oh, ow)
        if op.type == g.MAXPOOL2D:
            win = windows(self.acts[op.in0].astype(np.int64), op.kernel, op.stride, op.padding, -129)
            first = win.argmax(axis=-1)                  # argmax returns the first maximum
        else:
            v = gout / F32(kh * kw)
        chans = np.arange(c)
        for oy in range(oh):
            for ox in range(ow):
                if op.type == g.MAXPOOL2D:
                    iy = oy * sh - ph + first[:, oy, ox] // kw
                    ix = ox * sw - pw + first[:, oy, ox] % kw
                    g3[chans, iy, ix] += gout[:, oy, ox]
                    continue
                for ky in range(kh):
                    iy = oy * sh - ph + ky
                    if not 0 <= iy < h:
                        continue
                    for kx in range(kw):
                        ix = ox * sw - pw + kx
                        if 0 <= ix < w:
                            g3[:, iy, ix] += v[:, oy, ox]

    def _conv_draws(self, op, o):
        """The random numbers of a conv's updates, in the C core's order: channel by channel, the
        bias of channel o, then its weights (the trained rows only)."""
        m = self.m
        nb = np.full(o, 1 if m.trainable[op.bias] else 0, dtype=np.int64)
        row = self.t(op.weight).size // o
        n = m.trained_count[op.weight] // row if m.trainable[op.weight] else 0
        nw = np.where(np.arange(o) < n, row, 0)
        draws = self._draws(int(nb.sum() + nw.sum()))
        if draws is None:
            return None, None
        start = np.concatenate([[0], np.cumsum(nb + nw)[:-1]])
        bias = draws[start] if nb.any() else None
        weight = draws[(start[:n, None] + nb[:n, None] + np.arange(row)[None, :]).reshape(-1)] if n else None
        return bias, weight

    def _update_conv_weight(self, op, gpre, wscale, x_scale, lr, draws):
        """The trained rows: dW[o, c, ky, kx] = sum over output positions (row-major) of
        g[o, p] * (x - x_zero) at the tap's input position; then the QAS step, in place."""
        m = self.m
        c, h, w = self._shape(op.in0)
        _, oh, ow = self._shape(op.out)
        o = gpre.shape[0]
        cpg, opg = c // op.groups, o // op.groups
        kh, kw = op.kernel
        sh, sw = op.stride
        ph, pw = op.padding
        row = cpg * kh * kw
        n = m.trained_count[op.weight] // row
        xp = np.zeros((c, h + 2 * ph + sh * oh, w + 2 * pw + sw * ow), dtype=F32)   # padding adds 0
        xp[:, ph:ph + h, pw:pw + w] = self.acts[op.in0].astype(F32) - F32(op.in0_zero)
        # taps[o, c, ky, kx, p]: the input each weight meets at output position p
        groups = np.arange(n) // opg
        chans = groups[:, None] * cpg + np.arange(cpg)[None, :]                      # [n, cpg]
        g2 = gpre[:n].reshape(n, oh * ow)
        total = np.zeros((n, cpg, kh, kw), dtype=F32)
        for p in range(oh * ow):
            oy, ox = divmod(p, ow)
            iy, ix = oy * sh + np.arange(kh), ox * sw + np.arange(kw)
            patch = xp[chans][:, :, iy][:, :, :, ix]                                  # [n, cpg, kh, kw]
            total += g2[:, p][:, None, None, None] * patch
        self.grads[op.weight] = total * x_scale
        step = (lr * total) * x_scale
        ws = wscale[:n, None, None, None]
        step = step / ws if self.qas else step * ws
        self._apply(op.weight, step.reshape(-1), -127, 127, draws)

    def _conv_input_grad(self, op, gpre, wscale, gin):
        """gin[c, ih, iw] += W[o, c, kh, kw] * (g[o, oh, ow] * w_scale[o]), in (o, kh, kw) order."""
        t = gpre * wscale[:, None]
        c, h, w = self._shape(op.in0)
        o = t.shape[0]
        _, oh, ow = self._shape(op.out)
        groups = op.groups
        cpg, opg = c // groups, o // groups
        kh, kw = op.kernel
        sh, sw = op.stride
        ph, pw = op.padding
        wt = self.t(op.weight).reshape(o, cpg, kh, kw).astype(F32)
        t = t.reshape(groups, opg, oh, ow)
        gp = np.zeros((groups, cpg, h + 2 * ph + sh, w + 2 * pw + sw), dtype=F32)
        gp[:, :, ph:ph + h, pw:pw + w] = gin.reshape(groups, cpg, h, w)
        wg = wt.reshape(groups, opg, cpg, kh, kw)
        for j in range(opg):
            for i in range(kh):
                for jj in range(kw):
                    contrib = wg[:, j, :, i, jj][:, :, None, None] * t[:, j][:, None, :, :]
                    gp[:, :, i:i + sh * oh:sh, jj:jj + sw * ow:sw] += contrib
        # contributions that fell on padding are dropped, as the C kernel never computes them
        gin[:] = gp[:, :, ph:ph + h, pw:pw + w].reshape(-1)


def m_acts_has_grad(model, a):
    return model.acts[a][4] is not None
