"""The framework-free training loop: epochs, batches, progress, plots, results.

Each framework module subclasses `BaseTrainer` and supplies three methods:
`prepare(model, data)` (initialize, build the optimizer, compile steps),
`train_step(batch)` returning the batch loss as a scalar, and
`eval_step(batch)` returning (summed loss, number correct) for the batch,
and `gpus_available()` (how many GPUs the framework sees).

Progress goes to the terminal outside Jupyter. Inside a notebook the live plot
shows it; a notebook runner (`tools/run_notebook.py`, used by `make run`) may
set $D2L_PROGRESS to a file, to which the Trainer then also writes its progress
bar and one line per epoch, for the runner to show in the terminal.
"""
import contextlib
import json
import os
import resource
import sys
import time

from tqdm import tqdm

from .core import (FRAMEWORKS, Budget, HyperParameters, ProgressBoard, in_notebook,
                   machine_info, source_commit)

RESULTS_ENV = 'D2L_RESULTS_DIR'
PROGRESS_ENV = 'D2L_PROGRESS'


class BaseTrainer(HyperParameters):
    """Fit a model to a data module; subclasses provide the framework steps."""
    framework = None
    plots_per_epoch = 2

    def __init__(self, max_epochs, num_gpus=0, fast=True, quiet=False):
        """`fast=False` runs the steps eagerly (for comparison); `quiet=True`
        (for many short fits) shows no live plot and writes no results record."""
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

    def train_step(self, batch):
        raise NotImplementedError

    def eval_step(self, batch):
        raise NotImplementedError

    def device_name(self):
        return 'CPU'

    def fit(self, model, data):
        """Train `model` on `data` for `max_epochs` epochs and report."""
        if self.budget.small:
            print(self.budget.banner())
        self.model, self.data = model, data
        self.epochs = self.budget.epochs(self.max_epochs)
        self.prepare(model, data)
        self.history, self.num_examples_seen = [], 0
        self.commit = None if self.quiet else source_commit()   # the code as training starts
        start = time.perf_counter()
        with _progress_stream() as self.progress:
            for self.epoch in range(self.epochs):
                if not self._run_epoch(start):
                    break
        print(self.summary())

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
        short still leaves an honest record of the epochs that did run.
        """
        folder = os.environ.get(RESULTS_ENV)
        if not folder or self.quiet:
            return
        name = type(self.model).__name__.lower()
        record = {'model': type(self.model).__name__, 'framework': self.framework,
                  'complete': len(self.history) == self.max_epochs and not self.budget.small,
                  'small_budget': self.budget.small, 'epochs_done': len(self.history),
                  'epochs_planned': self.max_epochs, 'batch_size': self.data.batch_size,
                  'resize': list(self.data.resize), 'lr': getattr(self.model, 'lr', None),
                  'train_loss': self.train_loss, 'val_loss': self.val_loss,
                  'val_acc': self.val_acc, 'wall_time_s': round(self.wall_time, 1),
                  'examples_per_sec': round(self.examples_per_sec, 1),
                  'peak_rss_mb': peak_rss_mb(), 'history': self.history,
                  'machine': machine_info(), 'commit': self.commit,
                  'date': time.strftime('%Y-%m-%d %H:%M:%S')}
        path = os.path.join(folder, f'{name}.{self.framework}.json')
        with open(path + '.tmp', 'w') as f:
            json.dump(record, f, indent=1)
        os.replace(path + '.tmp', path)


def _progress_stream():
    """Where the progress bar and epoch lines go: the terminal outside Jupyter,
    the file named by $D2L_PROGRESS inside it, else nowhere (None)."""
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
