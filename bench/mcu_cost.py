# Instructions per inference and per training step on an emulated MCU, run under qemu -icount
# shift=0 (1 emulated ns = 1 instruction), so ticks_us() * 1000 counts instructions.
# Files: model.mct, images.bin (int8 inputs one after another, read in place from ROMFS),
# labels.bin, runs.txt ("N_FORWARD N_STEPS PROFILE [PER_US]": how many of each, 1 for a per-layer
# profile, and the counted units per emulated us: 1000 instructions under qemu -icount shift=0,
# 125 cycles in rp2040js). Prints RESULT and, with the profile, one LAYER line per op (forward and backward).
import time
import mcutrain

model = mcutrain.Model(open('model.mct', 'rb'))
n_fwd, n_step, profile, *per_us = map(int, open('runs.txt').read().split())
PER_US = per_us[0] if per_us else 1000
layers = model.layers()
c, h, w = layers[0].input_shape
SIZE = c * h * w
data = memoryview(open('images.bin', 'rb'))
labels = open('labels.bin', 'rb').read()


def image(i):
    return data[i * SIZE:(i + 1) * SIZE]


def instructions(fn, n):
    t = time.ticks_us()
    for i in range(n):
        fn(i)
    return time.ticks_diff(time.ticks_us(), t) * PER_US // n


fwd = instructions(lambda i: model.predict(image(i)), n_fwd)
step = instructions(lambda i: model.train_step(image(i), labels[i], 0.05), n_step)
info = model.mem_info()
print('RESULT', fwd, step, info['workspace'], info['arena'], info['trained'])

if profile:
    # the same training step, op by op (Layer.forward/backward are what train_step runs)
    f = [0] * len(layers)
    b = [0] * len(layers)
    for i in range(n_step):
        model.set_input(image(i))
        for k, l in enumerate(layers):
            t = time.ticks_us()
            l.forward()
            f[k] += time.ticks_diff(time.ticks_us(), t)
        model.loss_backward(labels[i])
        for k in range(len(layers) - 1, -1, -1):
            t = time.ticks_us()
            layers[k].backward(0.05)
            b[k] += time.ticks_diff(time.ticks_us(), t)
    for k, l in enumerate(layers):
        print('LAYER', k, l.kind, f[k] * PER_US // n_step, b[k] * PER_US // n_step)
