"""PyTorch versions of the chapter's building blocks.

Import it as ``from d2lsupport import torch as d2l``; the other framework
modules offer the same names.
"""
import torch
from torch import nn
from torch.nn import functional as F

from .core import DataModule, HyperParameters, ProgressBoard, add_to_class, print_layer_table
from .data import FashionMNISTBase
from .trainer import BaseTrainer

__all__ = ['add_to_class', 'HyperParameters', 'ProgressBoard', 'DataModule', 'Module',
           'Classifier', 'FashionMNIST', 'Trainer', 'ResNeXtBlock', 'init_cnn',
           'param_count', 'cpu', 'gpu', 'num_gpus', 'try_gpu']


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
        module.register_forward_pre_hook(lambda m, args: init_cnn(m))
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
        _materialize(self, X_shape)
        X, rows = torch.zeros(X_shape), []
        self.eval()
        with torch.no_grad():
            for layer in self.net:
                X = layer(X)
                rows.append((type(layer).__name__, X.shape,
                             sum(p.numel() for p in layer.parameters())))
        self.train()
        print_layer_table(rows)


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


class ResNeXtBlock(nn.Module):
    """Bottleneck residual block with a grouped 3x3 convolution.

    `groups` is the group width (channels per group), so the 3x3 convolution
    has ``bot_channels // groups`` groups. PyTorch's native grouped convolution
    is the fastest formulation measured on a CPU here (with channels-last
    memory format, which the Trainer switches on).
    """

    def __init__(self, num_channels, groups, bot_mul, use_1x1conv=False, strides=1):
        super().__init__()
        bot_channels = int(round(num_channels * bot_mul))
        self.conv1 = nn.LazyConv2d(bot_channels, kernel_size=1)
        self.conv2 = nn.LazyConv2d(bot_channels, kernel_size=3, stride=strides,
                                   padding=1, groups=bot_channels // groups)
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1)
        self.bn1, self.bn2, self.bn3 = (nn.LazyBatchNorm2d() for _ in range(3))
        if use_1x1conv:
            self.conv4 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides)
            self.bn4 = nn.LazyBatchNorm2d()
        else:
            self.conv4 = None

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = F.relu(self.bn2(self.conv2(Y)))
        Y = self.bn3(self.conv3(Y))
        if self.conv4 is not None:
            X = self.bn4(self.conv4(X))
        return F.relu(Y + X)


class Trainer(BaseTrainer):
    """Eager PyTorch training with channels-last memory format on the CPU."""
    framework = 'pytorch'

    def __init__(self, max_epochs, num_gpus=0, channels_last=True):
        super().__init__(max_epochs, num_gpus)
        self.channels_last = channels_last
        self.device = try_gpu() if num_gpus else cpu()

    def device_name(self):
        return str(self.device)

    def _to_device(self, X):
        X = X.to(self.device)
        return X.contiguous(memory_format=torch.channels_last) if self.channels_last else X

    def prepare(self, model, data):
        X, _ = next(data.train_dataloader())
        _materialize(model, X.shape)
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.optim = model.configure_optimizers()

    def train_step(self, batch):
        X, y = self._to_device(batch[0]), batch[1].to(self.device)
        self.model.train()
        loss = self.model.loss(self.model(X), y)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        self.optim.step()
        return loss.detach()

    def eval_step(self, batch):
        X, y = self._to_device(batch[0]), batch[1].to(self.device)
        self.model.eval()
        with torch.no_grad():
            Y_hat = self.model(X)
            return (self.model.loss(Y_hat, y, averaged=False),
                    self.model.accuracy(Y_hat, y, averaged=False))
