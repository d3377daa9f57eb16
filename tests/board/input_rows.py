# The model input fed row by row (convert --input-buffer rows): for each case i, rows<i>.mct and the
# same graph whole<i>.mct (its input read in place), their inputs<i>.bin and labels<i>.bin. The rows
# model reads each frame from a reader: a file opened 'rb' (frame after frame), io.BytesIO, and a
# reader that gives a few bytes at a time. It must train and infer bit for bit like the whole model;
# the host compares what is printed with the numpy reference.
import io
import mcutrain


class Trickle:
    """A reader that gives at most `chunk` bytes per readinto, as a slow camera or a UART might."""
    def __init__(self, data, chunk):
        self.data, self.pos, self.chunk = data, 0, chunk

    def readinto(self, buf):
        k = min(len(buf), self.chunk, len(self.data) - self.pos)
        buf[:k] = self.data[self.pos:self.pos + k]
        self.pos += k
        return k


for i in range(int(open('count.txt').read())):
    rows = mcutrain.Model(open('rows%d.mct' % i, 'rb').read())
    whole = mcutrain.Model(open('whole%d.mct' % i, 'rb').read())
    xs = open('inputs%d.bin' % i, 'rb').read()
    labels = open('labels%d.bin' % i, 'rb').read()
    size = len(xs) // len(labels)
    rows.seed(1)
    whole.seed(1)
    print('case', i)
    logits = rows.forward(io.BytesIO(xs[:size]))
    print('logits', bytes(logits).hex())
    print('same logits:', bytes(logits) == bytes(whole.forward(xs[:size])),
          bytes(rows.forward(Trickle(xs[:size], 5))) == bytes(logits),
          bytes(rows.forward(xs[:size])) == bytes(logits),
          rows.predict(io.BytesIO(xs[:size])) == whole.predict(xs[:size]))
    f = open('inputs%d.bin' % i, 'rb')      # the frames one after the other, as a file read
    for j in range(len(labels)):
        loss = rows.train_step(f, labels[j], lr=0.05)
        print('loss', j, repr(loss), loss == whole.train_step(xs[j * size:(j + 1) * size], labels[j], 0.05))
    print('file read to its end:', f.read() == b'')
    print('same logits after training:', bytes(rows.forward(Trickle(xs[:size], 64))) == bytes(whole.forward(xs[:size])))
    out = io.BytesIO()
    rows.save(out)
    print('saved', out.getvalue().hex())
    info = rows.mem_info()
    print('memory rows', info['arena'], info['arena_peak'], info['workspace'])
    del rows
    # the same graph with its input whole in its RAM (--input-buffer model): a reader fills it too
    model = mcutrain.Model(open('model%d.mct' % i, 'rb').read())
    whole = mcutrain.Model(open('whole%d.mct' % i, 'rb').read())
    model.seed(1)
    whole.seed(1)
    frame = model.input_buffer()
    frame[:] = xs[:size]
    a = model.train_step(frame, labels[0], 0.05)
    b = model.train_step(io.BytesIO(xs[size:2 * size]), labels[1], 0.05)
    print('model buffer with a reader:', a == whole.train_step(xs[:size], labels[0], 0.05),
          b == whole.train_step(xs[size:2 * size], labels[1], 0.05))
    info = model.mem_info()
    print('memory model', info['arena'], info['arena_peak'], info['workspace'])
    del model, whole
