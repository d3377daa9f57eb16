# A model whose input is a buffer of its own (convert --input-buffer model) trains exactly like the
# same model reading its input in place; its input_buffer() keeps the model's RAM alive.
import gc
import mcutrain

caller = mcutrain.Model(open('caller.mct', 'rb').read())
model = mcutrain.Model(open('model.mct', 'rb').read())
xs = open('inputs.bin', 'rb').read()
labels = open('labels.bin', 'rb').read()
size = len(xs) // len(labels)
caller.seed(1)
model.seed(1)
frame = model.input_buffer()
print('size:', len(frame) == size)
same = True
for i in range(len(labels)):
    x = xs[i * size:(i + 1) * size]
    frame[:] = x                      # as a camera would write its frame
    same = same and caller.train_step(x, labels[i], 0.05) == model.train_step(frame, labels[i], 0.05)
print('same losses:', same)
print('same logits:', bytes(caller.forward(xs[:size])) == bytes(model.forward(xs[:size])))
try:
    caller.input_buffer()
except ValueError as e:
    print('ValueError:', e)
# the view keeps the model's RAM: fill it, drop the model, churn the heap, read it back
frame[:] = bytes(i % 251 for i in range(size))
del model
gc.collect()
junk = [bytearray(64) for _ in range(200)]
print('view intact:', bytes(frame) == bytes(i % 251 for i in range(size)))
