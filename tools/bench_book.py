"""The book's way of training RegNetX32, re-implemented per framework as the
benchmark's baseline (`python -m tools.bench book --framework ...`).

The book is d2l 1.0.3: its section on network design spaces and the library
code that section runs (its Trainer, Module.plot, ProgressBoard, FashionMNIST
and ResNeXtBlock). Each `Book<Framework>` below does on every step, batch and
epoch what that framework's tab does, with the same network (RegNetX32, stem
32, stages (4, 32) and (6, 80), group width 16, b = 1) and plain SGD:

* the network is the tab's formulation: PyTorch's lazy layers with grouped
  `Conv2d` in NCHW; MXNet's Gluon layers run imperatively (never hybridized),
  with `npx.relu`; Keras's `Conv2D(groups=...)` and `BatchNormalization`; Flax's
  `nn.Conv(feature_group_count=...)` and `nn.BatchNorm`;
* the data is the tab's loader: PyTorch and MXNet resize every image on its own
  in 4 worker processes (PIL in PyTorch, as torchvision's `Resize` does; Gluon's
  `Resize` transform in MXNet); TensorFlow batches the raw images with tf.data
  and resizes each batch with `tf.image.resize_with_pad`;
* the step is the tab's: PyTorch and MXNet eager (autograd), TensorFlow eager
  under a `GradientTape` (no `tf.function`), JAX `value_and_grad` of a jitted
  loss followed by an optimizer update run operation by operation;
* every training and validation batch hands its loss (and in validation its
  accuracy) to a board like the book's `ProgressBoard`, converted to a host
  number as the book does, and the board redraws the whole figure as SVG twice
  per epoch for training and once for validation, adding new lines to the same
  axes at each redraw as the book's does.

Where the baseline departs from the book, it is to measure the same work:
* the images come from our copy of the raw files (`d2lsupport.data.load_split`)
  rather than torchvision's, Gluon's or Keras's dataset classes, which would
  download them;
* the book's TensorFlow tab calls its layers without ``training=True``, so
  Keras normalizes with the moving statistics, which then never change: that
  network trains without batch normalization. The baseline passes
  ``training=True`` in training steps, as ours does;
* the book's JAX tab loads through TensorFlow's tf.data. The JAX environment
  has no TensorFlow, so the baseline resizes each batch with `jax.image.resize`
  (bilinear) in the main process, which is the cheap part of that step.
"""
import io
import statistics
import time
import warnings

import numpy as np

from d2lsupport.design import REGNETX32, anynet_arguments

# RegNetX32 as the book's tabs describe a network: (depth, width, group width, bot_mul)
STEM, STAGES, CLASSES = (anynet_arguments(REGNETX32)[key]
                         for key in ('stem_width', 'arch', 'num_classes'))
WORKERS = 4   # the book's d2l.get_dataloader_workers() on Linux


class BookBoard:
    """The book's ProgressBoard: it averages every `every_n` points of a curve
    into one, and at each new averaged point plots every curve again onto the
    same axes (without clearing them) and displays the figure as SVG."""

    def __init__(self, max_epochs):
        self.max_epochs, self.raw, self.curves, self.fig = max_epochs, {}, {}, None

    def draw(self, x, y, label, every_n):
        points = self.raw.setdefault(label, [])
        points.append((x, y))
        if len(points) != every_n:
            return
        self.curves.setdefault(label, []).append(
            (sum(p[0] for p in points) / every_n, sum(p[1] for p in points) / every_n))
        points.clear()
        import matplotlib.pyplot as plt
        if self.fig is None:
            self.fig = plt.figure(figsize=(3.5, 2.5))
        lines = [plt.plot([p[0] for p in curve], [float(p[1]) for p in curve],
                          linestyle=style, color=color)[0]
                 for curve, style, color in zip(self.curves.values(), ('-', '--', '-.', ':'),
                                                ('C0', 'C1', 'C2', 'C3'))]
        axes = plt.gca()
        axes.set_xlim([0, self.max_epochs])
        axes.set_xlabel('epoch')
        axes.legend(lines, list(self.curves))
        self.fig.savefig(io.BytesIO(), format='svg')


