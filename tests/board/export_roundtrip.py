# Train on the board, save, and send the saved model back over the serial line as hex.
import mcutrain
m = mcutrain.Model(open('model.mct', 'rb'))
xs = open('inputs.bin', 'rb').read()
labels = open('labels.bin', 'rb').read()
size = len(xs) // len(labels)
for i in range(len(labels)):
    m.train_step(xs[i * size:(i + 1) * size], labels[i], 0.1)


class HexOut:
    def write(self, data):
        print(bytes(data).hex())
        return len(data)


m.save(HexOut())
