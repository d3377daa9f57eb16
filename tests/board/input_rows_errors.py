# Bad input to a model fed row by row (convert --input-buffer rows): each refused with a clear
# exception, the model unchanged (trained tensors, step count), and the model usable right after.
# rows.mct and whole.mct (the same graph, its input read in place), one input and its label.
import io
import mcutrain

rows = mcutrain.Model(open('rows.mct', 'rb').read())
whole = mcutrain.Model(open('whole.mct', 'rb').read())
x = open('inputs.bin', 'rb').read()
label = open('labels.bin', 'rb').read()[0]
blob = rows.update_blob()


class Raising:
    def __init__(self, after):
        self.after = after

    def readinto(self, buf):
        if self.after <= 0:
            raise OSError('camera unplugged')
        self.after -= 1
        return len(buf)


class Counting:
    """readinto returning something else than the bytes it read."""
    def __init__(self, value):
        self.value = value

    def readinto(self, buf):
        return self.value(buf)


class Reentrant:
    """A reader that uses the model in the middle of its step."""
    def readinto(self, buf):
        return len(rows.forward(x))


class Keeping:
    """A reader that keeps the buffer it was given."""
    kept = []

    def __init__(self, data):
        self.f = io.BytesIO(data)

    def readinto(self, buf):
        self.kept.append(buf)
        return self.f.readinto(buf)


def attempt(what, f):
    try:
        f()
        print(what, 'no error')
    except Exception as e:
        print(what, type(e).__name__, e)
    print('  unchanged:', rows.update_blob() == blob, rows.mem_info()['steps'] == 0)


attempt('short', lambda: rows.train_step(io.BytesIO(x[:-5]), label, lr=0.05))
attempt('empty', lambda: rows.forward(io.BytesIO(b'')))
attempt('raises at once', lambda: rows.train_step(Raising(0), label, lr=0.05))
attempt('raises later', lambda: rows.train_step(Raising(1), label, lr=0.05))
attempt('too many', lambda: rows.train_step(Counting(lambda b: len(b) + 1), label, lr=0.05))
attempt('not a count', lambda: rows.train_step(Counting(lambda b: 'all'), label, lr=0.05))
attempt('reentrant', lambda: rows.train_step(Reentrant(), label, lr=0.05))
attempt('no readinto', lambda: rows.train_step(42, label, lr=0.05))
attempt('bad label', lambda: rows.train_step(io.BytesIO(x), 999, lr=0.05))
attempt('short buffer', lambda: rows.train_step(x[:-1], label, lr=0.05))
attempt('input_buffer', lambda: rows.input_buffer())
attempt('in place', lambda: whole.predict(io.BytesIO(x)))
# still usable: the same step as the same graph fed the whole frame
rows.seed(1)
whole.seed(1)
k = Keeping(x)
print('then trains:', rows.train_step(k, label, lr=0.05) == whole.train_step(x, label, 0.05))
print('kept buffers empty:', all(len(b) == 0 for b in k.kept), len(k.kept) > 0)
