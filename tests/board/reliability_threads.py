# Two threads training one model at once (ports with _thread): a core call holds the GIL, or on
# ports without one (unix) the model's lock, so each step runs whole; nothing crashes and every
# step is counted.
import _thread
import time
import mcutrain

m = mcutrain.Model(open('model.mct', 'rb').read())
xs = open('inputs.bin', 'rb').read()
labels = open('labels.bin', 'rb').read()
size = len(xs) // len(labels)
done = []
lock = _thread.allocate_lock()


def worker(k):
    losses = 0
    for i in range(150):
        j = (i + k) % len(labels)
        loss = m.train_step(xs[j * size:(j + 1) * size], labels[j], 0.01)
        losses += loss == loss          # finite, not NaN
        m.predict(xs[:size])
    with lock:
        done.append(losses)


for k in range(2):
    _thread.start_new_thread(worker, (k,))
while len(done) < 2:
    time.sleep_ms(10)
info = m.mem_info()
print(done, info['steps'], info['skipped'])
