"""MXNet (Gluon, numpy interface) versions of the chapter's building blocks.

Import it as ``from d2lsupport import mxnet as d2l``; the other framework
modules offer the same names.

On x86 MXNet runs its operators on half the CPUs it sees, assuming two
hyperthreads per core; on a machine without them that leaves cores idle
(BENCHMARKS.md, "Formulations measured"). Unless
OMP_NUM_THREADS is already set, importing this module sets it to the number
of physical cores, before MXNet loads.
"""
import os
import tempfile
from pathlib import Path

from . import checks
from .checks import resnext_arguments
from .core import (DataModule, HyperParameters, ProgressBoard, add_to_class, chapter_access,
                   physical_cores, print_layer_table, public_names)

os.environ.setdefault('OMP_NUM_THREADS', str(physical_cores()))

import mxnet as mx  # noqa: E402  (after OMP_NUM_THREADS)
from mxnet import autograd, gluon, np, npx  # noqa: E402
from mxnet.gluon import nn  # noqa: E402

from .data import FashionMNISTBase  # noqa: E402
from .design import se_width  # noqa: E402
from .trainer import BaseTrainer, Recipe  # noqa: E402

npx.set_np()

__all__ = public_names('mxnet')
LAYOUT = 'NCHW'   # images as (batch, channels, height, width)


def cpu():
    return mx.cpu()


def gpu(i=0):
    return mx.gpu(i)


def num_gpus():
    return mx.context.num_gpus()


def try_gpu(i=0):
    """GPU `i` if it exists, else the CPU."""
    return gpu(i) if num_gpus() >= i + 1 else cpu()


def _trainable(block):
    """Number of trainable values in `block` (BN running statistics excluded)."""
    return sum(p.data().size for p in block.collect_params().values()
               if p.grad_req != 'null')


def _materialize(model, X_shape, ctx=None):
    """Run one forward pass on zeros so that deferred parameters get their shapes."""
    with autograd.predict_mode():
        model(np.zeros(X_shape, ctx=ctx or cpu()))


def param_count(model, X_shape):
    """Number of trainable parameters of `model` for inputs of shape `X_shape`."""
    X_shape = checks.input_shape('param_count', X_shape)
    _materialize(model, X_shape)
    return _trainable(model)


class Module(nn.Block, HyperParameters):
    """A model with its loss and optimizer; subclasses define `self.net`."""

    def forward(self, X):
        return self.net(X)

    def loss(self, Y_hat, Y):
        raise NotImplementedError

    def configure_optimizers(self):
        return gluon.Trainer(self.collect_params(), 'sgd', {'learning_rate': self.lr})

    def layer_summary(self, X_shape):
        """Print each top-level layer's output shape and parameter count."""
        X_shape = checks.input_shape('layer_summary', X_shape)
        _materialize(self, X_shape)
        X, rows = np.zeros(X_shape), []
        with autograd.predict_mode():
            for layer in self.net:
                X = layer(X)
                rows.append((layer, X.shape, _trainable(layer)))
        print_layer_table(self, rows)


class Classifier(Module):
    """A module whose loss is softmax cross-entropy."""

    def loss(self, Y_hat, Y, averaged=True):
        loss = gluon.loss.SoftmaxCrossEntropyLoss()(Y_hat, Y)
        return loss.mean() if averaged else loss.sum()

    def accuracy(self, Y_hat, Y, averaged=True):
        correct = (Y_hat.argmax(axis=1).astype(Y.dtype) == Y).astype('float32')
        return correct.mean() if averaged else correct.sum()


class FashionMNIST(FashionMNISTBase, DataModule):
    """Fashion-MNIST as batches of NCHW float arrays in [0, 1]."""

    def get_dataloader(self, train):
        for X, y in self.batches(train):
            yield np.array(X[:, None]), np.array(y)


class SqueezeExcitation(nn.HybridBlock):
    """Squeeze-and-excitation of Y, sized at its first call.

    Global average pooling, a 1x1 convolution to ``se_width(se_ratio, c_in)``
    channels, ReLU, a 1x1 convolution back, a sigmoid, and Y's channels
    scaled by the result. c_in is the channel count of the block input X,
    passed along with Y; the first call must be imperative (not hybridized),
    as in `param_count`, `layer_summary` and the Trainer, because no shape
    inference can derive the squeeze width.
    """

    def __init__(self, se_ratio):
        super().__init__()
        checks.fraction('SqueezeExcitation', 'se_ratio', se_ratio)
        self.se_ratio, self.channels, self.squeeze = se_ratio, None, None
        with self.name_scope():
            self.weight1, self.bias1, self.weight2, self.bias2 = (
                self.params.get(name, init=bias_init, allow_deferred_init=True)
                for name, bias_init in (('reduce_weight', None), ('reduce_bias', 'zeros'),
                                        ('expand_weight', None), ('expand_bias', 'zeros')))

    def infer_shape(self, Y, X):
        c, c_se = Y.shape[1], se_width(self.se_ratio, X.shape[1])
        self.channels, self.squeeze = c, c_se
        shapes = ((c_se, c, 1, 1), (c_se,), (c, c_se, 1, 1), (c,))
        for p, shape in zip((self.weight1, self.bias1, self.weight2, self.bias2), shapes):
            p.shape = shape

    def hybrid_forward(self, F, Y, X, weight1, bias1, weight2, bias2):
        if self.squeeze is None:
            raise RuntimeError('squeeze-and-excitation learns its width at the first '
                               'call; call the network once before hybridize()')
        S = Y.mean(axis=(2, 3), keepdims=True)
        S = F.npx.relu(F.npx.convolution(S, weight1, bias1, kernel=(1, 1),
                                         num_filter=self.squeeze))
        S = F.npx.convolution(S, weight2, bias2, kernel=(1, 1), num_filter=self.channels)
        return Y * F.npx.sigmoid(S)


