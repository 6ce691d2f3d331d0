"""The chapter's mxnet code marked #@save, in chapter order.

Generated from chapter_cnn_design/cnn-design.md by `make library`: do not edit
this file; change the chapter's cells and regenerate it.
"""
# flake8: noqa

from d2lsupport import mxnet as d2l
from mxnet import np, npx, init
from mxnet.gluon import nn

npx.set_np()


class ResNeXtBlock(nn.HybridBlock):
    def __init__(self, num_channels, group_width, bot_mul, use_1x1conv=False,
                 strides=1, se_ratio=0.0):
        super().__init__()
        bot_channels, strides = d2l.resnext_arguments(
            num_channels, group_width, bot_mul, strides, se_ratio)
        self.conv1 = nn.Conv2D(bot_channels, kernel_size=1)
        self.conv2 = nn.Conv2D(bot_channels, kernel_size=3, strides=strides,
                               padding=1, groups=bot_channels // group_width)
        self.conv3 = nn.Conv2D(num_channels, kernel_size=1)
        self.bn1, self.bn2, self.bn3 = nn.BatchNorm(), nn.BatchNorm(), nn.BatchNorm()
        self.relu = nn.Activation('relu')
        self.se = d2l.SqueezeExcitation(se_ratio) if se_ratio else None
        self.conv4 = self.bn4 = None
        if use_1x1conv:
            self.conv4 = nn.Conv2D(num_channels, kernel_size=1, strides=strides)
            self.bn4 = nn.BatchNorm()

    def hybrid_forward(self, F, X):
        Y = self.relu(self.bn1(self.conv1(X)))
        Y = self.relu(self.bn2(self.conv2(Y)))
        if self.se is not None:
            Y = self.se(Y, X)
        Y = self.bn3(self.conv3(Y))
        if self.conv4 is not None:
            X = self.bn4(self.conv4(X))
        return self.relu(Y + X)


class AnyNet(d2l.Classifier):
    def stem(self, num_channels):
        net = nn.HybridSequential()
        net.add(nn.Conv2D(num_channels, kernel_size=3, padding=1, strides=2),
                nn.BatchNorm(), nn.Activation('relu'))
        return net


@d2l.add_to_class(AnyNet)
def stage(self, depth, num_channels, group_width, bot_mul):
    net = nn.HybridSequential()
    net.add(ResNeXtBlock(num_channels, group_width, bot_mul, use_1x1conv=True,
                         strides=2, se_ratio=self.se_ratio))
    for _ in range(depth - 1):
        net.add(ResNeXtBlock(num_channels, group_width, bot_mul,
                             se_ratio=self.se_ratio))
    return net


@d2l.add_to_class(AnyNet)
def __init__(self, arch, stem_width, lr=0.1, num_classes=10, se_ratio=0.0):
    super(AnyNet, self).__init__()
    self.save_hyperparameters()
    self.net = nn.HybridSequential()
    self.net.add(self.stem(stem_width))
    for s in arch:
        self.net.add(self.stage(*s))
    head = nn.HybridSequential()
    head.add(nn.GlobalAvgPool2D(), nn.Dense(num_classes))
    self.net.add(head)
    self.net.initialize(init.Xavier())


class RegNetX32(AnyNet):
    def __init__(self, lr=0.1, num_classes=10, se_ratio=0.0):
        stem_width, group_width, bot_mul = 32, 16, 1
        depths, channels = (4, 6), (32, 80)
        super().__init__(
            ((depths[0], channels[0], group_width, bot_mul),
             (depths[1], channels[1], group_width, bot_mul)),
            stem_width, lr, num_classes, se_ratio)


class RegNetY32(RegNetX32):
    def __init__(self, lr=0.1, num_classes=10):
        # squeeze to a quarter of each block's input width
        super().__init__(lr, num_classes, se_ratio=0.25)
