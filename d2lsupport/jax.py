"""JAX/Flax versions of the chapter's building blocks.

Import it as ``from d2lsupport import jax as d2l``; the other framework
modules offer the same names. Images are NHWC (channels last), as Flax
expects.
"""
from functools import partial

import numpy as np

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn
from flax import serialization

from . import checks
from .checks import resnext_arguments
from .core import (DataModule, HyperParameters, ProgressBoard, add_to_class, chapter_access,
                   print_layer_table, public_names)
from .data import FashionMNISTBase
from .design import se_width
from .trainer import BaseTrainer, Recipe

__all__ = public_names('jax')
LAYOUT = 'NHWC'   # images as (batch, height, width, channels), as Flax expects

_xavier = nn.initializers.xavier_uniform()


def cpu():
    return jax.devices('cpu')[0]


def gpu(i=0):
    return jax.devices('gpu')[i]


def num_gpus():
    try:
        return len(jax.devices('gpu'))
    except RuntimeError:
        return 0


def try_gpu(i=0):
    """GPU `i` if it exists, else the CPU."""
    return gpu(i) if num_gpus() >= i + 1 else cpu()


def _size(tree):
    """The number of scalars in a pytree of arrays."""
    return sum(x.size for x in jax.tree_util.tree_leaves(tree))


def param_count(model, X_shape):
    """Number of trainable parameters of `model` for inputs of shape `X_shape`."""
    X_shape = checks.input_shape('param_count', X_shape)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros(X_shape))
    return _size(shapes['params'])


class Module(nn.Module, HyperParameters):
    """A model with its loss and optimizer; subclasses define `self.net`."""

    def __call__(self, X):
        return self.net(X)

    def loss(self, Y_hat, Y):
        raise NotImplementedError

    def configure_optimizers(self):
        return optax.sgd(self.lr)

    def layer_summary(self, X_shape):
        """Print each top-level layer's output shape and parameter count."""
        X_shape = checks.input_shape('layer_summary', X_shape)
        X = jnp.zeros(X_shape)
        # shapes only (jax.eval_shape): nothing is computed or compiled
        variables = jax.eval_shape(self.init, jax.random.PRNGKey(0), X)
        rows = []

        def run_layers(module, X):
            for layer in module.net.layers:
                X = layer(X)
                params = layer.variables.get('params', {}) \
                    if isinstance(layer, nn.Module) else {}
                rows.append((layer, X.shape, _size(params)))

        jax.eval_shape(partial(self.apply, method=run_layers, mutable=['batch_stats']),
                       variables, X)
        print_layer_table(self, rows)


class Classifier(Module):
    """A module whose loss is softmax cross-entropy."""

    def loss(self, Y_hat, Y, averaged=True):
        losses = optax.softmax_cross_entropy_with_integer_labels(Y_hat, Y)
        return losses.mean() if averaged else losses.sum()

    def accuracy(self, Y_hat, Y, averaged=True):
        correct = (Y_hat.argmax(axis=1) == Y).astype(jnp.float32)
        return correct.mean() if averaged else correct.sum()


class FashionMNIST(FashionMNISTBase, DataModule):
    """Fashion-MNIST as batches of NHWC float arrays in [0, 1]."""

    def get_dataloader(self, train):
        for X, y in self.batches(train):
            yield jnp.asarray(X[..., None]), jnp.asarray(y)


class Conv1x1(nn.Module):
    """A 1x1 convolution run as a matrix product over the channels.

    Kernel (1, 1, c_in, c_out), Xavier fans and bias are those of ``nn.Conv``;
    XLA's CPU convolution is slower for 1x1 kernels
    (BENCHMARKS.md, "Formulations measured").
    """
    num_channels: int
    strides: int = 1

    @nn.compact
    def __call__(self, X):
        kernel = self.param('kernel', _xavier, (1, 1, X.shape[-1], self.num_channels))
        bias = self.param('bias', nn.initializers.zeros, (self.num_channels,))
        X = X[:, ::self.strides, ::self.strides, :]
        Y = X.reshape(-1, X.shape[-1]) @ kernel[0, 0]
        return Y.reshape(X.shape[:-1] + (self.num_channels,)) + bias


