"""The framework-free training loop: epochs, batches, progress, plots, results.

Each framework module subclasses `BaseTrainer` and supplies
`prepare(model, data)` (initialize, build the optimizer, compile steps),
`train_step(batch)` returning the batch loss as a scalar, and
`eval_step(batch)` returning (summed loss, number correct) for the batch,
`gpus_available()` (how many GPUs the framework sees), `seed_initialization(seed)`
(seed the weight initialization) and `recipe_optimizer(model, steps)` (the
optimizer of a `Recipe`).

Progress goes to the terminal outside Jupyter. Inside a notebook the live plot
shows it; a notebook runner (`tools/run_notebook.py`, used by `make run`) may
set $D2L_PROGRESS to a file, to which the Trainer then also writes its progress
bar and one line per epoch, for the runner to show in the terminal.
"""
import contextlib
import dataclasses
import io
import json
import math
import os
import resource
import sys
import time

import numpy as np
from tqdm import tqdm

from . import checks
from .core import (FRAMEWORKS, Budget, HyperParameters, ProgressBoard, in_notebook,
                   machine_info, source_commit)

RESULTS_ENV = 'D2L_RESULTS_DIR'
PROGRESS_ENV = 'D2L_PROGRESS'


@dataclasses.dataclass(frozen=True)
class Recipe:
    """An optimizer recipe, for a Trainer that should not use the model's own
    `configure_optimizers` (plain SGD at the model's `lr`).

    SGD at the model's `lr` with (Nesterov) momentum and L2 weight decay added
    to the gradient of every trainable parameter; with `cosine`, the learning
    rate decays along a half cosine from `lr` at the first step to 0 after the
    last one. The design-space study trains with the default, the paper's
    low-fidelity recipe.
    """
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-5
    cosine: bool = True

    def learning_rate(self, lr, step, steps):
        """The learning rate at `step` (counted from 0) of a fit of `steps` steps."""
        if not self.cosine:
            return lr
        return lr * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))

    def __post_init__(self):
        if not 0 <= self.momentum < 1 or self.weight_decay < 0:
            raise ValueError('Recipe: momentum must be in [0, 1) and weight_decay >= 0, '
                             f'got {self.momentum!r} and {self.weight_decay!r}')
        if self.nesterov and not self.momentum:
            raise ValueError('Recipe: nesterov needs a momentum above 0')


