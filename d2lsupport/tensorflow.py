"""TensorFlow (Keras 3) versions of the chapter's building blocks.

Import it as ``from d2lsupport import tensorflow as d2l``; the other framework
modules offer the same names. Images are NHWC (channels last).
"""
import dataclasses
import random

import tensorflow as tf

from . import checks
from .checks import resnext_arguments
from .core import (DataModule, HyperParameters, ProgressBoard, add_to_class, chapter_access,
                   print_layer_table, public_names)
from .data import FashionMNISTBase
from .design import se_width
from .trainer import BaseTrainer, Recipe, arrays_to_bytes, bytes_to_arrays

__all__ = public_names('tensorflow')
LAYOUT = 'NHWC'   # images as (batch, height, width, channels)


# TensorFlow names its devices: `with tf.device(d2l.cpu()):` places operations there.
def cpu():
    return '/CPU:0'


def gpu(i=0):
    return f'/GPU:{i}'


def num_gpus():
    return len(tf.config.list_physical_devices('GPU'))


def try_gpu(i=0):
    """GPU `i` if it exists, else the CPU."""
    return gpu(i) if num_gpus() >= i + 1 else cpu()


def _num_trainable(layer):
    return sum(int(tf.size(w)) for w in layer.trainable_weights)


def param_count(model, X_shape):
    """Number of trainable parameters of `model` for inputs of shape `X_shape`."""
    X_shape = checks.input_shape('param_count', X_shape)
    model(tf.zeros(X_shape), training=False)
    return _num_trainable(model)


class Module(tf.keras.Model, HyperParameters):
    """A model with its loss and optimizer; subclasses define `self.net`."""

    def __init__(self):
        super().__init__()
        del self.loss  # Keras sets `loss = None` for `compile`; use the method below

    def call(self, X, training=None):
        return self.net(X, training=training)

    def loss(self, Y_hat, Y):
        raise NotImplementedError

    def configure_optimizers(self):
        return tf.keras.optimizers.SGD(learning_rate=self.lr)

    def layer_summary(self, X_shape):
        """Print each top-level layer's output shape and parameter count."""
        X_shape = checks.input_shape('layer_summary', X_shape)
        X, rows = tf.zeros(X_shape), []
        for layer in self.net.layers:
            X = layer(X, training=False)
            rows.append((layer, X.shape, _num_trainable(layer)))
        print_layer_table(self, rows)


class Classifier(Module):
    """A module whose loss is softmax cross-entropy."""

    def loss(self, Y_hat, Y, averaged=True):
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(Y, Y_hat)
        return tf.reduce_mean(losses) if averaged else tf.reduce_sum(losses)

    def accuracy(self, Y_hat, Y, averaged=True):
        correct = tf.cast(tf.argmax(Y_hat, axis=1) == Y, tf.float32)
        return tf.reduce_mean(correct) if averaged else tf.reduce_sum(correct)


class FashionMNIST(FashionMNISTBase, DataModule):
    """Fashion-MNIST as batches of NHWC float tensors in [0, 1]."""

    def get_dataloader(self, train):
        for X, y in self.batches(train):
            yield tf.constant(X[..., None]), tf.constant(y)


class SplitGroupConv2D(tf.keras.layers.Conv2D):
    """A grouped Conv2D computed as one plain convolution per group.

    It has the kernel of ``Conv2D(groups=...)`` (same parameters, same Glorot
    initialization, same outputs); it splits the input channels and the kernel
    into the groups, convolves each pair and concatenates the results.
    """

    def convolution_op(self, inputs, kernel):
        pieces = zip(tf.split(inputs, self.groups, axis=-1),
                     tf.split(kernel, self.groups, axis=-1))
        return tf.concat([super(SplitGroupConv2D, self).convolution_op(X, K)
                          for X, K in pieces], axis=-1)


class FusedBatchNorm(tf.keras.layers.BatchNormalization):
    """Keras batch normalization of NHWC images computed by TensorFlow's fused
    kernel, with PyTorch's defaults (running-average momentum 0.1, eps 1e-5).

    Same weights, outputs and gradients as Keras's layer, which computes the
    moments and the normalization as separate, slower ops on a CPU
    (BENCHMARKS.md, "Formulations measured"). The running variance averages
    the unbiased batch variance, as PyTorch's does.
    """

    def __init__(self, **kwargs):
        super().__init__(momentum=0.9, epsilon=1e-5, **kwargs)

    def call(self, X, training=None):
        if not training:
            return tf.compat.v1.nn.fused_batch_norm(
                X, self.gamma, self.beta, self.moving_mean, self.moving_variance,
                epsilon=self.epsilon, is_training=False)[0]
        Y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            X, self.gamma, self.beta, epsilon=self.epsilon, is_training=True)[:3]
        for average, batch in ((self.moving_mean, mean), (self.moving_variance, variance)):
            average.assign(self.momentum * average + (1 - self.momentum) * batch)
        return Y


class SqueezeExcitation(tf.keras.layers.Layer):
    """Squeeze-and-excitation of Y, sized when it is built.

    Global average pooling, a 1x1 convolution to ``se_width(se_ratio, c_in)``
    channels, ReLU, a 1x1 convolution back, a sigmoid, and Y's channels
    scaled by the result. c_in is the channel count of the block input X,
    which the caller passes along with Y.
    """

    def __init__(self, se_ratio):
        super().__init__(name='squeeze_excitation')
        checks.fraction('SqueezeExcitation', 'se_ratio', se_ratio)
        self.se_ratio = se_ratio

    def build(self, Y_shape, X_shape):
        self.reduce = tf.keras.layers.Conv2D(se_width(self.se_ratio, X_shape[-1]), 1,
                                             activation='relu')
        self.expand = tf.keras.layers.Conv2D(Y_shape[-1], 1, activation='sigmoid')

    def call(self, Y, X):
        return Y * self.expand(self.reduce(tf.reduce_mean(Y, axis=(1, 2), keepdims=True)))


