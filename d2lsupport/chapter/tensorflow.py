"""The chapter's tensorflow code marked #@save, in chapter order.

Generated from chapter_cnn_design/cnn-design.md by `make library`: do not edit
this file; change the chapter's cells and regenerate it.
"""
# flake8: noqa

import tensorflow as tf
from d2lsupport import tensorflow as d2l


class ResNeXtBlock(tf.keras.layers.Layer):
    def __init__(self, num_channels, group_width, bot_mul, use_1x1conv=False,
                 strides=1, se_ratio=0.0):
        super().__init__()
        bot_channels, strides = d2l.resnext_arguments(
            num_channels, group_width, bot_mul, strides, se_ratio)
        self.conv1 = tf.keras.layers.Conv2D(bot_channels, 1)
        # one pixel of padding on every side, as in the other frameworks
        self.pad = tf.keras.layers.ZeroPadding2D(1)
        self.conv2 = d2l.SplitGroupConv2D(bot_channels, 3, strides=strides,
                                          groups=bot_channels // group_width)
        self.conv3 = tf.keras.layers.Conv2D(num_channels, 1)
        self.bn1, self.bn2, self.bn3 = (d2l.FusedBatchNorm() for _ in range(3))
        self.se = d2l.SqueezeExcitation(se_ratio) if se_ratio else None
        self.conv4 = self.bn4 = None
        if use_1x1conv:
            self.conv4 = tf.keras.layers.Conv2D(num_channels, 1, strides=strides)
            self.bn4 = d2l.FusedBatchNorm()

    def call(self, X):
        Y = tf.nn.relu(self.bn1(self.conv1(X)))
        Y = tf.nn.relu(self.bn2(self.conv2(self.pad(Y))))
        if self.se is not None:
            Y = self.se(Y, X)
        Y = self.bn3(self.conv3(Y))
        if self.conv4 is not None:
            X = self.bn4(self.conv4(X))
        return tf.nn.relu(Y + X)


class AnyNet(d2l.Classifier):
    def stem(self, num_channels):
        return tf.keras.models.Sequential([
            tf.keras.layers.ZeroPadding2D(padding=1),
            tf.keras.layers.Conv2D(num_channels, kernel_size=3, strides=2),
            d2l.FusedBatchNorm(),  # Keras's BatchNormalization, one fused kernel
            tf.keras.layers.Activation('relu')])


@d2l.add_to_class(AnyNet)
def stage(self, depth, num_channels, group_width, bot_mul):
    blocks = [ResNeXtBlock(num_channels, group_width, bot_mul, use_1x1conv=True,
                           strides=2, se_ratio=self.se_ratio)]
    for _ in range(depth - 1):
        blocks.append(ResNeXtBlock(num_channels, group_width, bot_mul,
                                   se_ratio=self.se_ratio))
    return tf.keras.models.Sequential(blocks)


@d2l.add_to_class(AnyNet)
def __init__(self, arch, stem_width, lr=0.1, num_classes=10, se_ratio=0.0):
    super(AnyNet, self).__init__()
    self.save_hyperparameters()
    self.net = tf.keras.models.Sequential([self.stem(stem_width)])
    for s in arch:
        self.net.add(self.stage(*s))
    self.net.add(tf.keras.models.Sequential([
        tf.keras.layers.GlobalAvgPool2D(),
        tf.keras.layers.Dense(units=num_classes)]))


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
