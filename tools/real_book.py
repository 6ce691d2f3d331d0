"""The real d2l 1.0.3 package's PyTorch training, alternated with our Trainer and
with our re-implementation of it (`tools/bench_book.py`).

``python -m tools.real_book --packages DIR --out results/real-book.json`` (run with
the PyTorch environment; not part of `make bench` or the tests). d2l 1.0.3 pins the
framework versions of 2023, so it cannot be installed into the PyTorch environment.
Its PyTorch code needs only a few pure-Python packages and torchvision, so they go
into DIR without their pinned dependencies (`pip install --no-deps --target`, once)
and DIR is put first on the path. The torchvision wheel on PyPI is built for the
CUDA build of torch: its compiled operators (detection ops such as `nms`) do not
load beside the CPU build, and importing torchvision fails when it registers their
shape functions. The book uses none of them (its `Resize` and `ToTensor` and its
dataset class are Python), so that registration is skipped.

What runs is the package's `Trainer.fit_epoch`, `FashionMNIST` (torchvision's
dataset, `Resize` and `ToTensor`, 4 loader workers started for every pass),
`Module.plot` and `ProgressBoard`, whose figure is rendered as SVG at every redraw
as in a notebook. The network is the baseline's RegNetX32 (the same layers as the
section's tab: lazy grouped `Conv2d` in NCHW), wrapped in the package's
`Classifier`, with its SGD. Each round runs one epoch of ours, one of the real
book and one of the baseline on the same subset, after a warm-up epoch of each.
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

from d2lsupport import records
from d2lsupport.core import atomic_file
from d2lsupport.data import FILES, ensure_files, load_split

# The book's package and what its PyTorch module imports that the PyTorch
# environment lacks, at the versions measured.
PACKAGES = ('d2l==1.0.3', 'torchvision==0.28.0', 'pandas==3.1.1', 'pytz==2026.6',
            'scipy==1.17.1', 'requests==2.34.2', 'charset_normalizer==3.5.3', 'idna==3.20',
            'urllib3==2.8.0', 'certifi==2026.10.19.post1')
BATCH, SIZE, LR = 128, 96, 0.05


def install(folder):
    """The book's package in `folder` (once), first on the path; returns `d2l.torch`."""
    if not (folder / 'd2l').is_dir():
        subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet', '--no-deps',
                        '--target', str(folder), *PACKAGES], check=True)
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
    unpacked where torchvision's dataset looks for them under `folder`; returns
    `folder`."""
    source = ensure_files(root)
    raw = folder / 'FashionMNIST' / 'raw'
    raw.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        target = raw / name[:-len('.gz')]
        if not target.exists():
            with gzip.open(source / name) as packed, atomic_file(target) as unpacked:
                shutil.copyfileobj(packed, unpacked)
    return folder


class RealBook:
    """One epoch at a time of the book's `Trainer`, on the first `num_train` and
    `num_val` images of its `FashionMNIST`."""

    def __init__(self, d2l, net, root, num_train, num_val, max_epochs):
        d2l.DataModule.__init__.__defaults__ = (str(root), 4)   # the book's root: ../data
        data = d2l.FashionMNIST(batch_size=BATCH, resize=(SIZE, SIZE))
        for split, n in ((data.train, num_train), (data.val, num_val)):
            split.data, split.targets = split.data[:n], split.targets[:n]

        class Model(d2l.Classifier):
            def __init__(self):
                super().__init__()
                self.net, self.lr = net, LR

        self.model = Model()
        # what Trainer.fit does before its epochs
        self.trainer = d2l.Trainer(max_epochs=max_epochs)
        self.trainer.prepare_data(data)
        self.trainer.prepare_model(self.model)
        self.trainer.optim = self.model.configure_optimizers()
        self.trainer.epoch = self.trainer.train_batch_idx = self.trainer.val_batch_idx = 0

    def fit_epoch(self):
        start = time.perf_counter()
        self.trainer.fit_epoch()
        self.trainer.epoch += 1
        return time.perf_counter() - start


def compare(folder, train_batches, rounds, precision):
    from tools.bench import our_epoch, rate, rendering_trainer
    from tools.bench_book import BookPyTorch

    from d2lsupport import torch as ours
    d2l = install(folder / 'packages')
    num_train, num_val = train_batches * BATCH, max(1, train_batches // 6) * BATCH
    (images, labels), (val_images, val_labels) = load_split(True), load_split(False)

    def baseline():
        return BookPyTorch(images[:num_train], labels[:num_train], val_images[:num_val],
                           val_labels[:num_val], LR, max_epochs=rounds + 1, size=SIZE)

    book = baseline()
    real = RealBook(d2l, baseline().net, raw_files(folder / 'data'), num_train, num_val,
                    rounds + 1)
    trainer = rendering_trainer(ours, 1, precision)
    trainer.fit(ours.RegNetX32(lr=LR), ours.FashionMNIST(
        batch_size=BATCH, resize=(SIZE, SIZE), num_train=num_train, num_val=num_val))
    real.fit_epoch()
    book.fit_epoch()
    seconds = {'ours': [], 'real_book': [], 'baseline': []}
    for _ in range(rounds):
        for name, epoch in (('ours', lambda: our_epoch(trainer)), ('real_book', real.fit_epoch),
                            ('baseline', book.fit_epoch)):
            seconds[name].append(round(epoch(), 3))
        print({name: s[-1] for name, s in seconds.items()}, flush=True)

    def ratio(slow, fast):
        return round(statistics.median(a / b for a, b in zip(seconds[slow], seconds[fast])), 3)

    return {'train_batches': train_batches, 'val_batches': num_val // BATCH,
            'precision': trainer.precision, 'seconds': seconds,
            'images_per_s': {name: rate(statistics.median(s), num_train + num_val)
                             for name, s in seconds.items()},
            'real_book_over_ours': ratio('real_book', 'ours'),
            'baseline_over_ours': ratio('baseline', 'ours'),
            'baseline_over_real_book': ratio('baseline', 'real_book')}


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tools.real_book',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--packages', required=True, type=Path,
                        help="a folder for the book's package and the data as it reads them")
    parser.add_argument('--out', required=True)
    parser.add_argument('--train-batches', type=int, default=50)
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--precision', choices=('auto', 'float32', 'bfloat16'),
                        default='auto')
    args = parser.parse_args(argv)
    result = compare(args.packages.resolve(), args.train_batches, args.rounds,
                     args.precision)
    result['date'] = time.strftime('%Y-%m-%d')
    records.write_json_atomic(args.out, result)
    print(result)


if __name__ == '__main__':
    main()
