# Deployed by tests/test_deploy.py: train on the board's files (the model in the working directory
# or in ROMFS), save the model in the working directory,
# and print the saved file as hex so that the host can compare it with what it fetches.
import mcutrain
try:
    model = open('model.mct', 'rb').read()            # copied into the filesystem: read into RAM
except OSError:
    model = memoryview(open('/rom/model.mct', 'rb'))   # deployed into ROMFS: used in place, in Flash
    import uctypes
    print('weights in Flash', uctypes.addressof(model) < 0x20000000)
m = mcutrain.Model(model)
xs = open('inputs.bin', 'rb').read()
labels = open('labels.bin', 'rb').read()
size = len(xs) // len(labels)
for i in range(len(labels)):
    loss = m.train_step(xs[i * size:(i + 1) * size], labels[i], 0.1)
with open('trained.mct', 'wb') as f:
    m.save(f)
data = open('trained.mct', 'rb').read()
for i in range(0, len(data), 64):
    print('hex', data[i:i + 64].hex())
print('loss', loss)
