"""Benchmarks for the chapter's training of RegNetX32 (96 x 96, batch 128).

    python -m tools.bench measure --framework pytorch --out results/bench.pytorch.json
    python -m tools.bench book --out results/bench.book.json       # PyTorch env
    python -m tools.bench report results/bench.*.json --out results/bench.json

`measure` runs in one framework's environment and times, in images per
second (medians over repetitions, warm-up excluded):

* bare_eager / bare_fast: the Trainer's own training step on one in-memory
  batch, with ``fast=False`` (eager) and the default ``fast=True``
  (channels-last, tf.function, jit, hybridize); a few framework-specific
  variants go under `variants` (torch.compile, bfloat16, XLA);
* data: the data module alone, delivering framework tensors;
* resize: the data module's resize of the 60,000 training images to
  96 x 96, done once per size and then cached on disk;
* trainer: `Trainer.fit` end to end, with a live plot rendered at every
  redraw as in a notebook, on a 6:1 subset of training and validation
  images (the ratio of a real epoch); the time of its second epoch is
  compared with the bare training and evaluation steps to give `overhead`.

`book` re-implements the book's recipe as the baseline: per-image bilinear
resize of PIL images in a 4-worker DataLoader, NCHW, an eager training step
and an evaluation pass, timed on the same 6:1 mix. `report` merges the
files into results/bench.json and prints a markdown table with the ratios.

`drift` is the long-run check: `Trainer.fit` for several epochs on a subset
shaped like a real epoch (a short last batch in both splits, the plot
rendered at every redraw), reporting each epoch's time and resident memory,
so that a slowdown or a leak shows in minutes rather than in an hour.

`memory` follows resident memory through the phases of training RegNetX32 in
one process (framework loaded, data module made, model initialized, first
training step compiled, more steps, the short last batch, evaluation, a pass
over all the data), to show where a run's memory goes.

`bn` checks batch normalization's running statistics: after the same training
steps, it evaluates the network once with the running statistics (as
validation does) and once with the statistics of each evaluation batch. Where
the running statistics are kept right, the two agree closely.
"""
import argparse
import io
import json
import os
import re
import statistics
import time
from pathlib import Path

from d2lsupport import records
from d2lsupport.core import FRAMEWORKS, cpu_bfloat16, framework_module, image_shape, machine_info
from d2lsupport.trainer import PRECISIONS, RESULTS_ENV, peak_rss_mb, rss_mb

BATCH, SIZE, LR = 128, 96, 0.05
TRAIN_BATCHES, VAL_BATCHES = 24, 4   # per epoch of the end-to-end runs (6:1 images)
DATA_BATCHES = 60
DRIFT_EPOCHS, DRIFT_TRAIN, DRIFT_VAL = 6, 24 * BATCH + 96, 4 * BATCH + 16
DRIFT_TIME, DRIFT_MEMORY = 0.10, 0.05   # targets: epochs 3+ within 10% of their median,
#                                         memory growing by at most 5% after epoch 2


def rate(seconds, images=BATCH):
    return round(images / seconds, 1)


def median_time(fn, reps, warmup, clock=time.perf_counter):
    """Median seconds of `fn()` over `reps` calls after `warmup` untimed calls,
    read from `clock` (a parameter so that the tests can give a fake one)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def prepared_trainer(d2l, fast, data, tweak=None, precision='float32'):
    """A Trainer ready to step on RegNetX32 (lr 0.05); `tweak(trainer)` runs
    before `prepare`."""
    trainer = d2l.Trainer(max_epochs=1, fast=fast, precision=precision)
    if tweak:
        tweak(trainer)
    trainer.prepare(d2l.RegNetX32(lr=LR), data)
    return trainer


def step_rate(trainer, batch, reps, warmup=3, train=True):
    step = trainer.train_step if train else trainer.eval_step
    sync = (lambda out: float(out)) if train else (lambda out: float(out[1]))
    return rate(median_time(lambda: sync(step(batch)), reps, warmup))


def _torch_variants(d2l, data, batch, reps):
    import torch
    compiled = prepared_trainer(d2l, True, data)
    compiled.model.net = torch.compile(compiled.model.net)
    return {'torch.compile': step_rate(compiled, batch, reps)}


def _tensorflow_variants(d2l, data, batch, reps):
    def xla(trainer):
        trainer.jit_compile = True
    return {'XLA': step_rate(prepared_trainer(d2l, True, data, xla), batch, reps)}


# Other fast options worth knowing about, for the frameworks that have them.
VARIANTS = {'pytorch': _torch_variants, 'tensorflow': _tensorflow_variants}


def variants(framework, d2l, data, batch, reps):
    """{variant name: images/s} of the framework's VARIANTS ({} if none)."""
    measure_variants = VARIANTS.get(framework)
    return measure_variants(d2l, data, batch, reps) if measure_variants else {}


