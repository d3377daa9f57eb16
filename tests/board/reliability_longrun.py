# A long training run: the GC heap (free bytes after a collection) and the measured arena peak must
# stay flat from the first step to the last. steps.txt holds the number of steps.
import array
import gc
import mcutrain

steps = int(open('steps.txt').read())
m = mcutrain.Model(open('model.mct', 'rb').read())
xs = open('inputs.bin', 'rb').read()
labels = open('labels.bin', 'rb').read()
n = len(labels)
size = len(xs) // n
views = [memoryview(xs)[i * size:(i + 1) * size] for i in range(n)]
marks = [1, steps // 10, steps // 4, steps // 2, 3 * steps // 4, steps]
heap = [0] * len(marks)             # filled in place: small ints, nothing allocated to measure
peak = [0] * len(marks)
loss = array.array('f', [0.0, 0.0])    # mean loss of the first and of the last n steps, in place
for i in range(1, steps + 1):
    if i <= n:
        loss[0] += m.train_step(views[i % n], labels[i % n], 0.01) / n
    elif i > steps - n:
        loss[1] += m.train_step(views[i % n], labels[i % n], 0.01) / n
    else:
        m.train_step(views[i % n], labels[i % n], 0.01)
    if i in marks:
        k = marks.index(i)
        gc.collect()
        heap[k] = gc.mem_free()
        peak[k] = m.mem_info()['arena_peak']
        print('step', i, 'heap free', heap[k], 'arena peak', peak[k])
info = m.mem_info()
print('steps', info['steps'], 'skipped', info['skipped'], 'skipped updates', info['skipped_updates'])
print('loss first', loss[0], 'last', loss[1])
print('heap flat:', heap[0] == heap[-1], 'peak flat:', peak[0] == peak[-1] == info['arena_peak'])
