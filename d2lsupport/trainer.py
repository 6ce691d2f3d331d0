"""The framework-free training loop: epochs, batches, progress, plots, results.

Each framework module subclasses `BaseTrainer` and supplies the framework's
part of the contract:

* `build(model, data)`: initialize the model, make the optimizer (`optimizer`),
  compile the steps;
* `train_step(batch)`: one optimizer step, returning the batch loss;
* `eval_step(batch)`: (summed loss, number correct) of a batch;
* `seed_initialization(seed)`: seed the weight initialization;
* `recipe_optimizer(model, steps)`: the optimizer of a `Recipe`, whose learning
  rate is `Recipe.learning_rate` (the one formula, for every framework);
* `learning_rate()`: the rate the next step uses;
* `state()` / `load_state(state)`: the training state as
  {'model': bytes, 'optimizer': bytes}, the checkpoint layout of every framework;
* `logits(X, batch_statistics=False)`: the model's outputs as a numpy array.

The constructor, the device choice (through the framework module's `cpu`,
`gpu` and `num_gpus`), epochs, checkpoints and records are the same for all.

Progress goes to the terminal outside Jupyter. Inside a notebook the live plot
shows it; a notebook runner (`tools/run_notebook.py`, used by `make run`) may
set $D2L_PROGRESS to a file, to which the Trainer then also writes its progress
bar and one line per epoch, for the runner to show in the terminal.
"""
import contextlib
import ctypes
import dataclasses
import functools
import io
import json
import os
import resource
import sys
import time

import numpy as np
from tqdm import tqdm

from . import checks, records
from .core import (Budget, HyperParameters, ProgressBoard, atomic_file, cpu_bfloat16,
                   framework_module, in_notebook, machine_info, source_commit)

PRECISIONS = ('float32', 'bfloat16', 'auto')
# The frameworks whose bfloat16 training 'auto' chooses on a CPU with bfloat16
# instructions: their bfloat16 step was measured faster and a full bfloat16 run
# reached the accuracy of float32. Each entry says where BENCHMARKS.md shows it.
BFLOAT16_CHECKED = {
    'pytorch': ('its bfloat16 step ran 2.06 times as fast as float32 and a 10-epoch bfloat16 '
                'run reached float32\'s accuracy within 1 point: BENCHMARKS.md, '
                '"bfloat16, checked by full runs"'),
    'tensorflow': ('its bfloat16 step ran 1.62 times as fast as float32 and a 10-epoch '
                   'bfloat16 run reached float32\'s accuracy within 1 point: BENCHMARKS.md, '
                   '"bfloat16, checked by full runs"'),
}
RESULTS_ENV = 'D2L_RESULTS_DIR'
CHECKPOINT_LAYOUT = 2   # {'model', 'optimizer'} in every framework
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

    def __post_init__(self):
        checks.fraction('Recipe', 'momentum', self.momentum, upper_open=True)
        checks.number('Recipe', 'weight_decay', self.weight_decay, at_least=0)
        for name in ('nesterov', 'cosine'):
            checks.boolean('Recipe', name, getattr(self, name))
        if self.nesterov and not self.momentum:
            raise ValueError('Recipe: nesterov needs a momentum above 0; '
                             'pass nesterov=False or a momentum such as 0.9')

    def learning_rate(self, lr, step, steps, xp=np):
        """The learning rate at `step` (counted from 0) of a fit of `steps` steps.

        The one formula of every framework: `xp` is the array module of `step`
        (numpy for a number; `jax.numpy` or `tf.experimental.numpy` where the
        step counter lives inside a compiled step)."""
        if not self.cosine:
            return lr
        return lr * 0.5 * (1 + xp.cos(np.pi * xp.minimum(step, steps) / steps))