class BaseTrainer(HyperParameters):
    """Fit a model to a data module; subclasses provide the framework steps."""
    framework = None
    plots_per_epoch = 2

    def __init__(self, max_epochs, num_gpus=0, fast=True, quiet=False, recipe=None,
                 seed=None):
        """`fast=False` runs the steps eagerly (for comparison); `quiet=True`
        (for many short fits) shows no progress or live plot and writes no
        results record; `recipe` (a `Recipe`) replaces the model's optimizer;
        `seed` seeds the weight initialization (else the framework's default)."""
        max_epochs = checks.positive_int('Trainer', 'max_epochs', max_epochs)
        num_gpus = checks.positive_int('Trainer', 'num_gpus', num_gpus, minimum=0)
        if recipe is not None and not isinstance(recipe, Recipe):
            raise ValueError(f'Trainer: recipe must be a d2lsupport Recipe or None, got {recipe!r}')
        if seed is not None:
            seed = checks.positive_int('Trainer', 'seed', seed, minimum=0)
        self.save_hyperparameters()
        if num_gpus and not self.gpus_available():
            print(f'Trainer: asked for {num_gpus} GPU(s) but none is available; '
                  'training on the CPU.')
        self.budget = Budget()
        self.board = ProgressBoard(xlabel='epoch')

    def gpus_available(self):
        """How many GPUs the framework can use (none here; subclasses ask it)."""
        return 0

    def prepare(self, model, data):
        raise NotImplementedError

    def seed_initialization(self, seed):
        """Seed the framework's weight initialization."""
        raise NotImplementedError

    def optimizer(self, model):
        """The model's own optimizer, or the recipe's over all steps of this fit."""
        if self.recipe is None:
            return model.configure_optimizers()
        steps = self.epochs * self.budget.batches(self.data.num_batches(True), True)
        return self.recipe_optimizer(model, steps)

    def recipe_optimizer(self, model, steps):
        """The optimizer of `self.recipe` for a fit of `steps` steps."""
        raise NotImplementedError

    def train_step(self, batch):
        raise NotImplementedError

    def eval_step(self, batch):
        raise NotImplementedError

    def device_name(self):
        return 'CPU'

    def fit(self, model, data):
        """Train `model` on `data` for `max_epochs` epochs and report.

        With $D2L_RESULTS_DIR set, the run is recorded after every epoch, and a
        checkpoint (weights, optimizer state, data order, history) is kept beside
        the record until the run is complete: fitting the same model again with
        the same settings resumes after the last finished epoch.
        """
        if self.budget.small:
            print(self.budget.banner())
        self.model, self.data = model, data
        self.epochs = self.budget.epochs(self.max_epochs)
        if self.seed is not None:
            self.seed_initialization(self.seed)
        self.prepare(model, data)
        self.history, self.num_examples_seen, self.segments = [], 0, []
        self.commit = None if self.quiet else source_commit()   # the code as training starts
        self.wall_time = self._resume()
        self.segments.append({'first_epoch': len(self.history) + 1, 'commit': self.commit})
        start = time.perf_counter() - self.wall_time
        with _progress_stream(self.quiet) as self.progress:
            for self.epoch in range(len(self.history), self.epochs):
                if not self._run_epoch(start):
                    break
        if len(self.history) == self.epochs and self._path('ckpt.npz'):
            with contextlib.suppress(FileNotFoundError):
                os.remove(self._path('ckpt.npz'))
        if not self.quiet:
            print(self.summary())

    # -- checkpoints: each framework turns its training state into named bytes

    def state(self):
        """The training state (weights, optimizer) as {name: bytes}."""
        raise NotImplementedError

    def load_state(self, state):
        """Restore what `state()` returned."""
        raise NotImplementedError

    def _path(self, suffix):
        """Where this run's record ('json') or checkpoint ('ckpt.npz') goes, or
        None when runs are not recorded."""
        folder = os.environ.get(RESULTS_ENV)
        if not folder or self.quiet or self.budget.small:
            return None
        return os.path.join(folder, f'{type(self.model).__name__.lower()}.'
                                    f'{self.framework}.{suffix}')

    def _settings(self):
        """What a checkpoint must agree with to be resumed."""
        return {'model': type(self.model).__name__, 'framework': self.framework,
                'epochs_planned': self.max_epochs, 'batch_size': self.data.batch_size,
                'resize': list(self.data.resize), 'lr': getattr(self.model, 'lr', None),
                'recipe': None if self.recipe is None else dataclasses.asdict(self.recipe),
                'seed': self.seed}

    def _save_checkpoint(self):
        path = self._path('ckpt.npz')
        if path is None:
            return
        rng = getattr(self.data, 'rng', None)
        meta = {'settings': self._settings(), 'history': self.history,
                'segments': self.segments, 'wall_time': self.wall_time,
                'num_examples_seen': self.num_examples_seen,
                'data_rng': rng.bit_generator.state if rng is not None else None}
        arrays = {f'state/{k}': np.frombuffer(v, np.uint8) for k, v in self.state().items()}
        with open(path + '.tmp', 'wb') as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **arrays)
        os.replace(path + '.tmp', path)

    def _resume(self):
        """Load this run's checkpoint if there is one with the same settings;
        returns the wall time of the epochs it holds (0 without one)."""
        path = self._path('ckpt.npz')
        if path is None or not os.path.exists(path):
            return 0.0
        with np.load(path) as saved:
            meta = json.loads(str(saved['meta']))
            if meta['settings'] != self._settings():
                print(f'Trainer: not resuming from {path}: it was made with other settings '
                      f'({meta["settings"]}); training from the start.')
                return 0.0
            self.load_state({k[len('state/'):]: saved[k].tobytes() for k in saved.files
                             if k.startswith('state/')})
        self.history, self.segments = meta['history'], meta['segments']
        self.num_examples_seen = meta['num_examples_seen']
        if meta['data_rng'] is not None:
            self.data.rng.bit_generator.state = meta['data_rng']
        last = self.history[-1]
        self.train_loss, self.val_loss, self.val_acc = (last['train_loss'], last['val_loss'],
                                                        last['val_acc'])
        for h in self.history:   # the curves so far, as points per epoch
            for key in ('train_loss', 'val_loss', 'val_acc'):
                self.board.draw(h['epoch'], h[key], key)
        print(f'Trainer: resuming after epoch {len(self.history)} of {self.max_epochs} from '
              f'{path} (delete it to start over).')
        return meta['wall_time']

    def _run_epoch(self, start):
        """One epoch of training and validation, recorded; False when the time
        limit says to stop."""
        train_loss = self._train_epoch()
        val_loss, val_acc = self._validate()
        self.wall_time = time.perf_counter() - start
        self.history.append({'epoch': self.epoch + 1, 'train_loss': train_loss,
                             'val_loss': val_loss, 'val_acc': val_acc,
                             'time_s': round(self.wall_time, 2),
                             'rss_mb': rss_mb(), 'peak_rss_mb': peak_rss_mb()})
        self.train_loss, self.val_loss, self.val_acc = train_loss, val_loss, val_acc
        self.examples_per_sec = self.num_examples_seen / self.wall_time
        self._save_results()
        if len(self.history) < self.epochs:
            self._save_checkpoint()
        if self.budget.out_of_time(self.wall_time) and self.epoch + 1 < self.epochs:
            print(f'Stopped after {self.epoch + 1} of {self.epochs} epochs: the time '
                  f'limit of {self.budget.minutes:g} min ({Budget.TIME_ENV}) is reached.')
            return False
        return True

    def summary(self):
        """One line with the final numbers of the last `fit`."""
        return (f'train loss {self.train_loss:.3f}, val loss {self.val_loss:.3f}, '
                f'val acc {self.val_acc:.3f}; {len(self.history)} epochs in '
                f'{self.wall_time:.1f} s ({self.examples_per_sec:.0f} examples/s, '
                f'{self.device_name()})')

    def _train_epoch(self):
        num_batches = self.budget.batches(self.data.num_batches(train=True), True)
        plot_every = max(1, num_batches // self.plots_per_epoch)
        bar = tqdm(total=num_batches, desc=f'epoch {self.epoch + 1}/{self.epochs}',
                   unit='batch', file=self.progress, disable=self.progress is None,
                   leave=False, mininterval=1)
        losses, since, lagging = [], 0, None
        batches = self.data.train_dataloader()
        for i in range(num_batches):
            batch = next(batches)
            loss = self.train_step(batch)
            if lagging is not None:
                # wait for the previous step only: MXNet and JAX queue steps without
                # waiting, and a queue of hundreds of steps holds their memory
                losses.append(float(lagging))
            lagging = loss
            self.num_examples_seen += len(batch[-1])
            bar.update()
            if (i + 1) % plot_every == 0 or i + 1 == num_batches:
                losses.append(float(lagging))
                lagging, mean = None, sum(losses[since:]) / len(losses[since:])
                since = len(losses)
                self.board.draw(self.epoch + (i + 1) / num_batches, mean, 'train_loss')
                bar.set_postfix(loss=f'{mean:.3f}')
                self._redraw()
        bar.close()
        return sum(losses) / len(losses)

    def _validate(self):
        num_batches = self.budget.batches(self.data.num_batches(train=False), False)
        loss_sum, correct, count = 0.0, 0.0, 0
        batches = self.data.val_dataloader()
        for _ in range(num_batches):
            batch = next(batches)
            batch_loss, batch_correct = self.eval_step(batch)
            loss_sum += float(batch_loss)
            correct += float(batch_correct)
            count += len(batch[-1])
        self.num_examples_seen += count
        val_loss, val_acc = loss_sum / count, correct / count
        self.board.draw(self.epoch + 1, val_loss, 'val_loss')
        self.board.draw(self.epoch + 1, val_acc, 'val_acc')
        self._redraw()
        if self.progress is not None:
            print(f'epoch {self.epoch + 1}/{self.epochs}: val loss {val_loss:.3f}, '
                  f'val acc {val_acc:.3f}', file=self.progress, flush=True)
        return val_loss, val_acc

    def _redraw(self):
        if self.quiet:
            return
        self.board.title = f'{self.framework}: epoch {self.epoch + 1}/{self.epochs}'
        self.board.show()

    def _save_results(self):
        """After each epoch, write the run so far to $D2L_RESULTS_DIR, if set.

        The file says how many of the planned epochs are done, so a run cut
        short still leaves an honest record of the epochs that did run, and
        which commit of the code ran each part of a resumed run (`segments`).
        """
        path = self._path('json')
        if path is None:
            return
        record = {**self._settings(),
                  'complete': len(self.history) == self.max_epochs,
                  'small_budget': self.budget.small, 'epochs_done': len(self.history),
                  'train_loss': self.train_loss, 'val_loss': self.val_loss,
                  'val_acc': self.val_acc, 'wall_time_s': round(self.wall_time, 1),
                  'examples_per_sec': round(self.examples_per_sec, 1),
                  'peak_rss_mb': max(h['peak_rss_mb'] for h in self.history),
                  'history': self.history, 'machine': machine_info(),
                  'commit': self.segments[0]['commit'], 'segments': self.segments,
                  'date': time.strftime('%Y-%m-%d %H:%M:%S')}
        with open(path + '.tmp', 'w') as f:
            json.dump(record, f, indent=1)
        os.replace(path + '.tmp', path)


def arrays_to_bytes(arrays):
    """A list of numpy arrays as bytes (numpy's .npz format, no pickles)."""
    buffer = io.BytesIO()
    np.savez(buffer, *arrays)
    return buffer.getvalue()


def bytes_to_arrays(data):
    """The list of arrays that `arrays_to_bytes` packed."""
    with np.load(io.BytesIO(data)) as saved:
        return [saved[f'arr_{i}'] for i in range(len(saved.files))]


def _progress_stream(quiet=False):
    """Where the progress bar and epoch lines go: nowhere (None) when `quiet`,
    the terminal outside Jupyter, the file named by $D2L_PROGRESS inside it,
    else nowhere."""
    if quiet:
        return contextlib.nullcontext()
    if not in_notebook():
        return contextlib.nullcontext(sys.stderr)
    path = os.environ.get(PROGRESS_ENV)
    return open(path, 'a', buffering=1) if path else contextlib.nullcontext()


def rss_mb():
    """Resident memory of this process now, in MiB (None where /proc is missing)."""
    try:
        with open('/proc/self/statm') as f:
            pages = int(f.read().split()[1])
    except OSError:
        return None
    return round(pages * os.sysconf('SC_PAGE_SIZE') / 2 ** 20, 1)


def peak_rss_mb():
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2 ** 20 if sys.platform == 'darwin' else 2 ** 10), 1)


RESULTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'results')


def last_epochs_val_acc(record, n=4):
    """(lowest, highest) validation accuracy over the last `n` epochs of a record:
    how much the final accuracy moves from epoch to epoch."""
    accs = [h['val_acc'] for h in record['history'][-n:]]
    return min(accs), max(accs)


def show_results(model='RegNetX32', folder=RESULTS_DIR):
    """Print the recorded runs of `model`, one line per framework: final training
    loss and validation accuracy, the range of validation accuracy over the last
    four epochs, wall time, examples/s and peak resident memory."""
    rows = []
    for fw in FRAMEWORKS:
        path = os.path.join(folder, f'{model.lower()}.{fw}.json')
        if os.path.exists(path):
            with open(path) as f:
                rows.append(json.load(f))
    if not rows:
        print(f'no recorded runs of {model} in {folder}; `make run` records one')
        return
    print(f'{"framework":<11}{"epochs":>7}{"train loss":>11}{"val acc":>8}'
          f'{"last 4 epochs":>15}{"minutes":>8}{"examples/s":>11}{"peak MiB":>9}')
    for r in rows:
        done = f'{r["epochs_done"]}/{r["epochs_planned"]}'
        low, high = last_epochs_val_acc(r)
        spread = f'{low:.3f}-{high:.3f}' if len(r['history']) >= 4 else 'n/a'
        peak = f'{r["peak_rss_mb"]:.0f}' if r.get('peak_rss_mb') else 'n/a'
        note = '' if r['complete'] else '  (incomplete run)'
        print(f'{r["framework"]:<11}{done:>7}{r["train_loss"]:>11.3f}{r["val_acc"]:>8.3f}'
              f'{spread:>15}{r["wall_time_s"] / 60:>8.1f}{r["examples_per_sec"]:>11.0f}'
              f'{peak:>9}{note}')
    machines = sorted({f'{r["machine"]["cores"]} cores, {r["machine"]["cpu"]}' for r in rows})
    print('machine: ' + '; '.join(machines))