def data_rate(data):
    """Images per second of DATA_BATCHES training batches, as framework tensors."""
    it = data.train_dataloader()
    next(it)
    start = time.perf_counter()
    for _ in range(DATA_BATCHES):
        next(it)
    return rate(time.perf_counter() - start, DATA_BATCHES * BATCH)


RESIZE_REPS = 3


def resize_rate(reps):
    """Images per second of the data module's bilinear resize of the whole
    training split to SIZE x SIZE: the work of a first run, before its disk
    cache exists."""
    from d2lsupport.data import load_split, resize_images
    images, _ = load_split(True)
    seconds = median_time(lambda: resize_images(images, (SIZE, SIZE)), reps, warmup=0)
    return rate(seconds, len(images))


def trainer_rate(d2l, data_cls, precision='float32'):
    """Images per second of the second epoch of `Trainer.fit` on a subset,
    with the plot rendered (as PNG) at every redraw."""
    data = data_cls(batch_size=BATCH, resize=(SIZE, SIZE),
                    num_train=TRAIN_BATCHES * BATCH, num_val=VAL_BATCHES * BATCH)
    trainer = rendering_trainer(d2l, 2, precision)
    trainer.fit(d2l.RegNetX32(lr=LR), data)
    first, second = (h['time_s'] for h in trainer.history)
    return rate(second - first, (TRAIN_BATCHES + VAL_BATCHES) * BATCH)


def rendering_trainer(d2l, max_epochs, precision='float32'):
    """A Trainer whose live plot is rendered to PNG at every redraw, as in a notebook."""
    trainer = d2l.Trainer(max_epochs=max_epochs, precision=precision)
    trainer.board.show = lambda: trainer.board.figure().savefig(io.BytesIO(), format='png')
    return trainer


def drift(framework, epochs):
    """Per-epoch seconds and resident memory of a long `fit` on a subset, and
    whether they stay within the targets."""
    d2l = framework_module(framework)
    data = d2l.FashionMNIST(batch_size=BATCH, resize=(SIZE, SIZE), num_train=DRIFT_TRAIN,
                            num_val=DRIFT_VAL)
    before = rss_mb()
    trainer = rendering_trainer(d2l, epochs)
    trainer.fit(d2l.RegNetX32(lr=LR), data)
    ends = [0.0] + [h['time_s'] for h in trainer.history]
    seconds = [round(b - a, 2) for a, b in zip(ends, ends[1:])]
    rss = [h['rss_mb'] for h in trainer.history]
    later = seconds[2:]
    median = statistics.median(later)
    time_spread = max(abs(t / median - 1) for t in later)
    growth = rss[-1] / rss[1] - 1
    return {'epochs': epochs, 'train_images': DRIFT_TRAIN, 'val_images': DRIFT_VAL,
            'epoch_s': seconds, 'rss_mb': rss, 'rss_before_mb': before,
            'peak_rss_mb': peak_rss_mb(), 'time_spread': round(time_spread, 3),
            'rss_growth': round(growth, 3),
            'time_ok': time_spread <= DRIFT_TIME, 'memory_ok': growth <= DRIFT_MEMORY}


MEMORY_STEPS = 20


def memory_phases(framework, steps):
    """[(phase, resident MiB after it, peak MiB so far)] of one process that
    trains RegNetX32 step by step."""
    phases = []

    def note(phase):
        phases.append((phase, rss_mb(), peak_rss_mb()))

    note('python and d2lsupport.core')
    d2l = framework_module(framework)
    note('framework imported')
    data = d2l.FashionMNIST(batch_size=BATCH, resize=(SIZE, SIZE))
    note('data module (resized images mapped, not read)')
    trainer = prepared_trainer(d2l, True, data)
    note('model initialized, optimizer built')
    batches = data.train_dataloader()
    first = next(batches)
    float(trainer.train_step(first))
    note('first training step (compiles)')
    for _ in range(steps):
        float(trainer.train_step(next(batches)))
    note(f'{steps} more training steps')
    float(trainer.train_step(tuple(a[:BATCH - 32] for a in first)))
    note('a short training batch (a new shape)')
    val = next(data.val_dataloader())
    float(trainer.eval_step(val)[1])
    float(trainer.eval_step(tuple(a[:16] for a in val))[1])
    note('evaluation, full and short batch')
    for _ in data.train_dataloader():
        pass
    note('one pass over all training batches (data only)')
    return [{'phase': p, 'rss_mb': r, 'peak_rss_mb': m} for p, r, m in phases]


BN_STEPS, BN_VAL_BATCHES = 100, 8


