# Bad input from Python gets an exception that names the problem (run on every board).
import gc

import mcutrain

good = open('model.mct', 'rb').read()
huge = open('huge.mct', 'rb').read()      # read while the heap is fresh: small heaps fragment


def expect(exc, f, *args, **kw):
    try:
        f(*args, **kw)
    except exc as e:
        print(exc.__name__ + ':', e)
    else:
        print('no', exc.__name__)


expect(ValueError, mcutrain.Model, good[:40])
expect(ValueError, mcutrain.Model, good[:-3])
expect(ValueError, mcutrain.Model, b'XXXX' + good[4:])
bad = bytearray(good)
bad[len(bad) // 2] ^= 1
expect(ValueError, mcutrain.Model, bad)
del bad     # small heaps (stock firmware, files in RAM) need the room for the models
gc.collect()
m = mcutrain.Model(good)
c, h, w = m.input_shape
x = bytes(c * h * w)
expect(TypeError, mcutrain.Model, 12345)
expect(ValueError, m.forward, x[:-1])
expect(ValueError, m.forward, x + b'\0')
expect(TypeError, m.forward, 3.5)
expect(ValueError, m.train_step, x, m.n_classes, 0.1)
expect(ValueError, m.train_step, x, -1, 0.1)
expect(ValueError, m.train_step, x, 0, float('nan'))
expect(ValueError, m.train_step, x, 0, float('inf'))
expect(ValueError, m.forward, x, bytearray(m.n_classes + 1))
expect(ValueError, m.layers()[0].backward, float('nan'))
# the model still works after every error
print(len(m.forward(x)) == m.n_classes, type(m.train_step(x, 0, 0.01)) is float)
gc.collect()
frozen = mcutrain.Model(open('frozen.mct', 'rb').read())
print(len(frozen.forward(x)) == frozen.n_classes)
expect(ValueError, frozen.train_step, x, 0, 0.1)
expect(MemoryError, mcutrain.Model, huge)
# the heap is usable after the MemoryError
print(len(bytearray(1000)))
