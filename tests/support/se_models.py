"""Squeeze-and-excitation models, written as their authors write them, with random weights and random
batch-norm statistics: what tests/test_se.py converts through the CLI
(`host_tools convert tests/support/se_models.py:MobileNetV3Tiny ...`)."""
import torch.nn as nn
import torch.nn.functional as F

from tests.support.cli_models import _randomize_bn


class SqueezeExcite(nn.Module):
    """MobileNetV3's SE: global average pool, 1x1 conv, ReLU, 1x1 conv, Hardsigmoid, x * gate."""

    def __init__(self, c, reduced):
        super().__init__()
        self.fc1 = nn.Conv2d(c, reduced, 1)
        self.fc2 = nn.Conv2d(reduced, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class InvertedResidual(nn.Module):
    """1x1 expand (Hardswish), 3x3 depthwise (Hardswish), SE, 1x1 project, a residual when shapes match."""

    def __init__(self, c_in, c_exp, c_out, stride):
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(c_in, c_exp, 1, bias=False), nn.BatchNorm2d(c_exp), nn.Hardswish())
        self.dw = nn.Sequential(nn.Conv2d(c_exp, c_exp, 3, stride, 1, groups=c_exp, bias=False),
                                nn.BatchNorm2d(c_exp), nn.Hardswish())
        self.se = SqueezeExcite(c_exp, max(c_exp // 4, 2))
        self.project = nn.Sequential(nn.Conv2d(c_exp, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = self.project(self.se(self.dw(self.expand(x))))
        return x + y if self.residual else y


class MobileNetV3Tiny(nn.Module):
    """MobileNetV3-Small's layout at 16x16: a 3x3 stem (Hardswish), a depthwise block with SE and
    no expansion (ReLU), two inverted residuals with SE, a 1x1 conv (Hardswish), pool, classifier."""

    def __init__(self, num_classes=5):
        super().__init__()
        import torch
        torch.manual_seed(7)
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.Hardswish())
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, groups=8, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.se = SqueezeExcite(8, 4)
        self.pw = nn.Sequential(nn.Conv2d(8, 8, 1, bias=False), nn.BatchNorm2d(8))
        self.block1 = InvertedResidual(8, 16, 12, 2)
        self.block2 = InvertedResidual(12, 24, 12, 1)
        self.head = nn.Sequential(nn.Conv2d(12, 24, 1, bias=False), nn.BatchNorm2d(24), nn.Hardswish())
        self.fc = nn.Linear(24, num_classes)
        _randomize_bn(self, 7)

    def forward(self, x):
        x = self.pw(self.se(self.dw(self.stem(x))))
        x = self.head(self.block2(self.block1(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))
