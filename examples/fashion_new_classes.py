# On-device transfer learning, as typed in the board's REPL.
#
# fashion.mct was pretrained (examples/pretrain_fashion.py) on Fashion-MNIST classes 0-4 only:
# T-shirt, trouser, pullover, dress, coat. Here, on the board, it learns the five it never saw:
# sandal, shirt, sneaker, bag, ankle boot, from a few hundred labelled images, training only its
# classifier and the biases of its last layers (int8, QAS, SGD batch 1). The images stay on the
# board: train.bin / test.bin are int8 (pixel - 128), 784 bytes each.
import time
import mcutrain
from romfile import load    # boards/lib/romfile.py: a ROMFS file in place (in Flash), else read into RAM

model = mcutrain.Model(open('fashion.mct', 'rb'))
SIZE = 28 * 28
train, train_labels = load('train.bin'), load('train_labels.bin')
test, test_labels = load('test.bin'), load('test_labels.bin')

def accuracy():
    right = 0
    for i in range(len(test_labels)):
        right += model.predict(test[i * SIZE:(i + 1) * SIZE]) == test_labels[i]
    return 100 * right / len(test_labels)

before = accuracy()
print('held-out accuracy before: %.1f %%' % before)
EPOCHS, LR = 2, 0.05
t0 = time.ticks_ms()
for epoch in range(EPOCHS):
    total = 0.0
    # a fixed, class-interleaved order: the labels file is balanced and shuffled
    for i in range(len(train_labels)):
        total += model.train_step(train[i * SIZE:(i + 1) * SIZE], train_labels[i], LR)
    print('epoch %d: mean loss %.3f' % (epoch + 1, total / len(train_labels)))
ms = time.ticks_diff(time.ticks_ms(), t0)
after = accuracy()
steps = EPOCHS * len(train_labels)
print('%d training steps, %.1f ms per step' % (steps, ms / steps))
print('memory:', model.mem_info())
print('accuracy before %.1f %% after %.1f %%' % (before, after))
