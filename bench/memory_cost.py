# Peak memory and instructions of training steps of one model on an emulated MCU (make
# bench-memory). Run under qemu -icount shift=0, so ticks_us() * 1000 counts instructions.
# The model and the images stay in Flash (ROMFS); the GC heap holds the model object and its
# workspace (arena + trained copies), which a training step allocates nothing beyond.
import gc
import time

import board
import mcutrain

gc.collect()
heap_before = gc.mem_alloc()
model = mcutrain.Model(open('model.mct', 'rb'))
c, h, w = model.input_shape
size = c * h * w
data = memoryview(open('images.bin', 'rb'))
labels = open('labels.bin', 'rb').read()
n = len(labels)
mode = open('mode.txt').read()
# 'model': each image goes into the model's own input buffer first, as a camera frame would;
# 'rows': the model reads each image band by band from a reader, as from a camera (the file here)
frame = model.input_buffer() if mode == 'model' else None
camera = open('images.bin', 'rb') if mode == 'rows' else None


def image(i):
    if camera is not None:
        return camera                               # the next frame, read as the forward needs it
    if frame is None:
        return data[i * size:(i + 1) * size]      # read in place, from Flash
    frame[:] = data[i * size:(i + 1) * size]
    return frame


gc.collect()
heap_model = gc.mem_alloc()
model.train_step(image(0), labels[0], 0.01)      # first step: the trained copies are warm
t = time.ticks_us()
for i in range(1, n):
    model.train_step(image(i), labels[i], 0.01)
step = time.ticks_diff(time.ticks_us(), t) * 1000 // (n - 1)
heap_after = gc.mem_alloc()
info = model.mem_info()
print('RESULT', step, info['arena'], info['arena_peak'], info['trained'], info['workspace'],
      heap_before, heap_model, heap_after, gc.mem_free() + heap_after, board.stack_high_water(),
      board.stack_size())
