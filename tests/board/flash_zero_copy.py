# A model in ROMFS is used in place: loading it takes its workspace from the heap, not its size.
import gc
import mcutrain

f = open('big.mct', 'rb')
size = len(memoryview(f))
gc.collect()
before = gc.mem_alloc()
m = mcutrain.Model(f)
gc.collect()
taken = gc.mem_alloc() - before
info = m.mem_info()
print('model bytes', info['model'] == size, size > 100000)
print('heap taken = workspace:', info['workspace'] <= taken < info['workspace'] + 512)
print('model not copied:', taken < size // 4)
c, h, w = m.input_shape
print(m.predict(bytes(c * h * w)) >= 0)