def bn_check(framework, steps):
    """Validation loss and accuracy after `steps` training steps of RegNetX32,
    with running and with per-batch statistics."""
    import numpy as np
    d2l = framework_module(framework)
    data = d2l.FashionMNIST(batch_size=BATCH, resize=(SIZE, SIZE))
    trainer = prepared_trainer(d2l, True, data)
    batches = data.train_dataloader()
    for _ in range(steps):
        float(trainer.train_step(next(batches)))
    running, per_batch, count = [0.0, 0.0], [0.0, 0.0], 0
    val = data.val_dataloader()
    for _ in range(BN_VAL_BATCHES):
        X, y = next(val)
        loss, correct = trainer.eval_step((X, y))
        running[0] += float(loss)
        running[1] += float(correct)
        labels = y.asnumpy() if hasattr(y, 'asnumpy') else np.asarray(y)
        logits = trainer.logits(X, batch_statistics=True)
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        per_batch[0] += float(-log_probs[np.arange(len(labels)), labels].sum())
        per_batch[1] += float((logits.argmax(axis=1) == labels).sum())
        count += len(labels)
    return {'steps': steps, 'val_images': count,
            'running_stats': {'loss': round(running[0] / count, 4),
                              'acc': round(running[1] / count, 4)},
            'batch_stats': {'loss': round(per_batch[0] / count, 4),
                            'acc': round(per_batch[1] / count, 4)}}


def mixed_rate(train_rate, val_rate):
    """Images per second of TRAIN_BATCHES training and VAL_BATCHES validation batches."""
    seconds = TRAIN_BATCHES * BATCH / train_rate + VAL_BATCHES * BATCH / val_rate
    return rate(seconds, (TRAIN_BATCHES + VAL_BATCHES) * BATCH)


PRECISION_PAIRS = 3


def bfloat16_against_float32(d2l, data, batch, reps):
    """The bare training step computing in float32 and in bfloat16, alternated in
    this process (float32, bfloat16, float32, ...), and the Trainer end to end in
    both: images/s (medians) and the median of the pairwise ratios (`speedup`)."""
    trainers = {p: prepared_trainer(d2l, True, data, precision=p)
                for p in ('float32', 'bfloat16')}
    seconds = {p: [] for p in trainers}
    for _ in range(PRECISION_PAIRS):
        for p, trainer in trainers.items():
            seconds[p].append(median_time(lambda: float(trainer.train_step(batch)), reps, 1))
    ratios = [f / b for f, b in zip(seconds['float32'], seconds['bfloat16'])]
    return {'bare_float32': rate(statistics.median(seconds['float32'])),
            'bare_bfloat16': rate(statistics.median(seconds['bfloat16'])),
            'speedup': round(statistics.median(ratios), 3),
            'trainer_float32': trainer_rate(d2l, type(data)),
            'trainer_bfloat16': trainer_rate(d2l, type(data), 'bfloat16'),
            'cpu_bfloat16': cpu_bfloat16()}


def precision_only(framework, reps):
    """`bfloat16_against_float32` alone, for a framework whose Trainer has bfloat16."""
    d2l = framework_module(framework)
    if not d2l.Trainer.bfloat16:
        raise SystemExit(f'bench precision: the {framework} Trainer has no bfloat16')
    data = d2l.FashionMNIST(batch_size=BATCH, resize=(SIZE, SIZE))
    return bfloat16_against_float32(d2l, data, next(data.train_dataloader()), reps)


# Fewer repetitions of the eager step where it is very slow (JAX runs op by op).
EAGER_REPS = {'jax': 3}


def measure(framework, reps):
    d2l = framework_module(framework)
    data = d2l.FashionMNIST(batch_size=BATCH, resize=(SIZE, SIZE))
    batch = next(data.train_dataloader())
    eager_reps = EAGER_REPS.get(framework, reps)
    result = {'bare_eager': step_rate(prepared_trainer(d2l, False, data), batch,
                                      eager_reps, warmup=1)}
    fast = prepared_trainer(d2l, True, data)
    result['bare_fast'] = step_rate(fast, batch, reps)
    result['bare_fast_eval'] = step_rate(fast, batch, reps, train=False)
    result['data'] = data_rate(data)
    result['resize'] = resize_rate(min(reps, RESIZE_REPS))
    result['trainer'] = trainer_rate(d2l, type(data))
    bare_mix = mixed_rate(result['bare_fast'], result['bare_fast_eval'])
    result['overhead'] = round(bare_mix / result['trainer'] - 1, 3)
    result['variants'] = variants(framework, d2l, data, batch, reps)
    if d2l.Trainer.bfloat16:
        result['precision'] = bfloat16_against_float32(d2l, data, batch, reps)
    result['peak_rss_mb'] = peak_rss_mb()
    return result


# ------------------------------------------------------------ profile

PROFILE_STEPS = 5
# The operations of a training step, in a few kinds that every framework has.
PROFILE_KINDS = ('convolution, forward', 'convolution, backward', 'batch norm, forward',
                 'batch norm, backward', 'layout copies', 'optimizer update',
                 'elementwise and other')


