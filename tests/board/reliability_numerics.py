# Numerics: a loss that is not finite skips the step; an update that is not finite is not written
# (that element keeps its value, counted in mem_info()['skipped_updates']); nothing crashes.
import mcutrain

xs = open('inputs.bin', 'rb').read()
labels = open('labels.bin', 'rb').read()


class Sink:
    def __init__(self):
        self.data = bytearray()

    def write(self, d):
        self.data += d
        return len(d)


def saved(m):
    s = Sink()
    m.save(s)
    return bytes(s.data)


def run(name, lr, steps=12):
    data = open(name, 'rb').read()
    m = mcutrain.Model(data)
    size = len(xs) // len(labels)
    errors = 0
    for i in range(steps):
        try:
            m.train_step(xs[(i % len(labels)) * size:(i % len(labels) + 1) * size], labels[i % len(labels)], lr)
        except ValueError as e:
            errors += 1
            last = str(e)
    if errors:
        print(name, 'ValueError:', last)
    info = m.mem_info()
    out = saved(m)
    again = mcutrain.Model(out)            # what was saved loads again
    x = xs[:size]
    print(name, 'lr', lr, 'steps', info['steps'], 'skipped', info['skipped'], 'errors', errors,
          'updates skipped', info['skipped_updates'] > 0, 'unchanged', out == data,
          'predicts', 0 <= again.predict(x) < again.n_classes)
    return m, out


# the classifier's weight scales are denormal: every update of it overflows to inf and is skipped
m, out = run('tiny_scale.mct', 1e30)
fc = open('fc_range.txt').read().split()
lo, hi = int(fc[0]), int(fc[1])
print('classifier bytes unchanged:', out[lo:hi] == open('tiny_scale.mct', 'rb').read()[lo:hi])
# the softmax table holds a NaN: every loss is NaN, every step skipped, nothing written
run('nan_table.mct', 0.05)
# absurd learning rates on a sound model: huge steps clamp, infinite ones are skipped
for lr in (1e30, 3e38):
    run('model.mct', lr)
m, out = run('model.mct', 0.05)
