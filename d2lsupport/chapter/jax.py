"""The chapter's jax code marked #@save, in chapter order.

Generated from chapter_cnn_design/cnn-design.md by `make library`: do not edit
this file; change the chapter's cells and regenerate it.
"""
# flake8: noqa

from d2lsupport import jax as d2l
from flax import linen as nn


class ResNeXtBlock(nn.Module):
    num_channels: int
    group_width: int
    bot_mul: float
    use_1x1conv: bool = False
    strides: int = 1
    se_ratio: float = 0.0
    training: bool = True

    def __post_init__(self):  # check the arguments when the block is made
        d2l.resnext_arguments(self.num_channels, self.group_width, self.bot_mul,
                              self.strides, self.se_ratio)
        super().__post_init__()

    @nn.compact
    def __call__(self, X):
        bot_channels, strides = d2l.resnext_arguments(
            self.num_channels, self.group_width, self.bot_mul, self.strides,
            self.se_ratio)
        Y = d2l.Conv1x1(bot_channels)(X)
        Y = nn.relu(nn.BatchNorm(not self.training, momentum=0.9)(Y))
        Y = d2l.GroupedConv3x3(bot_channels, self.group_width, strides)(Y)
        Y = nn.relu(nn.BatchNorm(not self.training, momentum=0.9)(Y))
        if self.se_ratio:
            Y = d2l.SqueezeExcitation(self.se_ratio)(Y, X)
        Y = d2l.Conv1x1(self.num_channels)(Y)
        Y = nn.BatchNorm(not self.training, momentum=0.9)(Y)
        if self.use_1x1conv:
            X = d2l.Conv1x1(self.num_channels, strides)(X)
            X = nn.BatchNorm(not self.training, momentum=0.9)(X)
        return nn.relu(Y + X)


class AnyNet(d2l.Classifier):
    arch: tuple
    stem_width: int
    lr: float = 0.1
    num_classes: int = 10
    se_ratio: float = 0.0
    training: bool = True

    def setup(self):
        self.net = self.create_net()

    def stem(self, num_channels):
        return nn.Sequential([
            nn.Conv(num_channels, kernel_size=(3, 3), strides=(2, 2),
                    padding=(1, 1), kernel_init=nn.initializers.xavier_uniform()),
            nn.BatchNorm(not self.training, momentum=0.9), nn.relu])


@d2l.add_to_class(AnyNet)
def stage(self, depth, num_channels, group_width, bot_mul):
    blocks = [ResNeXtBlock(num_channels, group_width, bot_mul, use_1x1conv=True,
                           strides=2, se_ratio=self.se_ratio,
                           training=self.training)]
    for _ in range(depth - 1):
        blocks.append(ResNeXtBlock(num_channels, group_width, bot_mul,
                                   se_ratio=self.se_ratio,
                                   training=self.training))
    return nn.Sequential(blocks)


@d2l.add_to_class(AnyNet)
def create_net(self):
    layers = [self.stem(self.stem_width)]
    for s in self.arch:
        layers.append(self.stage(*s))
    layers.append(nn.Sequential([
        lambda X: X.mean(axis=(1, 2)),  # global average pooling
        nn.Dense(self.num_classes, kernel_init=nn.initializers.xavier_uniform())]))
    return nn.Sequential(layers)


class RegNetX32(AnyNet):
    stem_width: int = 32
    arch: tuple = ((4, 32, 16, 1), (6, 80, 16, 1))  # (depth, channels, group_width, bot_mul)
    lr: float = 0.1
    num_classes: int = 10


class RegNetY32(RegNetX32):
    se_ratio: float = 0.25  # squeeze to a quarter of each block's input width
