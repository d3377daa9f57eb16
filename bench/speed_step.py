# Runs on a board for bench/bench_speed.py: microseconds per inference and per training step of
# model.mct on the images of data.bin (labels.bin). On the unix port that is the host's time; under
# qemu -icount shift=0 one emulated microsecond is 1000 instructions.
import time
import mcutrain
from romfile import load     # boards/lib/romfile.py, sent with this script

model = mcutrain.Model(open('model.mct', 'rb'))
data, labels = load('data.bin'), load('labels.bin')
n = len(labels)
size = len(data) // n
model.train_step(data[0:size], labels[0], 0.001)      # warm-up: first-call costs are not counted


def per_call_us(fn):
    t = time.ticks_us()
    for i in range(n):
        fn(i)
    return time.ticks_diff(time.ticks_us(), t) / n


fwd = per_call_us(lambda i: model.predict(data[i * size:(i + 1) * size]))
step = per_call_us(lambda i: model.train_step(data[i * size:(i + 1) * size], labels[i], 0.001))
info = model.mem_info()
# peak resident memory of this process since it started (Linux); boards have no /proc
hwm = -1
try:
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            hwm = int(line.split()[1])
except OSError:
    pass
print('RESULT %d %d %d %d' % (int(fwd), int(step), info['workspace'], hwm))
