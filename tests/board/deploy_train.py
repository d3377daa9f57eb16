# Deployed by tests/test_deploy.py: train on the board's files, save the model next to them,
# and print the saved file as hex so that the host can compare it with what it fetches.
import mcutrain
m = mcutrain.Model(open('model.mct', 'rb').read())
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
