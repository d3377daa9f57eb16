# Training from Python: train_step, the same step written with layers, save and reload, memory.
import gc
import mcutrain
import os

data = open('model.mct', 'rb').read()
labels = open('labels.bin', 'rb').read()
a = mcutrain.Model(data)
b = mcutrain.Model(data)
size = os.stat('inputs.bin')[6] // len(labels)
inputs = open('inputs.bin', 'rb')       # one input at a time: the smallest heaps (stock firmware) have no room for all
layers = b.layers()
print([l.kind for l in layers])
print(layers[-1].trained, layers[-1].output_shape == (b.n_classes, 1, 1))
for i in range(len(labels)):
    x = inputs.read(size)
    if i == 0:
        x0 = x
    la = a.train_step(x, labels[i], 0.05)
    # the same step, one layer at a time
    b.set_input(x)
    for l in layers:
        l.forward()
    lb = b.loss_backward(labels[i])
    for l in reversed(layers):
        l.backward(0.05)
    assert la == lb, (la, lb)


class Sink:
    # the file's size up front: a bytearray grown piece by piece fragments the smallest heaps
    def __init__(self, n):
        self.data = bytearray(n)
        self.pos = 0
    def write(self, d):
        self.data[self.pos:self.pos + len(d)] = d
        self.pos += len(d)
        return len(d)


sa, sb = Sink(len(data)), Sink(len(data))
a.save(sa)
b.save(sb)
print('custom loop == train_step:', sa.data == sb.data)
x = x0
ya = bytes(a.forward(x))
del a, b, layers, l, sb     # the reloaded model takes their place on the smallest heaps (stock firmware)
gc.collect()
a = mcutrain.Model(sa.data)
print('reloaded == trained:', bytes(a.forward(x)) == ya)
print('saved != original:', bytes(sa.data) != data)
# nothing is allocated per step but the returned float: the heap stays flat. Compared between two
# step counts, since the GC may still see the last step's objects through old stack slots.
def free_after(steps):
    for i in range(steps):
        a.train_step(x, labels[0], 0.01)
    gc.collect()
    return gc.mem_free()


# A leak of even one byte per step would show over these 600 steps; the conservative GC's view of
# stale stack slots moves the figures by a few blocks at most.
free = [free_after(n) for n in (20, 20, 160, 400)]
print('heap flat:', max(free[1:]) - min(free[1:]) < 256)
info = a.mem_info()
print(sorted(info.keys()))
print(0 < info['arena_peak'] <= info['arena'], info['workspace'] >= info['arena'] + info['trained'])
print(info['steps'] == 600)               # counted since the reload
