# The update blob on a board (tests/test_fleet_board.py checks the output against the C core and
# the numpy reference on the host): read the trained tensors out, load them into a fresh model,
# and refuse each bad blob of bad.bin (length-prefixed) without changing the model.
import mcutrain


def read(name):
    with open(name, 'rb') as f:
        return f.read()


model = read('model.mct')
m = mcutrain.Model(model)
xs, labels = read('inputs.bin'), read('labels.bin')
size = len(xs) // len(labels)
for i in range(len(labels)):
    m.train_step(xs[i * size:(i + 1) * size], labels[i], 0.05)
blob = m.update_blob()
print('blob', blob.hex())
fresh = mcutrain.Model(model)
fresh.load_update(blob)
print('loaded', fresh.update_blob() == blob)
bad = read('bad.bin')
pos = 0
while pos < len(bad):
    n = int.from_bytes(bad[pos:pos + 4], 'little')
    try:
        fresh.load_update(bad[pos + 4:pos + 4 + n])
        print('accepted')
    except ValueError as e:
        print('refused', e)
    pos += 4 + n
print('unchanged', fresh.update_blob() == blob)
