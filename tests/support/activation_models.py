"""Small models with the activations that become lookup tables, and the model families they open
(DS-CNN keyword spotting, a 1-D CNN over sensor windows), written as their authors write them,
with random weights and random batch-norm statistics: what tests/test_lut.py converts through the
CLI (`host_tools convert tests/support/activation_models.py:SiLUNet ...`)."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from tests.support.cli_models import _randomize_bn


class _ActNet(nn.Module):
    """conv-BN-act, depthwise conv-BN-act, x.mean([2, 3]), Linear on 1x12x12 inputs; `act` is a module
    (or, with `functional`, what forward calls)."""
    act = nn.Identity
    functional = None

    def __init__(self, num_classes=4):
        super().__init__()
        torch.manual_seed(11)
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.act1 = self.act()
        self.dw = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.act2 = self.act()
        self.fc = nn.Linear(8, num_classes)
        _randomize_bn(self, 11)

    def forward(self, x):
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.bn2(self.dw(x))
        x = self.functional(x) if self.functional is not None else self.act2(x)
        return self.fc(x.mean([2, 3]))


class HardswishNet(_ActNet):
    act = nn.Hardswish


class HardsigmoidNet(_ActNet):
    act = nn.Hardsigmoid


class SigmoidNet(_ActNet):
    act = nn.Sigmoid
    functional = staticmethod(torch.sigmoid)


class TanhNet(_ActNet):
    act = nn.Tanh
    functional = staticmethod(torch.tanh)


class SiLUNet(_ActNet):
    act = nn.SiLU
    functional = staticmethod(F.silu)


class LeakyReLUNet(_ActNet):
    act = staticmethod(lambda: nn.LeakyReLU(0.1))
    functional = staticmethod(lambda x: F.leaky_relu(x, 0.2))


ACTIVATION_NETS = {"hardswish": HardswishNet, "hardsigmoid": HardsigmoidNet, "sigmoid": SigmoidNet,
                   "tanh": TanhNet, "silu": SiLUNet, "leaky_relu": LeakyReLUNet}


class DSCNN(nn.Module):
    """DS-CNN keyword spotting (Zhang et al., "Hello Edge", ARM ML-KWS-for-MCU), small: MFCC features
    1x49x10, a 10x4 stride-2 conv, depthwise-separable blocks (depthwise 3x3 + BN + ReLU, pointwise
    1x1 + BN + ReLU), average pooling over the whole map, a Linear over the keywords."""

    def __init__(self, num_classes=12, width=16, blocks=3):
        super().__init__()
        torch.manual_seed(21)
        layers = [nn.Conv2d(1, width, (10, 4), stride=2, padding=(5, 1), bias=False), nn.BatchNorm2d(width),
                  nn.ReLU()]
        for _ in range(blocks):
            layers += [nn.Conv2d(width, width, 3, padding=1, groups=width, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(), nn.Conv2d(width, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.4)
        self.fc = nn.Linear(width, num_classes)
        _randomize_bn(self, 21)

    def forward(self, x):
        x = self.features(x)
        return self.fc(self.dropout(torch.mean(x, dim=(2, 3))))


class SensorCNN1d(nn.Module):
    """A 1-D CNN over accelerometer windows [N, 3, 64] (human activity recognition style): Conv1d +
    BatchNorm1d + SiLU, MaxPool1d, Conv1d + BatchNorm1d + ReLU, AvgPool1d, the mean over time,
    a Linear over the activities."""

    def __init__(self, num_classes=6):
        super().__init__()
        torch.manual_seed(31)
        self.conv1 = nn.Conv1d(3, 12, 5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm1d(12)
        self.pool1 = nn.MaxPool1d(2)
        self.conv2 = nn.Conv1d(12, 16, 3, stride=1, padding=1)
        self.bn2 = nn.BatchNorm1d(16)
        self.pool2 = nn.AvgPool1d(2)
        self.fc = nn.Linear(16, num_classes)
        _randomize_bn(self, 31)

    def forward(self, x):
        x = self.pool1(F.silu(self.bn1(self.conv1(x))))
        x = self.pool2(F.relu(self.bn2(self.conv2(x))))
        return self.fc(x.mean(-1))
