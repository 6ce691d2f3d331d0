"""The real d2l 1.0.3 package's PyTorch training, alternated with our Trainer and
with our re-implementation of it (`tools/bench_book.py`, the benchmark's baseline).

``python -m tools.real_book --folder DIR --out results/real-book.json`` (run with
the PyTorch environment; not part of `make bench` or the tests). d2l 1.0.3 pins the
framework versions of 2023, so it cannot be installed into the PyTorch environment.
Its PyTorch code needs only torchvision and a few pure-Python packages: they go
into DIR/packages without their pinned dependencies (`pip install --no-deps
--target`, again whenever PACKAGES changes), which this process then puts first
on its path. The torchvision wheel on PyPI is built for the CUDA build of torch:
its compiled operators (detection ops such as `nms`) do not load beside the CPU
build, and importing torchvision fails when it registers their shape functions.
The book uses none of them (its `Resize`, `ToTensor` and dataset class are
Python), so registrations are skipped while d2l is imported.

What runs is the package's `Trainer.fit_epoch`, `FashionMNIST` (torchvision's
dataset, `Resize` and `ToTensor`, 4 loader workers started for every pass, reading
our files unpacked into DIR/data), `Module.plot` and `ProgressBoard`, whose figure is
rendered as SVG at every redraw as in a notebook. Its network is a new copy of the
baseline's RegNetX32, the same layers as the section's tab, so that the real book
and the baseline differ only in the code around the network. Each round runs one
epoch of each contender on the same subset, in an order rotated from round to round
(ours, real, baseline; real, baseline, ours; ...), after a warm-up epoch of each.
"""
import argparse
import gzip
import io
import shutil
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

from tools.bench import BATCH, LR, SIZE, our_epoch, rate, rendering_trainer
from tools.bench_book import BookPyTorch, median_ratio

from d2lsupport import records
from d2lsupport.core import atomic_file, image_shape
from d2lsupport.data import FILES, ensure_files, load_split
from d2lsupport.trainer import PRECISIONS

# The book's package and what its PyTorch module imports that the PyTorch
# environment lacks, at the versions measured.
PACKAGES = ('d2l==1.0.3', 'torchvision==0.28.0', 'pandas==3.1.1', 'pytz==2026.6',
            'scipy==1.17.1', 'requests==2.34.2', 'charset_normalizer==3.5.3', 'idna==3.20',
            'urllib3==2.8.0', 'certifi==2026.10.19.post1')
CONTENDERS = ('ours', 'real_book', 'baseline')


def install(folder):
    """The book's package in `folder` (installed when PACKAGES changed), first on
    this process's path; returns its `d2l.torch`."""
    stamp = folder / 'installed.txt'
    if not stamp.exists() or stamp.read_text() != '\n'.join(PACKAGES):
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
                        '--target', str(folder), *PACKAGES], check=True)
        stamp.write_text('\n'.join(PACKAGES))
    sys.path.insert(0, str(folder))
    import torch.library
    register_fake = torch.library.register_fake
    torch.library.register_fake = lambda *args, **kwargs: (lambda function: function)
    try:
        from d2l import torch as d2l
    finally:
        torch.library.register_fake = register_fake
    # as in a notebook: each display renders the figure (the book asks for SVG)
    d2l.display = types.SimpleNamespace(
        display=lambda figure: figure.savefig(io.BytesIO(), format='svg'),
        clear_output=lambda wait=False: None)
    return d2l


def raw_files(folder, root=None):
    """The four Fashion-MNIST files of our data folder (`root`, else the default),
    unpacked where torchvision's dataset looks for them under `folder`."""
    source = ensure_files(root)
    raw = folder / 'FashionMNIST' / 'raw'
    raw.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        target = raw / name[:-len('.gz')]
        if not target.exists():
            with gzip.open(source / name) as packed, atomic_file(target) as unpacked:
                shutil.copyfileobj(packed, unpacked)


