# On-device transfer learning, as typed in the board's REPL.
#
# fashion.mct was pretrained (examples/pretrain_fashion.py) on Fashion-MNIST classes 0-4 only:
# T-shirt, trouser, pullover, dress, coat. Here, on the board, it learns the five it never saw:
# sandal, shirt, sneaker, bag, ankle boot, from a few hundred labelled images, training only its
# classifier and the biases of its last layers (int8, QAS, SGD batch 1). The images stay on the
# board: train.bin / test.bin are int8 (pixel - 128), 784 bytes each, read where they are.
#
# The files may be in the working directory or in ROMFS (/rom): `host_tools run` puts them all in
# ROMFS, `host_tools deploy` into /flash (the models into /rom with --romfs). The trained model is
# saved as trained.mct next to the script, or on the board's filesystem (/flash; / on the rp2 port)
# when the script runs from read-only ROMFS.
import os
import time
import mcutrain
import mcutrain_util                # natmod/mcutrain_util.py: save_atomic
from romfile import Records, find   # boards/lib/romfile.py: in place from ROMFS, else in pieces

SIZE = 28 * 28


def labels(name):
    with open(find(name), 'rb') as f:
        return f.read()             # one byte per image: a few hundred bytes


model = mcutrain.Model(open(find('fashion.mct'), 'rb'))     # in place from ROMFS, else read into RAM
# a 392 KB images file never fits in 256 KB of RAM: a view into Flash, or one image at a time
train, train_labels = Records(find('train.bin'), SIZE), labels('train_labels.bin')
test, test_labels = Records(find('test.bin'), SIZE), labels('test_labels.bin')


def accuracy():
    right = 0
    for i in range(len(test_labels)):
        right += model.predict(test[i]) == test_labels[i]
    return 100 * right / len(test_labels)


print('%d training images, %d held-out images' % (len(train_labels), len(test_labels)))
before = accuracy()
print('held-out accuracy before: %.1f %%' % before)
EPOCHS, LR = 2, 0.05
t0 = time.ticks_ms()
for epoch in range(EPOCHS):
    total = 0.0
    # a fixed, class-interleaved order: the labels file is balanced and shuffled
    for i in range(len(train_labels)):
        total += model.train_step(train[i], train_labels[i], LR)
    print('epoch %d: mean loss %.3f' % (epoch + 1, total / len(train_labels)))
ms = time.ticks_diff(time.ticks_ms(), t0)
after = accuracy()
steps = EPOCHS * len(train_labels)
print('%d training steps, %.1f ms per step' % (steps, ms / steps))
print('memory:', model.mem_info())
saved = 'trained.mct'
if os.getcwd() == '/rom':   # read-only: the board's filesystem, /flash on the qemu boards, / on the rp2 port
    saved = '/flash/trained.mct' if 'flash' in os.listdir('/') else '/trained.mct'
try:
    print('saved %s (%d bytes)' % (saved, mcutrain_util.save_atomic(model, saved)))
except OSError as e:
    print('not saved: no writable filesystem for %s (%s)' % (saved, e))
print('accuracy before %.1f %% after %.1f %%' % (before, after))
