"""FashionNet: a small MobileNetV2-style CNN for 28x28 grayscale Fashion-MNIST that fits a
256 KB-SRAM microcontroller with room to spare.

Layers (int8 activation sizes; C x H x W bytes):

    input                         1 x 28 x 28    784
    stem   conv3x3 s2 1->16 +BN+ReLU6            16 x 14 x 14   3136
    block1 1x1 16->48 +BN+ReLU6                  48 x 14 x 14   9408
           dw3x3 s1 +BN+ReLU6                    48 x 14 x 14   9408
           1x1 48->16 +BN, + block input (add)   16 x 14 x 14   3136
    block2 1x1 16->48 +BN+ReLU6                  48 x 14 x 14   9408
           dw3x3 s2 +BN+ReLU6                    48 x  7 x  7   2352
           1x1 48->32 +BN                        32 x  7 x  7   1568
    block3 1x1 32->96 +BN+ReLU6                  96 x  7 x  7   4704
           dw3x3 s1 +BN+ReLU6                    96 x  7 x  7   4704
           1x1 96->32 +BN, + block input (add)   32 x  7 x  7   1568
    head   1x1 32->128 +BN+ReLU6                128 x  7 x  7   6272
    AdaptiveAvgPool2d(1) + Flatten              128
    Linear 128->10                                10

The largest layer is block1's depthwise conv: input + output 18.8 KB (about 22 KB with the residual
branch kept alive). 11 convolutions + 1 classifier; 18.5 k parameters (int8: ~18 KB of Flash).

Usage: `host_tools convert examples/fashion_net.py:FashionNet --weights build/demo/fashion_net.pt ...`
"""
import torch.nn as nn


def conv_bn(cin, cout, k=1, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand + ReLU6, 3x3 depthwise + ReLU6, 1x1 project (linear),
    with the residual add when the shape is kept."""

    def __init__(self, cin, cout, stride=1, expand=3):
        super().__init__()
        mid = cin * expand
        self.use_residual = stride == 1 and cin == cout
        self.expand = conv_bn(cin, mid, 1)
        self.depthwise = conv_bn(mid, mid, 3, stride, groups=mid)
        self.project = conv_bn(mid, cout, 1, act=False)

    def forward(self, x):
        y = self.project(self.depthwise(self.expand(x)))
        if self.use_residual:
            y = x + y
        return y


class FashionNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = conv_bn(1, 16, 3, stride=2)
        self.block1 = InvertedResidual(16, 16, stride=1, expand=3)
        self.block2 = InvertedResidual(16, 32, stride=2, expand=3)
        self.block3 = InvertedResidual(32, 32, stride=1, expand=3)
        self.head = conv_bn(32, 128, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(128, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.block1(x)
        x = self.block2(x)
        x = self.block3(x)
        x = self.head(x)
        return self.classifier(self.flatten(self.pool(x)))
