# Runs on a board (unix port or emulated MCU) for bench/bench_accuracy.py: the same training steps
# as the host simulation, then the predictions on held-out images. It prints each step's loss as the
# hex of its float32 bits and the predicted classes, so the host can compare them exactly.
#   model.mct, train.bin (int8 images), train_labels.bin (uint8), lrs.bin (float32 per step),
#   test.bin, test_labels.bin
import struct
import mcutrain
from romfile import load     # boards/lib/romfile.py, sent with this script

model = mcutrain.Model(open('model.mct', 'rb'))
train, labels, lrs = load('train.bin'), load('train_labels.bin'), load('lrs.bin')
test, test_labels = load('test.bin'), load('test_labels.bin')
size = len(train) // len(labels)
for i in range(len(labels)):
    lr = struct.unpack_from('<f', lrs, 4 * i)[0]
    loss = model.train_step(train[i * size:(i + 1) * size], labels[i], lr)
    print('L %08x' % struct.unpack('<I', struct.pack('<f', loss))[0])
preds = [model.predict(test[i * size:(i + 1) * size]) for i in range(len(test_labels))]
print('P ' + ''.join('%d,' % p for p in preds))
print('DONE')