class BaseTrainer(HyperParameters):
    """Fit a model to a data module; subclasses provide the framework steps."""
    framework = None
    plots_per_epoch = 2

    bfloat16 = False   # whether this framework's Trainer can compute in bfloat16

    def __init__(self, max_epochs, num_gpus=0, fast=True, quiet=False, recipe=None,
                 seed=None, precision='auto'):
        """`fast=False` runs the steps eagerly (for comparison); `quiet=True`
        (for many short fits) shows no progress or live plot and writes no
        results record; `recipe` (a `Recipe`) replaces the model's optimizer;
        `seed` seeds the weight initialization (else the framework's default).
        `num_gpus` > 0 trains on a GPU when the framework finds one.
        `precision` is 'float32', 'bfloat16' (mixed: float32 weights and
        optimizer, bfloat16 computation) or 'auto' (see `choose_precision`)."""
        max_epochs = checks.positive_int('Trainer', 'max_epochs', max_epochs)
        num_gpus = checks.positive_int('Trainer', 'num_gpus', num_gpus, minimum=0)
        for name, value in (('fast', fast), ('quiet', quiet)):
            checks.boolean('Trainer', name, value)
        if recipe is not None and not isinstance(recipe, Recipe):
            raise ValueError(f'Trainer: recipe must be a d2lsupport Recipe or None, got {recipe!r}')
        if seed is not None:
            seed = checks.positive_int('Trainer', 'seed', seed, minimum=0)
        if precision not in PRECISIONS:
            raise ValueError(f'Trainer: precision must be one of {", ".join(PRECISIONS)}, '
                             f'got {precision!r}')
        self.save_hyperparameters()
        self.device = self.select_device(num_gpus)
        self.precision, why = self.choose_precision(precision)
        if precision == 'auto' and self.bfloat16 and not self.on_gpu and not quiet:
            # say once what 'auto' chose where it had a choice
            print(f'Trainer: computing in {self.precision} ({why}).')
        self.budget = Budget()
        self.board = ProgressBoard(xlabel='epoch')

    def framework_module(self):
        """The d2lsupport module of this Trainer's framework (its devices)."""
        return framework_module(self.framework)

    def select_device(self, num_gpus):
        """The first GPU when `num_gpus` asks for one and the framework finds
        one, else the CPU (saying so when a GPU was asked for)."""
        fw = self.framework_module()
        self.on_gpu = bool(num_gpus and fw.num_gpus())
        if self.on_gpu:
            return fw.gpu()
        if num_gpus:
            print(f'Trainer: asked for {num_gpus} GPU(s) but none is available; '
                  'training on the CPU.')
        return fw.cpu()

    def choose_precision(self, precision):
        """(the precision to compute in, why). 'auto' is bfloat16 only on a CPU with
        bfloat16 instructions, for a framework in BFLOAT16_CHECKED; float32 on a GPU
        (where the frameworks keep their own ways) and everywhere else."""
        if precision == 'bfloat16' and not self.bfloat16:
            raise ValueError(f'Trainer: precision=\'bfloat16\' is not available in the '
                             f'{self.framework} Trainer; use \'float32\' or \'auto\'')
        if precision != 'auto':
            return precision, 'as asked'
        if self.on_gpu:
            return 'float32', 'on a GPU'
        if not self.bfloat16:
            return 'float32', f'the {self.framework} Trainer computes in float32 only'
        instructions = cpu_bfloat16()
        if instructions is None:
            return 'float32', 'this CPU has no bfloat16 instructions (AVX512_BF16 or AMX)'
        if self.framework not in BFLOAT16_CHECKED:
            return 'float32', (f'this CPU has {instructions}, but bfloat16 training in '
                               f'{self.framework} has not been checked by a full run')
        return 'bfloat16', f'this CPU has {instructions}; {BFLOAT16_CHECKED[self.framework]}'

    def device_name(self):
        return 'GPU' if self.on_gpu else 'CPU'

    # -- the framework's part (see the module docstring)

    def build(self, model, data):
        raise NotImplementedError

    def seed_initialization(self, seed):
        raise NotImplementedError

    def recipe_optimizer(self, model, steps):
        raise NotImplementedError

    def learning_rate(self):
        raise NotImplementedError

    def train_step(self, batch):
        raise NotImplementedError

    def eval_step(self, batch):
        raise NotImplementedError

    def state(self):
        raise NotImplementedError

    def load_state(self, state):
        raise NotImplementedError

    def logits(self, X, batch_statistics=False):
        raise NotImplementedError

    # -- the loop

    def optimizer(self, model):
        """The model's own optimizer, or the recipe's over all steps of this fit."""
        if self.recipe is None:
            return model.configure_optimizers()
        return self.recipe_optimizer(model, self.num_steps())

    def num_steps(self):
        """Optimizer steps in all planned epochs (as the budget allows)."""
        return self.epochs * self.budget.batches(self.data.num_batches(True), True)

    def prepare(self, model, data):
        """Get ready to train `model` on `data` from the first epoch: `fit` starts
        with it; after it, `train_step`, `eval_step` and `fit_epoch` run steps and
        epochs one at a time (as the benchmarks do)."""
        self.model, self.data = model, data
        self.epochs = self.budget.epochs(self.max_epochs)
        self.epoch, self.history, self.num_examples_seen = 0, [], 0
        self.progress = None
        if self.seed is not None:
            self.seed_initialization(self.seed)
        release_free_memory()   # what the cells before (an earlier fit) freed
        self.build(model, data)

    def fit_epoch(self):
        """Train one epoch and validate; returns (train loss, val loss, val acc).
        An epoch beyond the planned ones extends the plan (as a benchmark does)."""
        self.epochs = max(self.epochs, self.epoch + 1)
        train_loss = self._train_epoch()
        val_loss, val_acc = self._validate()
        release_free_memory()
        self.epoch += 1
        return train_loss, val_loss, val_acc

    def fit(self, model, data):
        """Train `model` on `data` for `max_epochs` epochs and report.

        With $D2L_RESULTS_DIR set, the run is recorded after every epoch, and a
        checkpoint (weights, optimizer state, data order, history) is kept beside
        the record until the run is complete: fitting the same model again with
        the same settings resumes after the last finished epoch.
        """
        if self.budget.small:
            print(self.budget.banner())
        self.prepare(model, data)
        self.segments = []
        self.commit = None if self.quiet else source_commit()   # the code as training starts
        self.wall_time = self._resume()
        self.segments.append({'first_epoch': len(self.history) + 1, 'commit': self.commit})
        start = time.perf_counter() - self.wall_time
        with _progress_stream(self.quiet) as self.progress:
            while self.epoch < self.epochs and self._run_epoch(start):
                pass
        self.progress = None
        if len(self.history) == self.epochs and self._path('ckpt.npz'):
            with contextlib.suppress(FileNotFoundError):
                os.remove(self._path('ckpt.npz'))
        if not self.quiet:
            print(self.summary())

    # -- checkpoints and records

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
                'seed': self.seed, 'precision': self.precision}

    def _save_checkpoint(self):
        path = self._path('ckpt.npz')
        if path is None:
            return
        rng = getattr(self.data, 'rng', None)
        meta = {'layout': CHECKPOINT_LAYOUT, 'settings': self._settings(),
                'history': self.history,
                'segments': self.segments, 'wall_time': self.wall_time,
                'num_examples_seen': self.num_examples_seen,
                'data_rng': rng.bit_generator.state if rng is not None else None}
        arrays = {f'state/{k}': np.frombuffer(v, np.uint8) for k, v in self.state().items()}
        with atomic_file(path) as f:   # an interrupted write leaves the last checkpoint
            np.savez(f, meta=np.array(records.dumps(meta)), **arrays)

    def _resume(self):
        """Load this run's checkpoint if there is one with the same settings;
        returns the wall time of the epochs it holds (0 without one)."""
        path = self._path('ckpt.npz')
        if path is None or not os.path.exists(path):
            return 0.0
        with np.load(path) as saved:
            meta = json.loads(str(saved['meta']))
            settings, name = self._settings(), os.path.basename(path)
            made_at = meta['settings'].get('precision', 'float32')
            if made_at != self.precision:
                raise ValueError(f'Trainer: the checkpoint {name} was made computing in '
                                 f'{made_at}, not {self.precision}; resume it with '
                                 f'precision={made_at!r}, or delete it to start over')
            if (meta.get('layout') != CHECKPOINT_LAYOUT
                    or {**meta['settings'], 'precision': made_at} != settings):
                print(f'Trainer: not resuming from {name}: it was made with other settings '
                      f'({meta["settings"]}); training from the start.')
                return 0.0
            self.load_state({k[len('state/'):]: saved[k].tobytes() for k in saved.files
                             if k.startswith('state/')})
        self.history, self.segments = meta['history'], meta['segments']
        self.epoch, self.num_examples_seen = len(self.history), meta['num_examples_seen']
        if meta['data_rng'] is not None:
            self.data.rng.bit_generator.state = meta['data_rng']
        last = self.history[-1]
        self.train_loss, self.val_loss, self.val_acc = (
            records.number(last[key]) for key in ('train_loss', 'val_loss', 'val_acc'))
        for h in self.history:   # the curves so far, as points per epoch
            for key in ('train_loss', 'val_loss', 'val_acc'):
                self.board.draw(h['epoch'], records.number(h[key]), key)
        print(f'Trainer: resuming after epoch {len(self.history)} of {self.max_epochs} from '
              f'{name} in ${RESULTS_ENV} (delete it to start over).')
        return meta['wall_time']

    def _run_epoch(self, start):
        """One epoch of training and validation, recorded; False when the time
        limit says to stop."""
        train_loss, val_loss, val_acc = self.fit_epoch()
        self.wall_time = time.perf_counter() - start
        self.history.append({'epoch': self.epoch, 'train_loss': train_loss,
                             'val_loss': val_loss, 'val_acc': val_acc,
                             'time_s': round(self.wall_time, 2),
                             'rss_mb': rss_mb(), 'peak_rss_mb': peak_rss_mb()})
        self.train_loss, self.val_loss, self.val_acc = train_loss, val_loss, val_acc
        self.examples_per_sec = self.num_examples_seen / self.wall_time
        self._save_results()
        if len(self.history) < self.epochs:
            self._save_checkpoint()
        if self.budget.out_of_time(self.wall_time) and self.epoch < self.epochs:
            print(f'Stopped after {self.epoch} of {self.epochs} epochs: the time '
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
                release_free_memory()
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
        records.write_json_atomic(path, record)


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


def release_free_memory():
    """Hand the C heap's free pages back to the operating system (glibc's
    `malloc_trim`); returns whether it could. The frameworks free their buffers
    into glibc's per-thread heaps, which keep the pages: a JAX kernel that had
    fitted the chapter's six small networks held 1.4 GB it had already freed
    (BENCHMARKS.md, "Memory through the phases of training"). Elsewhere than
    glibc, a no-op."""
    trim = getattr(_libc(), 'malloc_trim', None)
    if trim is None:
        return False
    trim(0)
    return True


@functools.cache
def _libc():
    """The C library this process runs on (None where it cannot be loaded)."""
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def peak_rss_mb():
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2 ** 20 if sys.platform == 'darwin' else 2 ** 10), 1)
