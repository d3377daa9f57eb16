# Hostile use from Python: a model buffer changed after loading, wrong types, arguments whose
# conversion runs Python code, out of memory. Each gets an exception naming the problem; the board
# never crashes and the model and the heap stay usable (run on every board).
import gc
import struct
import mcutrain

good = open('model.mct', 'rb').read()
c, h, w = mcutrain.Model(good).input_shape
x = bytes(c * h * w)


def expect(exc, f, *args, **kw):
    try:
        f(*args, **kw)
    except exc as e:
        print(exc.__name__ + ':', e)
    else:
        print('no', exc.__name__)


def tensors(buf):
    n, t_off = struct.unpack_from('<H', buf, 16)[0], struct.unpack_from('<I', buf, 28)[0]
    out = []
    for t in range(n):
        off, count, dtype = struct.unpack_from('<IIB', buf, t_off + 16 * t)
        out.append((off, count * (1 if dtype == 1 else 4)))
    return out


class Sink:
    def write(self, d):
        return len(d)


print('-- a bytearray model modified in place')
ba = bytearray(good)
m = mcutrain.Model(ba)
m.train_step(x, 0, 0.05)
# every tensor's data (weights, biases, multipliers, shifts, scales, the softmax table) may be
# changed: it takes effect, unchecked, and no value makes a kernel misbehave
seed = 1
for fill in (0x00, 0xFF, 0x7F, 0x80, None):
    for off, size in tensors(good):
        for i in range(off, off + size):
            if fill is None:
                seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
                ba[i] = seed >> 16 & 0xFF
            else:
                ba[i] = fill
    m.forward(x)
    m.predict(x)
    try:
        m.train_step(x, 1, 0.5)
    except ValueError as e:
        print('fill', fill, 'ValueError:', e)
    info = m.mem_info()
    print('fill', fill, 'ok; steps', info['steps'])
ba[:] = good
print('restored:', len(m.forward(x)) == m.n_classes)
# the header and tables are checked on every call: a change is refused
t_off = struct.unpack_from('<I', good, 28)[0]
ba[t_off] ^= 0x40                       # a tensor's data offset
expect(ValueError, m.forward, x)
expect(ValueError, m.train_step, x, 0, 0.1)
expect(ValueError, m.save, Sink())
expect(ValueError, getattr, m, 'n_classes')
ba[t_off] ^= 0x40
print('tables restored:', len(m.forward(x)) == m.n_classes)
# resized: refused; back to its size (moved in the heap): used where it now is
ba.extend(bytes(4000))
expect(ValueError, m.forward, x)
expect(ValueError, m.layers()[0].forward)
expect(ValueError, repr, m.layers()[0])
ba[len(good):] = b''
print('same size again, moved:', len(m.forward(x)) == m.n_classes, type(m.train_step(x, 0, 0.01)) is float)


print('-- arguments whose conversion runs Python code')
class Evil:
    # resizes the model buffer (its old storage is freed and overwritten) while train_step
    # converts its arguments
    def __int__(self):
        ba.extend(bytes(64))
        junk = [bytearray(b'\xff' * 256) for i in range(8)]
        return 0

    def __float__(self):
        return self.__int__() + 0.01


expect(ValueError, m.train_step, x, Evil(), 0.1)
ba[len(good):] = b''
expect(ValueError, m.train_step, x, 0, Evil())
ba[len(good):] = b''
expect(ValueError, m.loss_backward, Evil())
ba[len(good):] = b''
expect(ValueError, m.layers()[-1].backward, Evil())
ba[len(good):] = b''


class Saboteur:
    # a stream whose write() resizes the model buffer in the middle of save()
    n = 0

    def write(self, d):
        self.n += 1
        if self.n == 2:
            ba.extend(bytes(64))
        return len(d)


expect(ValueError, m.save, Saboteur())
ba[len(good):] = b''
print('still works:', len(m.forward(x)) == m.n_classes)


print('-- wrong types')
expect(TypeError, mcutrain.Model, None)
expect(TypeError, mcutrain.Model, [1, 2, 3])
expect(ValueError, mcutrain.Model, 'MCTR')
expect(ValueError, mcutrain.Model, bytearray(100))
expect(TypeError, m.forward, None)
expect(TypeError, m.forward, [0] * len(x))
expect(TypeError, m.forward, x, bytes(m.n_classes))
expect(TypeError, m.forward, x, 5)
expect(TypeError, m.train_step, x, 1.5, 0.1)
expect(TypeError, m.train_step, x, '1', 0.1)
expect(TypeError, m.train_step, x, 0, 'fast')
expect(TypeError, m.train_step, x, 0, None)
expect(TypeError, m.layers()[0].backward, 'x')
expect(OverflowError, m.train_step, x, 1 << 100, 0.1)
expect(ValueError, m.train_step, x, 0, -0.5)
expect(ValueError, m.train_step, bytearray(len(x) + 1), 0, 0.1)
expect(AttributeError, m.save, 42)
print('model works:', len(m.forward(x)) == m.n_classes)


print('-- out of memory')


def largest_block():
    """The largest bytearray the heap gives now, to 256 bytes (a binary search)."""
    gc.collect()
    lo, hi = 0, gc.mem_free()
    while hi - lo > 256:
        mid = (lo + hi) // 2
        try:
            b = bytearray(mid)
            del b
            lo = mid
        except MemoryError:
            hi = mid
    gc.collect()
    return lo


# the file itself, not a copy read into RAM first: a 76 KB copy does not fit beside a native module's
# code in the heap, and the MemoryError under test is the model's own (its workspace)
before = largest_block()
expect(MemoryError, mcutrain.Model, open('huge.mct', 'rb'))
expect(MemoryError, mcutrain.Model, open('huge.mct', 'rb'))
# the heap is as whole as before (give or take the exceptions' few objects), and models load
print('large block after MemoryError:', largest_block() >= before - 1024)
m2 = mcutrain.Model(good)
print('model after MemoryError:', type(m2.train_step(x, 0, 0.01)) is float)
