# Train and save with mcutrain_util.save_atomic() in a loop, forever (until the host kills the
# process): the host checks after each kill that model.mct (or its .tmp) loads.
import mcutrain, mcutrain_util

xs = open('inputs.bin', 'rb').read()
m = mcutrain_util.load('model.mct')
size = m.input_shape[0] * m.input_shape[1] * m.input_shape[2]
i = 0
print('ready')
while True:
    m.train_step(xs[(i % 12) * size:(i % 12 + 1) * size], i % m.n_classes, 0.01)
    mcutrain_util.save_atomic(m, 'model.mct')
    i += 1