class GroupedConv3x3(nn.Module):
    """A 3x3 convolution (padding 1) whose channels form groups of `group_width`.

    Its kernel (3, 3, group_width, num_channels), bias and Xavier fans are
    those of a plain grouped convolution. It runs as one convolution per group
    on the split channels, concatenated: same parameters and math, but on a
    CPU XLA's ``feature_group_count`` is much slower, and so are a
    block-diagonal dense kernel and image patches times a batched matrix
    product (BENCHMARKS.md, "Formulations measured").
    """
    num_channels: int
    group_width: int
    strides: int = 1

    @nn.compact
    def __call__(self, X):
        kernel = self.param('kernel', _xavier, (3, 3, self.group_width, self.num_channels))
        bias = self.param('bias', nn.initializers.zeros, (self.num_channels,))
        groups = self.num_channels // self.group_width
        conv = partial(jax.lax.conv_general_dilated, window_strides=(self.strides,) * 2,
                       padding=((1, 1), (1, 1)), dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
        Y = [conv(x, k) for x, k in zip(jnp.split(X, groups, axis=-1),
                                        jnp.split(kernel, groups, axis=-1))]
        return jnp.concatenate(Y, axis=-1) + bias


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation of Y: global average pooling, a 1x1 convolution
    to ``se_width(se_ratio, c_in)`` channels, ReLU, a 1x1 convolution back, a
    sigmoid, and Y's channels scaled by the result. c_in is the channel count
    of the block input X, which the caller passes along with Y."""
    se_ratio: float

    def __post_init__(self):
        checks.fraction('SqueezeExcitation', 'se_ratio', self.se_ratio)
        super().__post_init__()

    @nn.compact
    def __call__(self, Y, X):
        S = Y.mean(axis=(1, 2), keepdims=True)
        S = nn.relu(Conv1x1(se_width(self.se_ratio, X.shape[-1]))(S))
        return Y * nn.sigmoid(Conv1x1(Y.shape[-1])(S))


# ResNeXtBlock, AnyNet, RegNetX32 and RegNetY32 are the chapter's, from d2lsupport/chapter/.
__getattr__, anynet = chapter_access(__name__)


def try_layer(layer, *shapes):
    """(output shape, parameter count) of a new `layer` called on zeros of `shapes`."""
    out, variables = layer.init_with_output(jax.random.PRNGKey(0),
                                            *(jnp.zeros(shape) for shape in shapes))
    return tuple(out.shape), _size(variables.get('params', {}))


def weights(model):
    """The trainable weights that `model` holds: none, since a Flax module holds
    no state (the Trainer keeps the parameters)."""
    return []


def _eval_model(model):
    """A copy of `model` whose batch normalization uses the running statistics."""
    return model.clone(training=False) if hasattr(model, 'training') else model


def _initialize(model, key, X):
    """`model.init` as one compiled program, shared by equal models. Run operation
    by operation, it would compile each operation of a new network on its own. A
    model with an unhashable attribute (a list, say) cannot be shared that way and
    is initialized operation by operation."""
    try:
        hash(model)
    except TypeError:
        return model.init(key, X)
    return _compiled_init(model, key, X)


# XLA's optimization level 0 (its default is 3): initialization runs once, and compiles
# in a third of the time at that level, to the same values (BENCHMARKS.md)
@partial(jax.jit, static_argnums=0, compiler_options={'xla_backend_optimization_level': 0})
def _compiled_init(model, key, X):
    return model.init(key, X)


def _in(dtype, params, X):
    """The parameters and the images in the dtype to compute in (float32: as they are)."""
    if dtype == jnp.float32:
        return params, X
    return jax.tree_util.tree_map(lambda p: p.astype(dtype), params), X.astype(dtype)


def _train_step(model, optim, dtype, params, batch_stats, opt_state, X, y):
    """One SGD step, computing in `dtype` (the loss, gradients and update in
    float32); returns the new state and the batch loss."""
    def loss_fn(params):
        computing, X_in = _in(dtype, params, X)
        Y_hat, updates = model.apply({'params': computing, 'batch_stats': batch_stats}, X_in,
                                     mutable=['batch_stats'])
        return model.loss(Y_hat.astype(jnp.float32), y), updates.get('batch_stats', {})

    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optim.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), batch_stats, opt_state, loss


def _eval_step(model, dtype, params, batch_stats, X, y):
    """Summed loss and number of correct predictions of a batch."""
    params, X = _in(dtype, params, X)
    Y_hat = model.apply({'params': params, 'batch_stats': batch_stats}, X).astype(jnp.float32)
    return model.loss(Y_hat, y, averaged=False), model.accuracy(Y_hat, y, averaged=False)


class Trainer(BaseTrainer):
    """Training with one jit-compiled step (eager if not `fast`): forward,
    gradient, SGD and BN update.

    The Trainer holds the parameters, the batch-norm statistics and the
    optimizer state; each new batch shape (e.g. a smaller last batch) compiles once.
    """
    framework = 'jax'
    bfloat16 = True

    def seed_initialization(self, seed):
        self.init_key = jax.random.PRNGKey(seed)

    def recipe_optimizer(self, model, steps):
        r = self.recipe
        self.schedule = partial(r.learning_rate, model.lr, steps=steps, xp=jnp)
        return optax.chain(optax.add_decayed_weights(r.weight_decay),
                           optax.sgd(self.schedule, momentum=r.momentum or None,
                                     nesterov=r.nesterov))

    def build(self, model, data):
        X, _ = next(data.train_dataloader())
        key = self.init_key if self.seed is not None else jax.random.PRNGKey(0)
        variables = _initialize(model, key, X)
        variables = jax.device_put(variables, self.device)
        self.params = variables['params']
        self.batch_stats = variables.get('batch_stats', {})
        self.schedule = None
        optim = self.optimizer(model)
        # committed to the device like the step's outputs: an uncommitted state
        # (optax makes its step counters so) would compile the step a second time
        self.opt_state = jax.device_put(optim.init(self.params), self.device)
        self.dtype = jnp.bfloat16 if self.precision == 'bfloat16' else jnp.float32
        self._train = partial(_train_step, model, optim, self.dtype)
        self._eval = partial(_eval_step, _eval_model(model), self.dtype)
        if self.fast:
            self._train = jax.jit(self._train, donate_argnums=(0, 1, 2))
            self._eval = jax.jit(self._eval)

    def learning_rate(self):
        if self.schedule is None:
            return self.model.lr
        # the step counter of the recipe's optimizer: the one `count` in its state
        # (add_decayed_weights keeps none; sgd's schedule keeps one)
        return float(self.schedule(optax.tree_utils.tree_get(self.opt_state, 'count')))

    def _parts(self):
        return {'model': {'params': self.params, 'batch_stats': self.batch_stats},
                'optimizer': self.opt_state}

    def state(self):
        return {name: serialization.to_bytes(part) for name, part in self._parts().items()}

    def load_state(self, state):
        restored = {name: jax.device_put(serialization.from_bytes(part, state[name]), self.device)
                    for name, part in self._parts().items()}
        self.params = restored['model']['params']
        self.batch_stats = restored['model']['batch_stats']
        self.opt_state = restored['optimizer']

    def train_step(self, batch):
        X, y = jax.device_put(batch, self.device)
        self.params, self.batch_stats, self.opt_state, loss = self._train(
            self.params, self.batch_stats, self.opt_state, X, y)
        return loss

    def eval_step(self, batch):
        X, y = jax.device_put(batch, self.device)
        return self._eval(self.params, self.batch_stats, X, y)

    def logits(self, X, batch_statistics=False):
        """With `batch_statistics`, batch normalization uses the statistics of X
        (as in training); the running statistics are left as they were."""
        params, X = _in(self.dtype, self.params, X)
        variables = {'params': params, 'batch_stats': self.batch_stats}
        if not batch_statistics:
            return np.asarray(_eval_model(self.model).apply(variables, X), np.float32)
        logits, _ = self.model.apply(variables, X, mutable=['batch_stats'])
        return np.asarray(logits, np.float32)