class RealBook:
    """One epoch at a time of the book's `Trainer`, on the first `num_train` and
    `num_val` images of its `FashionMNIST` read from `root`."""

    def __init__(self, d2l, net, root, num_train, num_val, max_epochs):
        data = self.data(d2l, root)
        for split, n in ((data.train, num_train), (data.val, num_val)):
            split.data, split.targets = split.data[:n], split.targets[:n]

        class Model(d2l.Classifier):
            def __init__(self):
                super().__init__()
                self.net, self.lr = net, LR

        model = Model()
        # what Trainer.fit does before its epochs
        self.trainer = d2l.Trainer(max_epochs=max_epochs)
        self.trainer.prepare_data(data)
        self.trainer.prepare_model(model)
        self.trainer.optim = model.configure_optimizers()
        self.trainer.epoch = self.trainer.train_batch_idx = self.trainer.val_batch_idx = 0

    @staticmethod
    def data(d2l, root):
        """The book's FashionMNIST at 96 x 96, reading from `root`: its data root is
        the default argument of `DataModule.__init__` ('../data'), set for the call."""
        defaults = d2l.DataModule.__init__.__defaults__
        d2l.DataModule.__init__.__defaults__ = (str(root), *defaults[1:])
        try:
            return d2l.FashionMNIST(batch_size=BATCH, resize=(SIZE, SIZE))
        finally:
            d2l.DataModule.__init__.__defaults__ = defaults

    def fit_epoch(self):
        """Seconds of one more epoch."""
        start = time.perf_counter()
        self.trainer.fit_epoch()
        self.trainer.epoch += 1
        return time.perf_counter() - start


def compare(folder, train_batches, rounds, precision):
    """Seconds per epoch of the three contenders, rounds alternated, and their
    speed ratios (medians over the rounds)."""
    from d2lsupport import torch as ours
    d2l = install(folder / 'packages')
    raw_files(folder / 'data')
    num_train, num_val = train_batches * BATCH, max(1, train_batches // 6) * BATCH
    (images, labels), (val_images, val_labels) = load_split(True), load_split(False)

    def baseline():
        return BookPyTorch(images[:num_train], labels[:num_train], val_images[:num_val],
                           val_labels[:num_val], LR, max_epochs=rounds + 1, size=SIZE)

    book, real_net = baseline(), baseline().net
    model = ours.RegNetX32(lr=LR)
    params = ours.param_count(model, image_shape(ours.LAYOUT, 1, SIZE))
    if book.param_count() != params:
        raise SystemExit(f'real_book: the baseline network has {book.param_count():,} '
                         f'parameters and ours {params:,}; they must be the same network')
    real = RealBook(d2l, real_net, folder / 'data', num_train, num_val, rounds + 1)
    trainer = rendering_trainer(ours, 1, precision)
    trainer.fit(model, ours.FashionMNIST(batch_size=BATCH, resize=(SIZE, SIZE),
                                         num_train=num_train, num_val=num_val))
    epochs = {'ours': lambda: our_epoch(trainer), 'real_book': real.fit_epoch,
              'baseline': book.fit_epoch}
    epochs['real_book']()
    epochs['baseline']()
    seconds = {name: [] for name in CONTENDERS}
    for i in range(rounds):
        for name in CONTENDERS[i % 3:] + CONTENDERS[:i % 3]:
            seconds[name].append(round(epochs[name](), 3))
        print({name: s[-1] for name, s in seconds.items()}, flush=True)
    return {'train_batches': train_batches, 'val_batches': num_val // BATCH,
            'params': params, 'precision': trainer.precision, 'seconds': seconds,
            'images_per_s': {name: rate(statistics.median(s), num_train + num_val)
                             for name, s in seconds.items()},
            # how many times as fast the first ran as the second
            'ours_vs_real_book': median_ratio(seconds['ours'], seconds['real_book']),
            'ours_vs_baseline': median_ratio(seconds['ours'], seconds['baseline']),
            'baseline_vs_real_book': median_ratio(seconds['baseline'], seconds['real_book'])}


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tools.real_book',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--folder', required=True, type=Path,
                        help="where the book's packages and the data as it reads them go")
    parser.add_argument('--out', required=True)
    parser.add_argument('--train-batches', type=int, default=50)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--precision', choices=PRECISIONS,
                        default='auto', help="our Trainer's (default: auto, as a reader's)")
    args = parser.parse_args(argv)
    result = compare(args.folder.resolve(), args.train_batches, args.rounds, args.precision)
    result['date'] = time.strftime('%Y-%m-%d %H:%M')
    records.write_json_atomic(args.out, result)
    print(result)


if __name__ == '__main__':
    main()
