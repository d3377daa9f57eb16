# Instructions per inference and per training step on an emulated MCU, run under qemu -icount
# shift=0 (1 emulated ns = 1 instruction), so ticks_us() * 1000 counts instructions.
import time
import mcutrain

model = mcutrain.Model(open('fashion.mct', 'rb'))
SIZE = 28 * 28
data = memoryview(open('train.bin', 'rb'))     # in Flash (ROMFS), not copied
labels = open('train_labels.bin', 'rb').read()
N = 10


def instructions(fn):
    t = time.ticks_us()
    for i in range(N):
        fn(i)
    return time.ticks_diff(time.ticks_us(), t) * 1000 // N


fwd = instructions(lambda i: model.predict(data[i * SIZE:(i + 1) * SIZE]))
step = instructions(lambda i: model.train_step(data[i * SIZE:(i + 1) * SIZE], labels[i], 0.05))
info = model.mem_info()
print('RESULT', fwd, step, info['workspace'], info['arena'], info['trained'])
