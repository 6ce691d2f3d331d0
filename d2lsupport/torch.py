"""PyTorch versions of the chapter's building blocks.

Import it as ``from d2lsupport import torch as d2l``; the other framework
modules offer the same names.
"""
import copy
import io

import torch
from torch import nn
from torch.nn import functional as F

from . import checks
from .checks import resnext_arguments
from .core import (DataModule, HyperParameters, ProgressBoard, add_to_class, chapter_access,
                   print_layer_table, public_names)
from .data import FashionMNISTBase
from .design import se_width
from .trainer import BaseTrainer, Recipe

__all__ = public_names('pytorch')
LAYOUT = 'NCHW'   # images as (batch, channels, height, width)


def cpu():
    return torch.device('cpu')


def gpu(i=0):
    return torch.device(f'cuda:{i}')


def num_gpus():
    return torch.cuda.device_count()


def try_gpu(i=0):
    """GPU `i` if it exists, else the CPU."""
    return gpu(i) if num_gpus() >= i + 1 else cpu()


def init_cnn(module):
    """Xavier-uniform weights and zero biases for conv and dense layers.

    A lazy layer has no weights until its first call, so it is initialized
    right after it materializes, before that first forward pass.
    """
    if not isinstance(module, (nn.Conv2d, nn.Linear)):
        return
    if isinstance(module, nn.modules.lazy.LazyModuleMixin) and \
            module.has_uninitialized_params():
        def init_once(m, args):
            handle.remove()
            init_cnn(m)
        handle = module.register_forward_pre_hook(init_once)
        return
    nn.init.xavier_uniform_(module.weight)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def _materialize(model, X_shape):
    """Run one forward pass on zeros so that lazy layers get their shapes."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(X_shape))
    model.train(was_training)


def param_count(model, X_shape):
    """Number of trainable parameters of `model` for inputs of shape `X_shape`."""
    X_shape = checks.input_shape('param_count', X_shape)
    _materialize(model, X_shape)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class Module(nn.Module, HyperParameters):
    """A model with its loss and optimizer; subclasses define `self.net`."""

    def __init__(self):
        super().__init__()

    def forward(self, X):
        return self.net(X)

    def loss(self, Y_hat, Y):
        raise NotImplementedError

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def layer_summary(self, X_shape):
        """Print each top-level layer's output shape and parameter count."""
        X_shape = checks.input_shape('layer_summary', X_shape)
        _materialize(self, X_shape)
        X, rows = torch.zeros(X_shape), []
        self.eval()
        with torch.no_grad():
            for layer in self.net:
                X = layer(X)
                rows.append((layer, X.shape,
                             sum(p.numel() for p in layer.parameters())))
        self.train()
        print_layer_table(self, rows)


class Classifier(Module):
    """A module whose loss is softmax cross-entropy."""

    def loss(self, Y_hat, Y, averaged=True):
        return F.cross_entropy(Y_hat, Y, reduction='mean' if averaged else 'sum')

    def accuracy(self, Y_hat, Y, averaged=True):
        correct = (Y_hat.argmax(dim=1) == Y).float()
        return correct.mean() if averaged else correct.sum()


class FashionMNIST(FashionMNISTBase, DataModule):
    """Fashion-MNIST as batches of NCHW float tensors in [0, 1]."""

    def get_dataloader(self, train):
        for X, y in self.batches(train):
            yield torch.from_numpy(X).unsqueeze(1), torch.from_numpy(y)


class SqueezeExcitation(nn.modules.lazy.LazyModuleMixin, nn.Module):
    """Squeeze-and-excitation of Y, sized at its first call.

    Global average pooling, a 1x1 convolution to ``se_width(se_ratio, c_in)``
    channels, ReLU, a 1x1 convolution back, a sigmoid, and Y's channels
    scaled by the result. c_in is the channel count of the block input X,
    which the caller passes along with Y: in a block of lazy layers it is
    known only then.
    """

    def __init__(self, se_ratio):
        super().__init__()
        checks.fraction('SqueezeExcitation', 'se_ratio', se_ratio)
        self.se_ratio = se_ratio
        self.weight1, self.bias1, self.weight2, self.bias2 = (
            nn.UninitializedParameter() for _ in range(4))

    def initialize_parameters(self, Y, X):
        if not self.has_uninitialized_params():
            return
        c, c_se = Y.shape[1], se_width(self.se_ratio, X.shape[1])
        shapes = ((c_se, c, 1, 1), (c_se,), (c, c_se, 1, 1), (c,))
        with torch.no_grad():
            for p, shape in zip((self.weight1, self.bias1, self.weight2, self.bias2), shapes):
                p.materialize(shape, device=Y.device, dtype=Y.dtype)
            for weight, bias in ((self.weight1, self.bias1), (self.weight2, self.bias2)):
                nn.init.xavier_uniform_(weight)  # as init_cnn does for convolutions
                nn.init.zeros_(bias)

    def extra_repr(self):
        return f'se_ratio={self.se_ratio}'

    def forward(self, Y, X):
        S = F.relu(F.conv2d(Y.mean(dim=(2, 3), keepdim=True), self.weight1, self.bias1))
        return Y * torch.sigmoid(F.conv2d(S, self.weight2, self.bias2))