class BookLoop:
    """The book's Trainer.fit_epoch around a framework's data, step and
    host conversion (`train_batches`, `val_batches`, `train_step`,
    `val_step`); subclasses provide them."""

    def __init__(self, images, labels, val_images, val_labels, lr, max_epochs, size=96):
        self.lr, self.size, self.epoch, self.train_batch_idx = lr, size, 0, 0
        self.board = BookBoard(max_epochs)
        self.setup(images, labels, val_images, val_labels)

    def fit_epoch(self):
        """One epoch as the book's Trainer runs it; returns its seconds."""
        start = time.perf_counter()
        num_train, num_val = self.num_batches
        for batch in self.train_batches():
            loss = self.train_step(batch)
            self.train_batch_idx += 1
            self.board.draw(self.train_batch_idx / num_train, loss, 'train_loss',
                            num_train // 2)
        for batch in self.val_batches():
            loss, acc = self.val_step(batch)
            self.board.draw(self.epoch + 1, loss, 'val_loss', num_val)
            self.board.draw(self.epoch + 1, acc, 'val_acc', num_val)
        self.epoch += 1
        return time.perf_counter() - start


def _ceil_div(n, d):
    return -(-n // d)


class BookPyTorch(BookLoop):
    def setup(self, images, labels, val_images, val_labels):
        size = self.size
        import torch
        from PIL import Image
        from torch import nn
        from torch.nn import functional as F
        from torch.utils.data import DataLoader, Dataset
        self.torch, self.F = torch, F
        warnings.filterwarnings('ignore', 'This DataLoader will create 4 worker processes')

        class Images(Dataset):
            """Each image resized on its own as a PIL image, then to a [0, 1] tensor
            (torchvision's Resize and ToTensor)."""

            def __init__(self, images, labels):
                self.images, self.labels = images, labels

            def __len__(self):
                return len(self.labels)

            def __getitem__(self, i):
                image = Image.fromarray(self.images[i]).resize((size, size), Image.BILINEAR)
                X = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255)
                return X.unsqueeze(0), int(self.labels[i])

        class Block(nn.Module):
            def __init__(self, width, group_width, bot_mul, project=False, strides=1):
                super().__init__()
                bot = int(round(width * bot_mul))
                self.conv1 = nn.LazyConv2d(bot, 1)
                self.conv2 = nn.LazyConv2d(bot, 3, stride=strides, padding=1,
                                           groups=bot // group_width)
                self.conv3 = nn.LazyConv2d(width, 1)
                self.bn1, self.bn2, self.bn3 = (nn.LazyBatchNorm2d() for _ in range(3))
                self.conv4 = nn.LazyConv2d(width, 1, stride=strides) if project else None
                self.bn4 = nn.LazyBatchNorm2d() if project else None

            def forward(self, X):
                Y = F.relu(self.bn1(self.conv1(X)))
                Y = F.relu(self.bn2(self.conv2(Y)))
                Y = self.bn3(self.conv3(Y))
                if self.conv4 is not None:
                    X = self.bn4(self.conv4(X))
                return F.relu(Y + X)

        layers = [nn.Sequential(nn.LazyConv2d(STEM, 3, stride=2, padding=1),
                                nn.LazyBatchNorm2d(), nn.ReLU())]
        for depth, width, group_width, bot_mul in STAGES:
            layers.append(nn.Sequential(
                Block(width, group_width, bot_mul, project=True, strides=2),
                *(Block(width, group_width, bot_mul) for _ in range(depth - 1))))
        layers.append(nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                                    nn.LazyLinear(CLASSES)))
        self.net = nn.Sequential(*layers)
        self.net(torch.zeros(1, 1, size, size))   # the book's apply_init, then Xavier
        for m in self.net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
        self.optim = torch.optim.SGD(self.net.parameters(), lr=self.lr)
        self.train_loader = DataLoader(Images(images, labels), 128, shuffle=True,
                                       num_workers=WORKERS)
        self.val_loader = DataLoader(Images(val_images, val_labels), 128, num_workers=WORKERS)
        self.num_batches = len(self.train_loader), len(self.val_loader)

    def param_count(self):
        return sum(p.numel() for p in self.net.parameters())

    def train_batches(self):
        self.net.train()
        return iter(self.train_loader)   # new worker processes every epoch, as in the book

    def val_batches(self):
        self.net.eval()
        return iter(self.val_loader)

    def train_step(self, batch):
        X, y = batch
        loss = self.F.cross_entropy(self.net(X), y)
        value = loss.detach().numpy()   # Module.plot converts every loss to numpy
        self.optim.zero_grad()
        loss.backward()
        self.optim.step()
        return value

    def val_step(self, batch):
        X, y = batch
        with self.torch.no_grad():
            Y_hat = self.net(X)
            loss = self.F.cross_entropy(Y_hat, y)
            acc = (Y_hat.argmax(dim=1) == y).float().mean()
        return loss.numpy(), acc.numpy()


class BookMXNet(BookLoop):
    def setup(self, images, labels, val_images, val_labels):
        size = self.size
        import mxnet as mx
        from mxnet import autograd, gluon, init, npx
        from mxnet.gluon import nn
        from mxnet.gluon.data.vision import transforms
        npx.set_np()
        self.autograd, self.npx = autograd, npx

        class Block(nn.Block):
            def __init__(self, width, group_width, bot_mul, project=False, strides=1):
                super().__init__()
                bot = int(round(width * bot_mul))
                self.conv1 = nn.Conv2D(bot, 1)
                self.conv2 = nn.Conv2D(bot, 3, strides=strides, padding=1,
                                       groups=bot // group_width)
                self.conv3 = nn.Conv2D(width, 1)
                self.bn1, self.bn2, self.bn3 = nn.BatchNorm(), nn.BatchNorm(), nn.BatchNorm()
                self.conv4 = nn.Conv2D(width, 1, strides=strides) if project else None
                self.bn4 = nn.BatchNorm() if project else None

            def forward(self, X):
                Y = npx.relu(self.bn1(self.conv1(X)))
                Y = npx.relu(self.bn2(self.conv2(Y)))
                Y = self.bn3(self.conv3(Y))
                if self.conv4 is not None:
                    X = self.bn4(self.conv4(X))
                return npx.relu(Y + X)

        net = nn.Sequential()
        stem = nn.Sequential()
        stem.add(nn.Conv2D(STEM, 3, padding=1, strides=2), nn.BatchNorm(),
                 nn.Activation('relu'))
        net.add(stem)
        for depth, width, group_width, bot_mul in STAGES:
            stage = nn.Sequential()
            stage.add(Block(width, group_width, bot_mul, project=True, strides=2))
            for _ in range(depth - 1):   # the book's stage bug fixed: same arguments
                stage.add(Block(width, group_width, bot_mul))
            net.add(stage)
        net.add(nn.GlobalAvgPool2D(), nn.Dense(CLASSES))
        net.initialize(init.Xavier())
        net(mx.np.zeros((1, 1, size, size)))
        self.net, self.loss = net, gluon.loss.SoftmaxCrossEntropyLoss()
        self.optim = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': self.lr})
        resize = transforms.Compose([transforms.Resize(size), transforms.ToTensor()])

        def loader(images, labels, train):
            data = gluon.data.ArrayDataset(mx.np.array(images[..., None]),
                                           mx.np.array(labels, dtype=np.int32))
            return gluon.data.DataLoader(data.transform_first(resize), 128, shuffle=train,
                                         num_workers=WORKERS)
        self.train_loader = loader(images, labels, True)
        self.val_loader = loader(val_images, val_labels, False)
        self.num_batches = len(self.train_loader), len(self.val_loader)

    def param_count(self):
        return sum(p.data().size for p in self.net.collect_params().values()
                   if p.grad_req != 'null')

    def train_batches(self):
        return iter(self.train_loader)

    def val_batches(self):
        return iter(self.val_loader)

    def train_step(self, batch):
        X, y = batch
        with self.autograd.record():
            loss = self.loss(self.net(X), y).mean()
            value = loss.asnumpy()   # Module.plot converts every loss to numpy
        loss.backward()
        self.optim.step(1)
        return value

    def val_step(self, batch):
        X, y = batch
        Y_hat = self.net(X)
        acc = (Y_hat.argmax(axis=1).astype(y.dtype) == y).astype(np.float32).mean()
        return self.loss(Y_hat, y).mean().asnumpy(), acc.asnumpy()


class BookTensorFlow(BookLoop):
    def setup(self, images, labels, val_images, val_labels):
        size = self.size
        import tensorflow as tf
        self.tf = tf
        layers = tf.keras.layers

        class Block(tf.keras.Model):
            def __init__(self, width, group_width, bot_mul, project=False, strides=1):
                super().__init__()
                bot = int(round(width * bot_mul))
                self.conv1 = layers.Conv2D(bot, 1)
                self.conv2 = layers.Conv2D(bot, 3, strides=strides, padding='same',
                                           groups=bot // group_width)
                self.conv3 = layers.Conv2D(width, 1)
                self.bn1, self.bn2, self.bn3 = (layers.BatchNormalization() for _ in range(3))
                self.conv4 = layers.Conv2D(width, 1, strides=strides) if project else None
                self.bn4 = layers.BatchNormalization() if project else None

            def call(self, X, training=None):
                relu = tf.keras.activations.relu
                Y = relu(self.bn1(self.conv1(X), training=training))
                Y = relu(self.bn2(self.conv2(Y), training=training))
                Y = self.bn3(self.conv3(Y), training=training)
                if self.conv4 is not None:
                    X = self.bn4(self.conv4(X), training=training)
                return relu(Y + X)

        net = tf.keras.models.Sequential([tf.keras.models.Sequential([
            layers.Conv2D(STEM, 3, strides=2, padding='same'), layers.BatchNormalization(),
            layers.Activation('relu')])])
        for depth, width, group_width, bot_mul in STAGES:
            net.add(tf.keras.models.Sequential(
                [Block(width, group_width, bot_mul, project=True, strides=2)]
                + [Block(width, group_width, bot_mul) for _ in range(depth - 1)]))
        net.add(tf.keras.models.Sequential([layers.GlobalAvgPool2D(), layers.Dense(CLASSES)]))
        net(tf.zeros((1, size, size, 1)))
        self.net = net
        self.loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.optim = tf.keras.optimizers.SGD(self.lr)

        def dataset(images, labels, train):
            """The book's tf.data pipeline: scale, batch, resize each batch, shuffle."""
            scaled = (tf.expand_dims(images, axis=3) / 255, tf.cast(labels, 'int32'))
            return (tf.data.Dataset.from_tensor_slices(scaled).batch(128)
                    .map(lambda X, y: (tf.image.resize_with_pad(X, size, size), y))
                    .shuffle(len(labels) if train else 1))
        self.train_data = dataset(images, labels, True)
        self.val_data = dataset(val_images, val_labels, False)
        self.num_batches = _ceil_div(len(labels), 128), _ceil_div(len(val_labels), 128)

    def param_count(self):
        return sum(int(np.prod(v.shape)) for v in self.net.trainable_variables)

    def train_batches(self):
        return iter(self.train_data)

    def val_batches(self):
        return iter(self.val_data)

    def train_step(self, batch):
        X, y = batch
        with self.tf.GradientTape() as tape:
            loss = self.loss(y, self.net(X, training=True))
            value = loss.numpy()   # Module.plot converts every loss to numpy
        grads = tape.gradient(loss, self.net.trainable_variables)
        self.optim.apply_gradients(zip(grads, self.net.trainable_variables))
        return value

    def val_step(self, batch):
        X, y = batch
        Y_hat = self.net(X)
        acc = self.tf.reduce_mean(self.tf.cast(
            self.tf.cast(self.tf.argmax(Y_hat, axis=1), y.dtype) == y, self.tf.float32))
        return self.loss(y, Y_hat).numpy(), acc.numpy()


class BookJAX(BookLoop):
    def setup(self, images, labels, val_images, val_labels):
        size = self.size
        from functools import partial

        import jax
        import jax.numpy as jnp
        import optax
        from flax import linen as nn
        from flax.training import train_state
        self.jax, self.jnp = jax, jnp

        class Block(nn.Module):
            width: int
            group_width: int
            bot_mul: float
            project: bool = False
            strides: tuple = (1, 1)
            training: bool = True

            def setup(self):
                bot = int(round(self.width * self.bot_mul))
                self.conv1 = nn.Conv(bot, (1, 1))
                self.conv2 = nn.Conv(bot, (3, 3), strides=self.strides, padding='same',
                                     feature_group_count=bot // self.group_width)
                self.conv3 = nn.Conv(self.width, (1, 1))
                self.bns = [nn.BatchNorm(not self.training) for _ in range(4 if self.project
                                                                           else 3)]
                if self.project:
                    self.conv4 = nn.Conv(self.width, (1, 1), strides=self.strides)

            def __call__(self, X):
                Y = nn.relu(self.bns[0](self.conv1(X)))
                Y = nn.relu(self.bns[1](self.conv2(Y)))
                Y = self.bns[2](self.conv3(Y))
                if self.project:
                    X = self.bns[3](self.conv4(X))
                return nn.relu(Y + X)

        def network(training):
            layers = [nn.Sequential([nn.Conv(STEM, (3, 3), strides=(2, 2), padding=(1, 1)),
                                     nn.BatchNorm(not training), nn.relu])]
            for depth, width, group_width, bot_mul in STAGES:
                layers.append(nn.Sequential(
                    [Block(width, group_width, bot_mul, True, (2, 2), training)]
                    + [Block(width, group_width, bot_mul, training=training)
                       for _ in range(depth - 1)]))
            layers.append(nn.Sequential([
                lambda x: nn.avg_pool(x, x.shape[1:3], strides=x.shape[1:3], padding='valid'),
                lambda x: x.reshape((x.shape[0], -1)), nn.Dense(CLASSES)]))
            return nn.Sequential(layers)

        train_net, eval_net = network(True), network(False)
        variables = train_net.init(jax.random.PRNGKey(0), jnp.zeros((1, size, size, 1)))

        class State(train_state.TrainState):
            batch_stats: dict

        self.state = State.create(apply_fn=train_net.apply, params=variables['params'],
                                  batch_stats=variables['batch_stats'], tx=optax.sgd(self.lr))
        cross_entropy = optax.softmax_cross_entropy_with_integer_labels

        @jax.jit
        def train_loss(params, batch_stats, X, y):
            Y_hat, updates = train_net.apply({'params': params, 'batch_stats': batch_stats}, X,
                                             mutable=['batch_stats'])
            return cross_entropy(Y_hat, y).mean(), updates

        @partial(jax.jit, static_argnums=4)
        def eval_metric(params, batch_stats, X, y, accuracy):
            Y_hat = eval_net.apply({'params': params, 'batch_stats': batch_stats}, X)
            if accuracy:
                return (Y_hat.argmax(axis=1) == y).astype(jnp.float32).mean()
            return cross_entropy(Y_hat, y).mean()

        self.grad_fn = jax.value_and_grad(train_loss, has_aux=True)
        self.eval_metric = eval_metric
        self.data = (images, labels), (val_images, val_labels)
        self.rng = np.random.default_rng(0)
        self.num_batches = _ceil_div(len(labels), 128), _ceil_div(len(val_labels), 128)

    def param_count(self):
        return sum(x.size for x in self.jax.tree_util.tree_leaves(self.state.params))

    def _batches(self, images, labels, order):
        for i in range(0, len(order), 128):
            index = order[i:i + 128]
            X = self.jnp.asarray(images[index][..., None], dtype=self.jnp.float32) / 255
            X = self.jax.image.resize(X, (len(index), self.size, self.size, 1), 'bilinear')
            yield X, self.jnp.asarray(labels[index], dtype=self.jnp.int32)

    def train_batches(self):
        images, labels = self.data[0]
        return self._batches(images, labels, self.rng.permutation(len(labels)))

    def val_batches(self):
        images, labels = self.data[1]
        return self._batches(images, labels, np.arange(len(labels)))

    def train_step(self, batch):
        state = self.state
        (loss, updates), grads = self.grad_fn(state.params, state.batch_stats, *batch)
        state = state.apply_gradients(grads=grads)   # optax's update, operation by operation
        self.state = state.replace(batch_stats=updates['batch_stats'])
        return loss   # the book's board gets the device array; it waits at each redraw

    def val_step(self, batch):
        params, stats = self.state.params, self.state.batch_stats
        return (self.eval_metric(params, stats, *batch, False),
                self.eval_metric(params, stats, *batch, True))


BOOKS = {'pytorch': BookPyTorch, 'mxnet': BookMXNet, 'tensorflow': BookTensorFlow,
         'jax': BookJAX}


def median_ratio(ours, book):
    """The median over the pairs of book seconds over our seconds: how many times
    faster ours ran."""
    return round(statistics.median(b / a for a, b in zip(ours, book)), 3)