def profile(framework, steps):
    """Where a training step of RegNetX32 spends its time, operation by
    operation, from the framework's own profiler: milliseconds per step of each
    kind of operation (PROFILE_KINDS) and of the slowest single operations. The
    profiler slows the step down (JAX's trace much more than PyTorch's), so the
    step is also timed without it."""
    d2l = framework_module(framework)
    data = d2l.FashionMNIST(batch_size=BATCH, resize=(SIZE, SIZE), num_train=4 * BATCH,
                            num_val=BATCH)
    trainer = prepared_trainer(d2l, True, data)
    batch = next(data.train_dataloader())
    for _ in range(3):
        float(trainer.train_step(batch))
    unprofiled = 1000 * median_time(lambda: float(trainer.train_step(batch)), steps, 0)
    ops, wall = PROFILED[framework](trainer, batch, steps)
    kinds = dict.fromkeys(PROFILE_KINDS, 0.0)
    for _, kind, ms in ops:
        kinds[kind] += ms
    top = sorted(ops, key=lambda op: -op[2])[:15]
    return {'steps': steps, 'step_ms': round(wall, 1), 'unprofiled_step_ms': round(unprofiled, 1),
            'kinds_ms': {k: round(v, 1) for k, v in kinds.items()},
            'top_ms': [[name, kind, round(ms, 2)] for name, kind, ms in top]}


def _jax_ops(trainer, batch, steps):
    """[(operation, kind, ms per step)] of the compiled step, from a JAX profiler
    trace (one event per XLA operation) and the compiled program, whose metadata
    names the model operation each XLA operation comes from."""
    import glob
    import gzip
    import tempfile

    import jax
    X, y = jax.device_put(batch)
    program = trainer._train.lower(trainer.params, trainer.batch_stats, trainer.opt_state,
                                   X, y).compile().as_text()
    origin = _hlo_origins(program)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        with jax.profiler.trace(folder, create_perfetto_trace=True):
            for _ in range(steps):
                float(trainer.train_step(batch))
        wall = (time.perf_counter() - start) * 1000 / steps
        trace, = glob.glob(f'{folder}/**/perfetto_trace.json.gz', recursive=True)
        with gzip.open(trace) as f:
            events = json.load(f)['traceEvents']
    totals = {}
    for event in events:
        if event.get('ph') == 'X' and event['name'] in origin:
            totals[event['name']] = totals.get(event['name'], 0.0) + event['dur'] / 1000
    return [(f'{name} ({origin[name].split("/", 1)[-1]})', _jax_kind(name, origin[name]),
             ms / steps) for name, ms in totals.items()], wall


def _hlo_origins(program):
    """{XLA operation: the model operation it comes from} of a compiled program's
    text. A fusion without its own metadata takes that of its fused root, or of
    the last fused operation that has some, or else '<root opcode>'."""
    origin, calls, roots, computation = {}, {}, {}, None
    for line in program.splitlines():
        header = re.match(r'^(?:ENTRY )?%?([\w.\-]+) .*\{$', line)
        if header:
            computation = header.group(1)
            continue
        op = re.match(r'^\s*(ROOT )?%?([\w.\-]+) = ', line)
        if not op:
            continue
        name = op.group(2)
        meta = re.search(r'op_name="([^"]*)"', line)
        called = re.search(r'calls=%?([\w.\-]+)', line)
        origin.setdefault(name, '')
        if meta:
            origin[name] = meta.group(1)
        elif called:
            calls[name] = called.group(1)
        if meta and (op.group(1) or computation not in roots or not roots[computation][0]):
            roots[computation] = (bool(op.group(1)), meta.group(1))
        elif op.group(1) and computation not in roots:   # e.g. a rewritten gradient
            opcode = re.search(r' = \S+ ([\w\-]+)\(', line)
            roots[computation] = (True, f'<{opcode.group(1) if opcode else "?"}>')
    for name, computation in calls.items():
        origin[name] = roots.get(computation, (False, ''))[1]
    return origin


def _jax_kind(name, op_name):
    if name.startswith(('transpose', 'copy', 'slice', 'wrapped_slice', 'concatenate')) or (
            'copy' in name and 'fusion' in name):
        return 'layout copies'
    if op_name in ('<convolution>', '<dot>'):   # kernel gradients XLA rewrote
        return 'convolution, backward'
    if op_name.startswith('jit(') and 'jvp(' not in op_name:
        return 'optimizer update'
    backward = 'transpose(jvp(' in op_name
    if op_name.rsplit('/', 1)[-1] in ('conv_general_dilated', 'dot_general') or (
            name.startswith(('conv', 'dot')) and 'BatchNorm' not in op_name):
        return f'convolution, {"backward" if backward else "forward"}'
    if '/BatchNorm_' in op_name:
        return f'batch norm, {"backward" if backward else "forward"}'
    return 'elementwise and other'