# ResNeXtBlock, AnyNet, RegNetX32 and RegNetY32 are the chapter's, from d2lsupport/chapter/.
__getattr__, anynet = chapter_access(__name__)


def try_layer(layer, *shapes):
    """(output shape, parameter count) of a new `layer` called on zeros of `shapes`."""
    with torch.no_grad():
        out = layer(*(torch.zeros(shape) for shape in shapes))
    return tuple(out.shape), sum(p.numel() for p in layer.parameters())


def weights(model):
    """The trainable weights that `model` holds, as numpy arrays."""
    return [p.detach().cpu().numpy() for p in model.parameters() if p.requires_grad]


def _to_bytes(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _from_bytes(data, device):
    return torch.load(io.BytesIO(data), map_location=device, weights_only=True)


class Trainer(BaseTrainer):
    """PyTorch training; `fast` (the default) uses channels-last memory format,
    the faster layout on a CPU (BENCHMARKS.md, "Formulations measured")."""
    framework = 'pytorch'
    bfloat16 = True

    def seed_initialization(self, seed):
        torch.manual_seed(seed)

    def recipe_optimizer(self, model, steps):
        r = self.recipe
        optim = torch.optim.SGD(model.parameters(), lr=model.lr, momentum=r.momentum,
                                nesterov=r.nesterov, weight_decay=r.weight_decay)
        # LambdaLR multiplies the initial rate by this factor: the recipe's rate for 1.0
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            optim, lambda step: float(r.learning_rate(1.0, step, steps)))
        return optim

    def _compute(self):
        """Autocast to bfloat16 when the Trainer computes in it: float32 weights,
        bfloat16 convolutions and matrix products (PyTorch keeps what needs
        float32, such as the loss, in float32)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=self.precision == 'bfloat16')

    def _to_device(self, X):
        X = X.to(self.device)
        return X.contiguous(memory_format=torch.channels_last) if self.fast else X

    def build(self, model, data):
        X, _ = next(data.train_dataloader())
        _materialize(model, X.shape)
        model.to(self.device)
        if self.fast:
            model.to(memory_format=torch.channels_last)
        self.schedule = None
        self.optim = self.optimizer(model)

    def learning_rate(self):
        return self.optim.param_groups[0]['lr']

    def state(self):
        optimizer = {'optimizer': self.optim.state_dict(),
                     'schedule': None if self.schedule is None else self.schedule.state_dict()}
        return {'model': _to_bytes(self.model.state_dict()), 'optimizer': _to_bytes(optimizer)}

    def load_state(self, state):
        self.model.load_state_dict(_from_bytes(state['model'], self.device))
        optimizer = _from_bytes(state['optimizer'], self.device)
        self.optim.load_state_dict(optimizer['optimizer'])
        if self.schedule is not None:
            self.schedule.load_state_dict(optimizer['schedule'])

    def train_step(self, batch):
        X, y = self._to_device(batch[0]), batch[1].to(self.device)
        self.model.train()
        with self._compute():
            loss = self.model.loss(self.model(X), y)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        self.optim.step()
        if self.schedule is not None:
            self.schedule.step()
        return loss.detach()

    def eval_step(self, batch):
        X, y = self._to_device(batch[0]), batch[1].to(self.device)
        self.model.eval()
        with torch.no_grad(), self._compute():
            Y_hat = self.model(X)
            return (self.model.loss(Y_hat, y, averaged=False),
                    self.model.accuracy(Y_hat, y, averaged=False))

    def logits(self, X, batch_statistics=False):
        """With `batch_statistics`, batch normalization uses the statistics of X
        (as in training) on a copy of the model, whose running statistics move."""
        model = copy.deepcopy(self.model) if batch_statistics else self.model
        model.train(batch_statistics)
        with torch.no_grad(), self._compute():
            return model(self._to_device(X)).float().cpu().numpy()