# ResNeXtBlock, AnyNet, RegNetX32 and RegNetY32 are the chapter's, from d2lsupport/chapter/.
__getattr__, anynet = chapter_access(__name__)


def try_layer(layer, *shapes):
    """(output shape, parameter count) of a new `layer` called on zeros of `shapes`."""
    out = layer(*(tf.zeros(shape) for shape in shapes))
    return tuple(out.shape), _num_trainable(layer)


def weights(model):
    """The trainable weights that `model` holds, as numpy arrays."""
    return [w.numpy() for w in model.trainable_weights]


class _RecipeSchedule(tf.keras.optimizers.schedules.LearningRateSchedule):
    """`Recipe.learning_rate` as a Keras schedule, computed on the step counter."""

    def __init__(self, recipe, lr, steps):
        self.recipe, self.lr, self.steps = recipe, lr, steps

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        return self.recipe.learning_rate(self.lr, step, self.steps, xp=tf.experimental.numpy)

    def get_config(self):
        return {**dataclasses.asdict(self.recipe), 'lr': self.lr, 'steps': self.steps}


class Trainer(BaseTrainer):
    """Training with steps compiled by `tf.function` (eager if not `fast`).

    XLA (the attribute ``jit_compile``) is off: it made the RegNetX32 step
    slower on a CPU (BENCHMARKS.md, "Formulations measured").
    """
    framework = 'tensorflow'
    jit_compile = False
    bfloat16 = True

    def _set_compute_dtype(self, model):
        """Keras's mixed policy on every layer before its first call: float32
        weights, bfloat16 computation (batch normalization keeps its statistics in
        float32); the loss reads the logits in float32."""
        if self.precision == 'bfloat16':
            for layer in model._flatten_layers():
                layer.dtype_policy = 'mixed_bfloat16'

    def seed_initialization(self, seed):
        """Keras draws the seed of each initializer from Python's `random` when
        the layer is made, before the Trainer sees the model; so the layers that
        are not built yet get their initializers' seeds drawn anew, in order."""
        tf.keras.utils.set_random_seed(seed)
        draw = random.Random(seed)
        for layer in self.model._flatten_layers():
            for value in vars(layer).values():
                if (isinstance(value, tf.keras.initializers.Initializer)
                        and isinstance(getattr(value, 'seed', None), int)):
                    value.seed = draw.randint(1, 10 ** 9)

    def recipe_optimizer(self, model, steps):
        """Keras's SGD keeps the learning rate inside its momentum, which differs
        from the others' only while the rate changes; the L2 decay is added to the
        gradients in the training step (Keras's own `weight_decay` is decoupled)."""
        r = self.recipe
        return tf.keras.optimizers.SGD(learning_rate=_RecipeSchedule(r, model.lr, steps),
                                       momentum=r.momentum, nesterov=r.nesterov)

    def build(self, model, data):
        X, _ = next(data.train_dataloader())
        self._set_compute_dtype(model)
        with tf.device(self.device):
            model(X[:1], training=False)
            self.optim = self.optimizer(model)
            self.optim.build(model.trainable_variables)
        self._train, self._eval = self._train_fn, self._eval_fn
        if self.fast:
            self._train = tf.function(self._train_fn, jit_compile=self.jit_compile)
            self._eval = tf.function(self._eval_fn, jit_compile=self.jit_compile)

    def learning_rate(self):
        return float(self.optim.learning_rate)

    def _train_fn(self, X, y):
        with tf.GradientTape() as tape:
            loss = self.model.loss(self._logits(X, True), y)
        params = self.model.trainable_variables
        grads = tape.gradient(loss, params)
        if self.recipe is not None and self.recipe.weight_decay:
            grads = [g + self.recipe.weight_decay * p for g, p in zip(grads, params)]
        self.optim.apply_gradients(zip(grads, params))
        return loss

    def _eval_fn(self, X, y):
        Y_hat = self._logits(X, False)
        return (self.model.loss(Y_hat, y, averaged=False),
                self.model.accuracy(Y_hat, y, averaged=False))

    def _logits(self, X, training):
        return tf.cast(self.model(X, training=training), tf.float32)

    def _parts(self):
        return {'model': self.model.variables, 'optimizer': self.optim.variables}

    def state(self):
        return {name: arrays_to_bytes([v.numpy() for v in variables])
                for name, variables in self._parts().items()}

    def load_state(self, state):
        for name, variables in self._parts().items():
            for variable, value in zip(variables, bytes_to_arrays(state[name]), strict=True):
                variable.assign(value)

    def train_step(self, batch):
        with tf.device(self.device):
            return self._train(*batch)

    def eval_step(self, batch):
        with tf.device(self.device):
            return self._eval(*batch)

    def logits(self, X, batch_statistics=False):
        """With `batch_statistics`, batch normalization uses the statistics of X
        (as in training); the running statistics are left as they were."""
        saved = [v.numpy() for v in self.model.variables] if batch_statistics else []
        with tf.device(self.device):
            logits = self._logits(X, batch_statistics).numpy()
        for variable, value in zip(self.model.variables, saved):
            variable.assign(value)
        return logits
