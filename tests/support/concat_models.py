"""Models with channel concatenation, written as their authors write them, with random weights and
random batch-norm statistics: what tests/test_concat.py converts through the CLI
(`host_tools convert tests/support/concat_models.py:SqueezeNetTiny ...`)."""
import torch
import torch.nn as nn

from tests.support.cli_models import _randomize_bn


class Fire(nn.Module):
    """SqueezeNet's fire module: a 1x1 squeeze, then 1x1 and 3x3 expands concatenated."""

    def __init__(self, c_in, squeeze, expand):
        super().__init__()
        self.squeeze = nn.Conv2d(c_in, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        x = torch.relu(self.squeeze(x))
        return torch.cat([torch.relu(self.expand1x1(x)), torch.relu(self.expand3x3(x))], 1)


class SqueezeNetTiny(nn.Module):
    """SqueezeNet 1.1's layout at 16x16: conv-BN-ReLU, max pool, two fire modules, max pool, a fire
    module, then its classifier (1x1 conv, ReLU, global average pool)."""

    def __init__(self, num_classes=5):
        super().__init__()
        torch.manual_seed(3)
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.fire2 = Fire(8, 4, 8)
        self.fire3 = Fire(16, 4, 8)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.fire4 = Fire(16, 6, 12)
        self.classifier = nn.Conv2d(24, num_classes, 1)
        self.fc = nn.Linear(num_classes, num_classes)
        _randomize_bn(self, 3)

    def forward(self, x):
        x = self.pool1(torch.relu(self.bn1(self.conv1(x))))
        x = self.pool2(self.fire3(self.fire2(x)))
        x = torch.relu(self.classifier(self.fire4(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class CatAlongWidth(nn.Module):
    """A cat along the width (dim 3): refused, naming the node."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, padding=1)
        self.b = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(torch.cat([self.a(x), self.b(x)], 3).mean([2, 3]))