def _torch_ops(trainer, batch, steps):
    """[(operation, kind, ms per step)] of the step, from PyTorch's profiler (each
    operator's own CPU time, without the operators it calls)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile
    start = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            float(trainer.train_step(batch))
    wall = (time.perf_counter() - start) * 1000 / steps
    return [(e.key, _torch_kind(e.key), e.self_cpu_time_total / 1000 / steps)
            for e in prof.key_averages() if e.self_cpu_time_total > 0], wall


# The frameworks whose profiler times each operation, and how to read it.
PROFILED = {'jax': _jax_ops, 'pytorch': _torch_ops}


def _torch_kind(name):
    if 'Optimizer' in name or 'foreach' in name or 'sgd' in name.lower():
        return 'optimizer update'
    if 'convolution_backward' in name:
        return 'convolution, backward'
    if 'convolution' in name or 'addmm' in name or name == 'aten::mm':
        return 'convolution, forward'
    if 'batch_norm_backward' in name:
        return 'batch norm, backward'
    if 'batch_norm' in name:
        return 'batch norm, forward'
    if any(k in name for k in ('copy', 'contiguous', 'clone', 'to_dense', 'reorder')):
        return 'layout copies'
    return 'elementwise and other'


# ------------------------------------------------------------ against the book

# Training batches per unit of the comparison with the book (a sixth as many
# validation batches, the mix of a real epoch). The book's TensorFlow and JAX
# steps run near 10 images/s, so their units are shorter.
BOOK_TRAIN_BATCHES = {'pytorch': 24, 'mxnet': 24, 'tensorflow': 6, 'jax': 6}
BOOK_PAIRS = 3


def our_epoch(trainer):
    """Seconds of one more epoch of a fitted Trainer, as `fit` runs one:
    training steps with the live plot, then validation."""
    start = time.perf_counter()
    trainer.fit_epoch()
    return time.perf_counter() - start


def against_book(framework, pairs, train_batches=None, precision='auto'):
    """Our Trainer (at `precision`; 'auto' is what a reader gets) and the book's
    way of training (tools/bench_book.py, float32), one epoch of the same subset
    each (`train_batches` training batches, default BOOK_TRAIN_BATCHES, and a
    sixth as many validation batches), alternated after a warm-up epoch of each:
    ours, book, ours, book, ... Returns both rates, the precision ours computed
    in, and the median over the pairs of book time over ours (`speedup`)."""
    from tools.bench_book import BOOKS, median_ratio

    from d2lsupport.data import load_split
    d2l = framework_module(framework)
    num_train = train_batches or BOOK_TRAIN_BATCHES[framework]
    num_val = max(1, num_train // 6)
    (images, labels), (val_images, val_labels) = load_split(True), load_split(False)
    book = BOOKS[framework](images[:num_train * BATCH], labels[:num_train * BATCH],
                            val_images[:num_val * BATCH], val_labels[:num_val * BATCH],
                            LR, max_epochs=pairs + 1, size=SIZE)
    ours_model = d2l.RegNetX32(lr=LR)
    ours_params = d2l.param_count(ours_model, image_shape(d2l.LAYOUT, 1, SIZE))
    if book.param_count() != ours_params:
        raise SystemExit(f'bench: the book network has {book.param_count():,} parameters '
                         f'and ours {ours_params:,}; they must be the same network')
    data = d2l.FashionMNIST(batch_size=BATCH, resize=(SIZE, SIZE),
                            num_train=num_train * BATCH, num_val=num_val * BATCH)
    trainer = rendering_trainer(d2l, 1, precision)
    trainer.fit(ours_model, data)   # warm-up: compiles, starts the data
    book.fit_epoch()
    ours, theirs = [], []
    for _ in range(pairs):
        ours.append(round(our_epoch(trainer), 3))
        theirs.append(round(book.fit_epoch(), 3))
    images_per_epoch = (num_train + num_val) * BATCH
    return {'train_batches': num_train, 'val_batches': num_val, 'params': ours_params,
            'precision': trainer.precision, 'ours_s': ours, 'book_s': theirs,
            'ours': rate(statistics.median(ours), images_per_epoch),
            'book': rate(statistics.median(theirs), images_per_epoch),
            'speedup': median_ratio(ours, theirs)}


# ------------------------------------------------------------ accuracy of a precision

ACCURACY_DIR = os.path.join(records.RESULTS_DIR, 'accuracy')


def accuracy_run(framework, precision, seed, folder=ACCURACY_DIR):
    """The chapter's training of RegNetX32 in full (10 epochs, lr 0.05, batches
    of 128 images at 96 px) computing in `precision`, its weights initialized
    from `seed`: the check that a precision trains as well as float32 (and,
    with two seeds, how much float32 runs differ). Recorded, and resumable, in
    folder/<precision>-seed<seed>/regnetx32.<framework>.json."""
    run_folder = os.path.join(folder, f'{precision}-seed{seed}')
    os.makedirs(run_folder, exist_ok=True)
    os.environ[RESULTS_ENV] = run_folder
    d2l = framework_module(framework)
    trainer = d2l.Trainer(max_epochs=10, precision=precision, seed=seed)
    trainer.fit(d2l.RegNetX32(lr=0.05), d2l.FashionMNIST(batch_size=128, resize=(96, 96)))
    last = [h['val_acc'] for h in trainer.history[-4:]]
    return {'precision': trainer.precision, 'seed': seed, 'epochs': len(trainer.history),
            'val_acc': trainer.val_acc, 'last_four_mean_val_acc': round(statistics.mean(last), 4),
            'record': os.path.relpath(os.path.join(run_folder, f'regnetx32.{framework}.json'),
                                      os.path.dirname(records.RESULTS_DIR))}


# ---------------------------------------------------------------------- report

def merge(paths):
    """One dict from the measurement files; a framework's parts (measure, drift,
    bn) are merged into one entry."""
    merged = {'machine': machine_info()}
    for path in paths:
        found = records.read_json(path)
        if found is None:
            raise SystemExit(f'bench report: {path} is missing; run its measurement first')
        for key, value in found.items():
            if key in FRAMEWORKS:
                merged.setdefault(key, {}).update(value)
            else:
                merged[key] = value
    return merged


def drift_table(bench):
    """The long-run check as a markdown table, with its targets."""
    lines = [f'| framework | epoch times (s) | worst epoch 3+ vs their median (target '
             f'{DRIFT_TIME:.0%}) | resident MiB per epoch | growth after epoch 2 (target '
             f'{DRIFT_MEMORY:.0%}) |', '|---|---|---:|---|---:|']
    for fw in FRAMEWORKS:
        d = bench.get(fw, {}).get('drift')
        if d:
            lines.append(f'| {fw} | {", ".join(f"{t:.0f}" for t in d["epoch_s"])} | '
                         f'{d["time_spread"]:.0%} {"ok" if d["time_ok"] else "MISSED"} | '
                         f'{", ".join(f"{m:.0f}" for m in d["rss_mb"])} | '
                         f'{d["rss_growth"]:+.1%} {"ok" if d["memory_ok"] else "MISSED"} |')
    return '\n'.join(lines)


def memory_table(bench):
    """Resident memory (peak so far) in MiB after each phase, one column per framework."""
    present = [fw for fw in FRAMEWORKS if 'memory' in bench.get(fw, {})]
    phases = [p['phase'] for p in bench[present[0]]['memory']]
    lines = ['| phase | ' + ' | '.join(present) + ' |', '|---|' + '---:|' * len(present)]
    for i, phase in enumerate(phases):
        cells = [f'{p["rss_mb"]:.0f} ({p["peak_rss_mb"]:.0f})' for p in
                 (bench[fw]['memory'][i] for fw in present)]
        lines.append(f'| {phase} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def bn_table(bench):
    """The batch-normalization check as a markdown table."""
    lines = ['| framework | steps | val loss, running stats | val acc, running stats '
             '| val loss, batch stats | val acc, batch stats |', '|---|---:|---:|---:|---:|---:|']
    for fw in FRAMEWORKS:
        b = bench.get(fw, {}).get('bn')
        if b:
            r, p = b['running_stats'], b['batch_stats']
            lines.append(f'| {fw} | {b["steps"]} | {r["loss"]:.3f} | {r["acc"]:.3f} | '
                         f'{p["loss"]:.3f} | {p["acc"]:.3f} |')
    return '\n'.join(lines)


def table(bench):
    """The benchmark as markdown tables: speed with the target ratios, and the
    long-run and batch-normalization checks where they ran."""
    tables = {'trainer': speed_table, 'book': book_table, 'drift': drift_table,
              'bn': bn_table, 'memory': memory_table, 'profile': profile_table}
    return '\n\n'.join(make_table(bench) for part, make_table in tables.items()
                       if any(part in bench.get(fw, {}) for fw in FRAMEWORKS))


def profile_table(bench):
    """Milliseconds per training step of each kind of operation, one column per
    profiled framework, with each kind's share of the step's operations."""
    present = [fw for fw in FRAMEWORKS if 'profile' in bench.get(fw, {})]
    profiles = [bench[fw]['profile'] for fw in present]
    totals = [sum(p['kinds_ms'].values()) for p in profiles]
    lines = ['| operations | ' + ' | '.join(f'{fw} ms (share)' for fw in present) + ' |',
             '|---|' + '---:|' * len(present)]
    for kind in PROFILE_KINDS:
        cells = [f'{p["kinds_ms"][kind]:.1f} ({p["kinds_ms"][kind] / t:.0%})'
                 for p, t in zip(profiles, totals)]
        lines.append(f'| {kind} | ' + ' | '.join(cells) + ' |')
    lines.append('| all operations | ' + ' | '.join(f'{t:.1f}' for t in totals) + ' |')
    lines.append('| the step, wall time | ' + ' | '.join(f'{p["step_ms"]:.1f}' for p in profiles)
                 + ' |')
    lines.append('| the step without the profiler (median) | ' + ' | '.join(
        f'{p["unprofiled_step_ms"]:.1f}' for p in profiles) + ' |')
    lines.append('| wall time outside the operations | ' + ' | '.join(
        f'{p["step_ms"] - t:.1f}' for p, t in zip(profiles, totals)) + ' |')
    return '\n'.join(lines)


def speed_table(bench):
    """The speed measurements as a markdown table with the target ratios."""
    present = [fw for fw in FRAMEWORKS if 'trainer' in bench.get(fw, {})]
    fastest = max(bench[fw]['trainer'] for fw in present) if present else None
    lines = ['| framework | bare eager | bare fast | data | trainer | trainer / fastest '
             '| overhead | peak RSS (MiB) |', '|---|---:|---:|---:|---:|---:|---:|---:|']
    for fw in present:
        r = bench[fw]
        lines.append(f'| {fw} | {r["bare_eager"]:.1f} | {r["bare_fast"]:.1f} | '
                     f'{r["data"]:.0f} | {r["trainer"]:.1f} | {r["trainer"] / fastest:.2f}x | '
                     f'{100 * r["overhead"]:+.0f}% | {r["peak_rss_mb"]:.0f} |')
    extra = [f'{fw} {name}: {value:.1f}' for fw in present
             for name, value in bench[fw].get('variants', {}).items()]
    if extra:
        lines += ['', 'Other bare training steps (images/s): ' + '; '.join(extra) + '.']
    precision = [f'{fw} float32 {p["bare_float32"]:.1f}, bfloat16 {p["bare_bfloat16"]:.1f} '
                 f'({p["speedup"]:.2f}x; Trainer {p["trainer_float32"]:.1f} and '
                 f'{p["trainer_bfloat16"]:.1f})'
                 for fw in present for p in [bench[fw].get('precision')] if p]
    if precision:
        lines += ['', 'Bare training steps by precision, alternated (images/s): '
                  + '; '.join(precision) + '.']
    resized = [f'{fw} {bench[fw]["resize"]:,.0f}' for fw in present if 'resize' in bench[fw]]
    if resized:
        lines += ['', 'Resizing the training images once, before the disk cache exists '
                  '(images/s): ' + '; '.join(resized) + '.']
    return '\n'.join(lines)


def book_table(bench):
    """Ours against the book, per framework: rates and the median pairwise ratio."""
    lines = ['| framework | epoch (train + val batches) | pairs | ours (images/s) | ours computed in '
             '| book (images/s) | ours / book, median of pairs | pairwise ratios |',
             '|---|---|---:|---:|---|---:|---:|---|']
    for fw in FRAMEWORKS:
        b = bench.get(fw, {}).get('book')
        if b:
            ratios = ', '.join(f'{t / o:.2f}' for o, t in zip(b['ours_s'], b['book_s']))
            lines.append(f'| {fw} | {b["train_batches"]} + {b["val_batches"]} | '
                         f'{len(b["ours_s"])} | {b["ours"]:.1f} | '
                         f'{b["precision"]} | {b["book"]:.1f} | '
                         f'{b["speedup"]:.2f}x | {ratios} |')
    return '\n'.join(lines)


def use_quick_sizes(framework):
    """Tiny sizes everywhere (`--quick`): a check that everything runs, in
    seconds; its numbers mean nothing."""
    global TRAIN_BATCHES, VAL_BATCHES, DATA_BATCHES, DRIFT_TRAIN, DRIFT_VAL, BN_VAL_BATCHES
    global SIZE, PRECISION_PAIRS
    TRAIN_BATCHES, VAL_BATCHES, DATA_BATCHES, SIZE, PRECISION_PAIRS = 2, 1, 2, 32, 1
    DRIFT_TRAIN, DRIFT_VAL, BN_VAL_BATCHES = BATCH + 8, 8, 1
    BOOK_TRAIN_BATCHES[framework] = 2


def every_check(framework):
    """Every measurement once, at the quick sizes, in one process (the tests run
    this): the memory phases first, while the framework is not yet imported."""
    from tools.bench_book import BOOKS
    parts = {'memory': memory_phases(framework, 1), 'measure': measure(framework, 1),
             'drift': drift(framework, 4), 'bn': bn_check(framework, 1)}
    if framework in BOOKS:   # the book's four tabs
        parts['book'] = against_book(framework, 1)
    if framework in PROFILED:
        parts['profile'] = profile(framework, 1)
    return parts


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m tools.bench', description=__doc__.split(
        '\n\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    m = commands.add_parser('measure', help='time one framework (run in its environment)')
    m.add_argument('--framework', required=True, choices=FRAMEWORKS)
    m.add_argument('--out', required=True)
    m.add_argument('--reps', type=int, default=8)
    m.add_argument('--quick', action='store_true',
                   help='a check that everything runs: tiny sizes, numbers meaningless')
    b = commands.add_parser('book', help="our Trainer against the book's, alternated")
    b.add_argument('--framework', required=True, choices=FRAMEWORKS)
    b.add_argument('--out', required=True)
    b.add_argument('--pairs', type=int, default=BOOK_PAIRS)
    b.add_argument('--precision', choices=PRECISIONS, default='auto',
                   help="our Trainer's precision (default: auto, as a reader's)")
    b.add_argument('--train-batches', type=int,
                   help='training batches per epoch (default: BOOK_TRAIN_BATCHES)')
    b.add_argument('--quick', action='store_true')
    for name, help_text, option, default in (
            ('drift', 'per-epoch time and memory of a long fit', '--epochs', DRIFT_EPOCHS),
            ('memory', 'resident memory through the phases of training', '--steps', MEMORY_STEPS),
            ('bn', 'running against per-batch BN statistics', '--steps', BN_STEPS),
            ('profile', 'a training step operation by operation (jax, pytorch)', '--steps',
             PROFILE_STEPS)):
        c = commands.add_parser(name, help=help_text)
        c.add_argument('--framework', required=True, choices=FRAMEWORKS)
        c.add_argument('--out', required=True)
        c.add_argument(option, type=int, default=default)
        c.add_argument('--quick', action='store_true')
    c = commands.add_parser('check', help='every measurement at tiny sizes, in one process '
                            '(the tests)')
    c.add_argument('--framework', required=True, choices=FRAMEWORKS)
    c.add_argument('--out', required=True)
    a = commands.add_parser('accuracy', help='the chapter\'s full training at a precision '
                            '(results/accuracy/)')
    a.add_argument('--framework', required=True, choices=FRAMEWORKS)
    a.add_argument('--precision', required=True, choices=('float32', 'bfloat16'))
    a.add_argument('--seed', type=int, default=0)
    a.add_argument('--out', required=True)
    c = commands.add_parser('precision', help='bfloat16 against float32 only: the bare step '
                            'alternated and the Trainer in both (part of the default measurement)')
    c.add_argument('--framework', required=True, choices=FRAMEWORKS)
    c.add_argument('--out', required=True)
    c.add_argument('--reps', type=int, default=8)
    r = commands.add_parser('report', help='merge the measurements into one file')
    r.add_argument('paths', nargs='+')
    r.add_argument('--out', required=True)
    args = parser.parse_args(argv)
    # The benchmark trains the chapter's RegNetX32: keep its Trainer from writing
    # over the chapter's record (results/regnetx32.<framework>.json).
    os.environ.pop(RESULTS_ENV, None)
    if args.command == 'drift' and args.epochs < 4:
        parser.error('--epochs must be at least 4: epochs 1 and 2 are warm-up')
    if getattr(args, 'quick', False) or args.command == 'check':
        use_quick_sizes(args.framework)
        args.reps, args.steps, args.pairs = 1, 1, 1
        args.epochs = min(getattr(args, 'epochs', 4), 4)
    if args.command == 'report':
        missing = [p for p in args.paths if not Path(p).exists()]
        if missing:
            parser.error(f'no such file: {", ".join(missing)}; run `make bench` first')
        bench = merge(args.paths)
    elif args.command == 'bn':
        bench = {args.framework: {'bn': bn_check(args.framework, args.steps)}}
    elif args.command == 'memory':
        bench = {args.framework: {'memory': memory_phases(args.framework, args.steps)}}
    elif args.command == 'drift':
        bench = {args.framework: {'drift': drift(args.framework, args.epochs)}}
    elif args.command == 'check':
        bench = {args.framework: every_check(args.framework)}
    elif args.command == 'profile':
        if args.framework not in PROFILED:
            parser.error('profile: only jax and pytorch (their profilers time each operation)')
        bench = {args.framework: {'profile': profile(args.framework, args.steps)}}
    elif args.command == 'book':
        bench = {args.framework: {'book': against_book(args.framework, args.pairs,
                                                       args.train_batches, args.precision)}}
    elif args.command == 'precision':
        bench = {args.framework: {'precision': precision_only(args.framework, args.reps)}}
    elif args.command == 'accuracy':
        run = accuracy_run(args.framework, args.precision, args.seed)
        bench = {args.framework: {'accuracy': {f'{args.precision}-seed{args.seed}': run}}}
    else:
        bench = {args.framework: measure(args.framework, args.reps)}
    records.write_json_atomic(args.out, bench)
    print(table(bench) if args.command == 'report' else json.dumps(bench, indent=1))


if __name__ == '__main__':
    main()