# ResNeXtBlock, AnyNet, RegNetX32 and RegNetY32 are the chapter's, from d2lsupport/chapter/.
__getattr__, anynet = chapter_access(__name__)


def try_layer(layer, *shapes):
    """(output shape, parameter count) of a new `layer` called on zeros of `shapes`."""
    layer.initialize()
    out = layer(*(np.zeros(shape) for shape in shapes))
    return tuple(out.shape), sum(p.data().size for p in layer.collect_params().values()
                                 if p.grad_req != 'null')


def weights(model):
    """The trainable weights that `model` holds, as numpy arrays."""
    return [p.data().asnumpy() for p in model.collect_params().values()
            if p.grad_req != 'null']


class _Schedule(mx.lr_scheduler.LRScheduler):
    """The Trainer's recipe schedule; MXNet counts updates from 1."""

    def __init__(self, recipe, lr, steps):
        super().__init__(lr)
        self.recipe, self.steps = recipe, steps

    def __call__(self, num_update):
        return self.recipe.learning_rate(self.base_lr, num_update - 1, self.steps)


class Trainer(BaseTrainer):
    """Gluon training with the network hybridized into one static graph with
    ``static_alloc`` and ``static_shape`` (imperative if not `fast`), the fastest
    way measured on a CPU (BENCHMARKS.md, "Formulations measured").

    It computes in float32 only: MXNet's AMP rewrites the legacy operators but not
    the NumPy-interface ones the chapter uses (the loss stayed bit for bit that of
    float32), and its block conversion makes an inference-only block
    (BENCHMARKS.md, "bfloat16, checked by full runs")."""
    framework = 'mxnet'

    def seed_initialization(self, seed):
        mx.random.seed(seed)

    def recipe_optimizer(self, model, steps):
        r = self.recipe
        options = {'learning_rate': model.lr, 'wd': r.weight_decay, 'momentum': r.momentum,
                   'lr_scheduler': _Schedule(r, model.lr, steps)}
        return gluon.Trainer(model.collect_params(), 'nag' if r.nesterov else 'sgd', options)

    def build(self, model, data):
        X, _ = next(data.train_dataloader())
        model.collect_params().reset_ctx(self.device)
        _materialize(model, X.shape, self.device)
        if self.fast:
            model.net.hybridize(static_alloc=True, static_shape=True)
        self.optim = self.optimizer(model)

    def learning_rate(self):
        optimizer = self.optim.optimizer
        if optimizer.lr_scheduler is None:
            return optimizer.learning_rate
        return optimizer.lr_scheduler(optimizer.num_update + 1)   # MXNet counts from 1

    def state(self):
        with tempfile.TemporaryDirectory() as tmp:
            model, optimizer = os.path.join(tmp, 'model'), os.path.join(tmp, 'optimizer')
            self.model.save_parameters(model)
            self.optim.save_states(optimizer)
            return {'model': Path(model).read_bytes(), 'optimizer': Path(optimizer).read_bytes()}

    def load_state(self, state):
        with tempfile.TemporaryDirectory() as tmp:
            model, optimizer = Path(tmp, 'model'), Path(tmp, 'optimizer')
            model.write_bytes(state['model'])
            optimizer.write_bytes(state['optimizer'])
            self.model.load_parameters(str(model), ctx=self.device)
            self.optim.load_states(str(optimizer))

    def train_step(self, batch):
        X, y = (a.as_in_context(self.device) for a in batch)
        with autograd.record():
            loss = self.model.loss(self.model(X), y)
        loss.backward()
        self.optim.step(1)  # the loss is already a batch mean
        return loss

    def eval_step(self, batch):
        X, y = (a.as_in_context(self.device) for a in batch)
        Y_hat = self.model(X)
        return (self.model.loss(Y_hat, y, averaged=False),
                self.model.accuracy(Y_hat, y, averaged=False))

    def logits(self, X, batch_statistics=False):
        """With `batch_statistics`, batch normalization uses the statistics of X
        (as in training); the running statistics are left as they were."""
        X = X.as_in_context(self.device)
        if not batch_statistics:
            return self.model(X).asnumpy()
        params = self.model.collect_params().values()
        saved = [p.data().copy() for p in params]
        with autograd.train_mode():
            logits = self.model(X).asnumpy()
        for p, value in zip(params, saved):
            p.set_data(value)
        return logits
