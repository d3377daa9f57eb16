"""Small models written the way torchvision writes its blocks, not for mcutrain, with random
weights and random batch-norm statistics: what tests/test_cli.py converts through the CLI as a user
does (`host_tools convert tests/support/cli_models.py:ResNetTiny ...`). Together they use every op the
converter supports (host_tools/frontends/torch_fx.py)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


def _randomize_bn(model: nn.Module, seed: int) -> None:
    """Batch norms as after training: statistics and affine parameters away from 0/1."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=g) * 0.1)


# --- torchvision.models.resnet's BasicBlock, smaller ------------------------------------------

def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNetTiny(nn.Module):
    """Stem conv + BN + ReLU + MaxPool2d, two basic blocks (one with a 1x1 strided downsample),
    AdaptiveAvgPool2d((1, 1)), torch.flatten, Linear: resnet18's shape on 1x16x16 inputs."""

    def __init__(self, num_classes=5):
        super().__init__()
        torch.manual_seed(1)
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = BasicBlock(8, 8)
        self.layer2 = BasicBlock(8, 16, stride=2, downsample=nn.Sequential(
            nn.Conv2d(8, 16, kernel_size=1, stride=2, bias=False), nn.BatchNorm2d(16)))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, num_classes)
        _randomize_bn(self, 1)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


# --- torchvision.models.mobilenetv2's InvertedResidual, smaller -------------------------------

class Conv2dNormActivation(nn.Sequential):
    def __init__(self, inp, oup, kernel_size=3, stride=1, groups=1):
        super().__init__(nn.Conv2d(inp, oup, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(oup), nn.ReLU6(inplace=True))


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden_dim, kernel_size=1))      # pointwise
        layers += [Conv2dNormActivation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),  # depthwise
                   nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup)]          # pw-linear
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        if self.use_res_connect:
            return x + self.conv(x)
        return self.conv(x)


class MobileNetV2Tiny(nn.Module):
    """Stem, inverted residuals (pointwise ReLU6, depthwise ReLU6, linear projection, residual add),
    global average pooling as torchvision's forward does it, Dropout + Linear classifier."""

    def __init__(self, num_classes=4):
        super().__init__()
        torch.manual_seed(2)
        self.features = nn.Sequential(
            Conv2dNormActivation(3, 8, stride=2),
            InvertedResidual(8, 8, 1, 1),
            InvertedResidual(8, 12, 2, 4),
            InvertedResidual(12, 12, 1, 4))
        self.classifier = nn.Sequential(nn.Dropout(p=0.2), nn.Linear(12, num_classes))
        _randomize_bn(self, 2)

    def forward(self, x):
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, (1, 1))
        x = torch.flatten(x, 1)
        return self.classifier(x)


class MeanPoolNet(nn.Module):
    """Global pooling as x.mean([2, 3]) (mobilenet_v3 / efficientnet heads), ReLU as a function."""

    def __init__(self, num_classes=3):
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, num_classes)
        _randomize_bn(self, 3)

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x))).mean([2, 3]))


# --- LeNet-5 / VGG style ------------------------------------------------------------------------

class LeNet(nn.Module):
    """5x5 convs, AvgPool2d, Hardtanh, a batch norm that follows a pool (not foldable), F.max_pool2d,
    Identity, x.view(x.size(0), -1), two Linear layers with ReLU and Dropout between."""

    def __init__(self, num_classes=10):
        super().__init__()
        torch.manual_seed(4)
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)
        self.act1 = nn.Hardtanh(0.0, 4.0)
        self.pool1 = nn.AvgPool2d(kernel_size=2, stride=2)
        self.norm = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 8, kernel_size=5)
        self.skip = nn.Identity()
        self.fc1 = nn.Linear(8 * 2 * 2, 24)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(24, num_classes)
        _randomize_bn(self, 4)

    def forward(self, x):
        x = self.norm(self.pool1(self.act1(self.conv1(x))))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.skip(x)
        x = x.view(x.size(0), -1)
        return self.fc2(self.drop(F.relu(self.fc1(x))))


# --- models whose output is not logits [N, K] (bad input) ---------------------------------------

class FeatureMapOut(nn.Module):
    """Returns a feature map [N, C, H, W], not logits."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x):
        return F.relu(self.conv(x))


class TupleOut(nn.Module):
    """Returns (logits, features), as some detection/distillation models do."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        f = F.relu(self.conv(x))
        return self.fc(torch.flatten(f, 1)), f
