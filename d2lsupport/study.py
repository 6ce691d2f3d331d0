"""A design-space study: sample networks from design spaces, train each one
briefly on Fashion-MNIST with a framework's Trainer and compare the spaces'
error EDFs.

    python -m d2lsupport.study run --out results/study-cost.jsonl -n 64 --mflops 0.5
    python -m d2lsupport.study plot results/study-cost.jsonl --out img/edf-study-cost.svg

**Tasks.** Model `index` of design space `space` draws its configuration
and its training seed (weight initialization and minibatch order) from
``SeedSequence((seed, identifier, index))``, where `identifier` is the
space's fixed number in `design.DESIGN_SPACES`, so a study is the same
whatever the order, the number of workers, or how often it was interrupted.
With ``--mflops`` (a `Cost`) the configuration is drawn from the space's own
distribution until one lies within the tolerance of that cost
(`design.sample_at_cost`), as the paper compares spaces within one band of
flops; the record keeps how many draws that took. Tasks run interleaved:
model 0 of every space, then model 1, ..., so a partial study has about
equal samples per space.

**Study budget** (`StudyBudget`: how each sampled network is trained; not
`core.Budget`, the switch that shrinks the notebooks' training for the
tests). A cheap proxy for full training, which the paper's second
assumption allows and `rank_agreement` tests: by default one epoch on all
60,000 training images at their native 28 x 28, in minibatches of 128,
trained with the framework's Trainer and the default `Recipe` (SGD with
Nesterov momentum 0.9, weight decay 5e-5, the learning rate decaying
from 0.1 to 0 along a cosine), then the error on all 10,000 test images. The
design spaces of `design` are sized for 28 px: three stages leave 2 x 2 maps.
With the same framework and number of threads a model gives the same numbers
on every run.

**Results** are JSON Lines of strict JSON (`records`), one record per
finished model, appended and flushed to disk (fsync) one whole line at a
time by the main process; a loss that is not finite is the string "NaN"
(or "Infinity"). A run first drops an incomplete last line left by a crash,
then skips every (space, index) already in the file: an interrupted study
resumes without losing or repeating a finished model. Records of another
seed, cost, budget or framework in the same file are an error, and so is a
record whose network is not the one its seed draws now (the sampling code
changed since the file was written).

**Workers.** Local worker processes (``--workers``, each limited to
``--threads`` threads before its framework loads, see `core.limit_threads`),
or with ``--cluster ADDRESS`` the workers of an existing Dask distributed
cluster (``pip install d2lsupport[cluster]``); every worker needs
d2lsupport, the framework and the Fashion-MNIST files (see `d2lsupport.data`).
"""
import dataclasses
import importlib.util
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Optional

import numpy as np
from tqdm import tqdm

from . import checks, cli, design
from .core import (FRAMEWORKS, MODULES, cpu_count, framework_module, limit_threads,
                   source_commit)
from .data import NUM_TRAIN, NUM_VAL, DataError
from .records import (STUDY_COST_FILE, STUDY_FILE, STUDY_LONG_FILE, RecordError,
                      append_json_line, drop_incomplete_line, number, read_json_lines)

FRAMEWORK = 'pytorch'
CONNECT_TIMEOUT = '10s'   # to reach a Dask scheduler
# Each space against the next one of the table: A -> B -> ... -> RegNetX.
COMPARISONS = tuple(zip(design.SPACES, design.SPACES[1:]))
# The studies shipped with the chapter, under the names the chapter uses.
RESULTS_FILE, COST_FILE, LONG_FILE = STUDY_FILE, STUDY_COST_FILE, STUDY_LONG_FILE


class StudyError(RuntimeError):
    """A problem with the study's input that the user can fix."""


def checked(check, *args, **kwargs):
    """The value that `check` (one of `checks`) returns, its ValueError a StudyError."""
    try:
        return check(*args, **kwargs)
    except ValueError as e:
        raise StudyError(str(e)) from None


@dataclasses.dataclass(frozen=True)
class StudyBudget:
    """How each sampled network of a study is trained and evaluated (see the
    module doc); not `core.Budget`, which shrinks the notebooks' training for
    the tests.

    `train_size` and `val_size` keep the first images of the training and
    test sets (all by default; fewer for quick tests).
    """
    epochs: int = 1
    image_size: int = 28
    train_size: int = NUM_TRAIN
    val_size: int = NUM_VAL
    batch_size: int = 128
    lr: float = 0.1

    def __post_init__(self):
        for name in ('epochs', 'image_size', 'train_size', 'val_size', 'batch_size'):
            checked(checks.positive_int, 'StudyBudget', name, getattr(self, name))
        if self.train_size > NUM_TRAIN or self.val_size > NUM_VAL:
            raise StudyError(f'StudyBudget: Fashion-MNIST has {NUM_TRAIN:,} training and '
                             f'{NUM_VAL:,} test images; ask for at most as many')
        checked(checks.number, 'StudyBudget', 'lr', self.lr, above=0)


@dataclasses.dataclass(frozen=True)
class Cost:
    """Sample only networks within `tolerance` (a fraction) of `mflops` million
    flops (multiply-adds on one 28 x 28 image)."""
    mflops: float
    tolerance: float = 0.1

    def __post_init__(self):
        checked(checks.number, 'Cost', 'mflops', self.mflops, above=0)
        if not checked(checks.number, 'Cost', 'tolerance', self.tolerance, above=0) < 1:
            raise StudyError(f'Cost: tolerance must be a fraction between 0 and 1, '
                             f'got {self.tolerance!r}')


# --------------------------------------------------------------------- tasks

def model_seeds(seed, space, index):
    """(configuration seed, training seed) of model `index` of `space`."""
    sequence = np.random.SeedSequence((seed, design.design_space(space).identifier, index))
    return tuple(int(s) for s in sequence.generate_state(2))


def make_task(seed, space, index, cost=None):
    """Model `index` of design space `space` in the study with `seed`, drawn
    from the whole space or, with a `Cost`, from its networks of that cost."""
    config_seed, train_seed = model_seeds(seed, space, index)
    rng = np.random.default_rng(config_seed)
    if cost is None:
        config, draws = design.sample_config(space, rng), 1
    else:
        config, draws = design.sample_at_cost(space, rng, cost.mflops, cost.tolerance)
    return {'space': space, 'index': index, 'seed': seed, 'train_seed': train_seed,
            'config': config, 'draws': draws,
            'cost': None if cost is None else dataclasses.asdict(cost)}


def plan(seed, spaces, n, cost=None):
    """The tasks of `n` models per space, interleaved across the spaces."""
    checked(checks.positive_int, 'study', 'seed', seed, minimum=0)
    checked(checks.positive_int, 'study', 'n', n)
    if isinstance(spaces, str) or not spaces:
        raise StudyError(f'study: spaces must be a list of design spaces among '
                         f'{", ".join(design.SPACES)}, got {spaces!r}')
    spaces = list(dict.fromkeys(spaces))
    for space in spaces:
        checked(design.design_space, space)
    if cost is not None and not isinstance(cost, Cost):
        raise StudyError(f'study: cost must be a Cost or None, got {cost!r}')
    try:
        return [make_task(seed, space, index, cost) for index in range(n) for space in spaces]
    except ValueError as e:
        raise StudyError(str(e)) from None


# ------------------------------------------------------------- one model

def run_task(task, budget, framework=FRAMEWORK, threads=1):
    """Train and evaluate one sampled network with the framework's Trainer;
    return its result record. `threads` holds when the framework is not
    loaded yet in this process (as in a new worker)."""
    limit_threads(threads)
    d2l = framework_module(framework)
    data = d2l.FashionMNIST(batch_size=budget.batch_size, resize=(budget.image_size,) * 2,
                            seed=task['train_seed'], num_train=budget.train_size,
                            num_val=budget.val_size)
    # float32 whatever the CPU: the committed studies were trained so, and a resumed
    # study must train its remaining networks the same way
    trainer = d2l.Trainer(budget.epochs, quiet=True, recipe=d2l.Recipe(),
                          seed=task['train_seed'] % 2 ** 31, precision='float32')
    start = time.perf_counter()
    trainer.fit(d2l.anynet(task['config'], lr=budget.lr), data)
    return {'space': task['space'], 'index': task['index'], 'seed': task['seed'],
            'config': task['config'].to_json(), 'cost': task['cost'], 'draws': task['draws'],
            'complexity': design.complexity(task['config'], image_size=budget.image_size),
            'error': 1 - trainer.val_acc, 'train_loss': trainer.train_loss,
            'seconds': round(time.perf_counter() - start, 2), 'framework': framework,
            'budget': dataclasses.asdict(budget), 'threads': threads}


# ------------------------------------------------------------- results file

def read_results(path):
    """The records of a study's results file ([] if there is none), each
    checked to be a study's record; an incomplete last line is not a record."""
    found = read_json_lines(path)
    for line, record in enumerate(found, 1):
        if not (isinstance(record, dict) and record.get('space') in design.SPACES
                and isinstance(record.get('index'), int) and 'error' in record):
            raise StudyError(f'{path}, line {line}: not a record of a design-space study '
                             '(space, index, error); delete that line or choose another file')
    return found


def append_record(path, record):
    """Append one record as a line of strict JSON, forced to disk before returning."""
    append_json_line(path, record)


def settings(seed, budget, framework=FRAMEWORK, cost=None):
    """What every record of one study shares: seed, framework, cost and budget."""
    return {'seed': seed, 'framework': framework,
            'cost': None if cost is None else dataclasses.asdict(cost),
            **dataclasses.asdict(budget)}


def check_settings(found, seed, budget, framework=FRAMEWORK, cost=None):
    """Raise a StudyError unless every record of `found` has this study's settings."""
    expected = settings(seed, budget, framework, cost)
    for record in found:
        got = {'seed': record.get('seed'), 'framework': record.get('framework'),
               'cost': record.get('cost'), **record.get('budget', {})}
        if got != expected:
            changes = ', '.join(f'{key} {got.get(key)} (now {expected.get(key)})'
                                for key in {**got, **expected}
                                if got.get(key) != expected.get(key))
            raise StudyError(f'the results file holds a study with other settings: '
                             f'{changes}; choose another --out or the same settings')


def check_networks(found, tasks):
    """Raise a StudyError unless each record of `found` that `tasks` plan holds
    the network that its task draws now."""
    planned = {(t['space'], t['index']): t for t in tasks}
    for record in found:
        task = planned.get((record['space'], record['index']))
        if task is not None and record.get('config') != task['config'].to_json():
            raise StudyError(
                f'the results file holds model {record["space"]} #{record["index"]} with a '
                'network that its seed no longer draws (the sampling code changed since the '
                'file was written); choose another --out to start the study afresh')


def finished_models(found, tasks, seed, budget, framework=FRAMEWORK, cost=None):
    """The (space, index) pairs of the records `found`, which must come from
    this study (its settings, and the networks of its `tasks`)."""
    check_settings(found, seed, budget, framework, cost)
    check_networks(found, tasks)
    return {(record['space'], record['index']) for record in found}


# ------------------------------------------------------------------ workers

def run_local(tasks, budget, framework, workers, threads):
    """Yield the records of `tasks` as local worker processes finish them."""
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context('spawn'))
    try:
        futures = [pool.submit(run_task, task, budget, framework, threads) for task in tasks]
        for future in as_completed(futures):
            yield future.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def connect(address):
    """A Dask client of the scheduler at `address`."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise StudyError('--cluster needs Dask: pip install "d2lsupport[cluster]"') from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        raise StudyError(f'cannot reach the Dask scheduler at {address!r} '
                         f'({" ".join(str(e).split()) or type(e).__name__}); check that it '
                         'runs there, at an address such as tcp://HOST:8786') from None


def run_cluster(tasks, budget, framework, address, threads):
    """Submit `tasks` to the workers of a Dask cluster (an unreachable one is
    an error right away); return an iterator over their records as they finish."""
    client = connect(address)
    return _as_finished(client, [client.submit(run_task, task, budget, framework, threads,
                                               pure=False) for task in tasks])


def _as_finished(client, futures):
    from dask.distributed import as_completed as completed
    with client:
        for future in completed(futures):
            yield future.result()


# -------------------------------------------------------------------- study

def run_study(out, spaces=design.SPACES, n=32, seed=0, budget=StudyBudget(), cost=None,
              framework=FRAMEWORK, workers=None, threads=1, cluster=None, limit=None):
    """Train the models of the study that `out` does not hold yet (at most
    `limit` of them), appending one record per model; return their number."""
    check_run(out, budget, framework, workers, threads, limit)
    tasks = plan(seed, spaces, n, cost)
    drop_incomplete_line(out)
    done = finished_models(read_results(out), tasks, seed, budget, framework, cost)
    remaining = [t for t in tasks if (t['space'], t['index']) not in done]
    todo = remaining[:limit]
    if todo and not cluster and importlib.util.find_spec(MODULES[framework]) is None:
        raise StudyError(f'{framework} is not installed here; run the study with the Python '
                         f'of its environment (.venv/{framework}/bin/python)')
    if cluster:
        records = run_cluster(todo, budget, framework, cluster, threads)
    else:
        records = run_local(todo, budget, framework,
                            workers or max(1, cpu_count() // threads), threads)
    initial, commit = len(tasks) - len(remaining), source_commit()
    with tqdm(total=initial + len(todo), initial=initial, unit='model', smoothing=0,
              desc='study') as bar:
        for record in records:
            append_record(out, {**record, 'commit': commit})
            bar.set_postfix_str(f'{record["space"]} #{record["index"]}: error '
                                f'{number(record["error"]):.3f} in '
                                f'{record["seconds"]:.0f} s')
            bar.update()
    return len(todo)


def check_run(out, budget, framework, workers, threads, limit):
    """Raise a StudyError, before anything runs, for settings that cannot run."""
    if framework not in FRAMEWORKS:
        raise StudyError(f'unknown framework {framework!r}; choose from {", ".join(FRAMEWORKS)}')
    if not isinstance(budget, StudyBudget):
        raise StudyError(f'study: budget must be a StudyBudget, got {budget!r}')
    checked(checks.positive_int, 'study', 'threads', threads)
    for name, value in (('workers', workers), ('limit', limit)):
        checked(checks.optional_positive_int, 'study', name, value)
    check_out(out)


def check_out(out):
    """The results or figure file `out` must be a file name in an existing folder."""
    if not isinstance(out, (str, os.PathLike)) or not os.fspath(out):
        raise StudyError(f'study: out must name a file (a str or pathlib.Path), got {out!r}')
    path = Path(out)
    if path.is_dir():
        raise StudyError(f'--out {out} is a folder; name a file in it')
    if not path.absolute().parent.is_dir():
        raise StudyError(f'--out {out}: the folder {path.absolute().parent} does not exist; '
                         'create it or choose another place')


# --------------------------------------------------------------------- plots

def errors_by_space(found):
    """{space: [errors]} in the order of design.SPACES."""
    errors = {}
    for record in found:
        errors.setdefault(record['space'], []).append(number(record['error']))
    return {space: errors[space] for space in design.SPACES if space in errors}


def plot_comparisons(records, pairs=COMPARISONS):
    """One figure of the study: a panel of error EDFs per pair of spaces that
    `records` holds, in a grid of three columns, each space in the same colour
    in every panel, and one legend for all (in the last, spare cell)."""
    import matplotlib.pyplot as plt
    errors = errors_by_space(records)
    pairs = [(a, b) for a, b in pairs if a in errors and b in errors]
    if not pairs:
        raise StudyError(f'no pair of compared spaces in the results; need one of '
                         f'{", ".join(a + "/" + b for a, b in COMPARISONS)}')
    columns = min(3, len(pairs) + 1)
    rows = -(-(len(pairs) + 1) // columns)
    colors = dict(zip(design.SPACES, plt.get_cmap('tab10').colors))
    with plt.rc_context({'font.size': 11}):
        fig, axes = plt.subplots(rows, columns, figsize=(3.3 * columns, 3 * rows),
                                 sharex=True, sharey=True, squeeze=False)
        cells = list(axes.flat)
        for ax, (a, b) in zip(cells, pairs):
            for space, style in ((a, '--'), (b, '-')):
                design.draw_edf(ax, errors[space], style, color=colors[space])
            ax.set_title(f'{math_name(a)} to {math_name(b)}', fontsize=11)
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel('error')
            ax.grid(alpha=0.3)
        for ax in axes[:, 0]:
            ax.set_ylabel('fraction of networks')
        for ax in cells[len(pairs):]:
            ax.axis('off')
        handles = [plt.Line2D([], [], color=colors[s], label=f'{math_name(s)} (n={len(errors[s])})')
                   for s in errors]
        handles += [plt.Line2D([], [], color='gray', ls='--', label='dashed: before the step'),
                    plt.Line2D([], [], color='gray', label='solid: after the step')]
        cells[-1].legend(handles=handles, loc='center', frameon=False)
        fig.tight_layout()
    plt.close(fig)
    return fig


def math_name(space):
    """A space's name for a figure, with its letter as a subscript."""
    name = design.space_name(space)
    return f'$\\mathrm{{AnyNetX}}_{{{space}}}$' if name.startswith('AnyNetX_') else name


def all_bottleneck_ratios(record):
    """The bottleneck ratios of a record's stages."""
    return {stage[3] for stage in record['config']['stages']}


def summary(records):
    """One line per design space: sample size, median cost (MFLOPs and thousands
    of parameters), how many networks use no bottleneck (b = 1 in every stage),
    best and median error, the median error left after a fit of error against
    log FLOPs and against log parameters over all the records (in points; a
    space below zero does better than its networks' cost or size predicts),
    the median training time of a network and, for a study at equal cost, how
    many networks were drawn per accepted one (mean)."""
    at_cost = any(r.get('cost') for r in records)
    lines = [f'{"space":<9}{"n":>4}{"MFLOPs":>8}{"kparams":>9}{"b=1":>5}{"best":>7}'
             f'{"median":>8}{"vs FLOPs":>10}{"vs params":>11}{"s/net":>7}'
             + (f'{"draws":>7}' if at_cost else '')]
    spaces = np.array([r['space'] for r in records])
    by_flops = log_residuals(records, 'flops')[0]
    by_params = log_residuals(records, 'params')[0]
    for space, errors in errors_by_space(records).items():
        mine = [r for r in records if r['space'] == space]
        line = (f'{space:<9}{len(errors):>4}'
                f'{np.median([r["complexity"]["flops"] for r in mine]) / 1e6:>8.2f}'
                f'{np.median([r["complexity"]["params"] for r in mine]) / 1e3:>9.1f}'
                f'{sum(all_bottleneck_ratios(r) == {1} for r in mine):>5}'
                f'{100 * min(errors):>7.1f}{100 * np.median(errors):>8.2f}'
                f'{100 * np.median(by_flops[spaces == space]):>+10.2f}'
                f'{100 * np.median(by_params[spaces == space]):>+11.2f}'
                f'{np.median([r["seconds"] for r in mine]):>7.1f}')
        if at_cost:
            line += f'{np.mean([r["draws"] for r in mine]):>7.1f}'
        lines.append(line)
    return '\n'.join(lines)


def bootstrap_shifts(before, after, rng, draws=4000):
    """The median of `after` minus the median of `before`, each resampled with
    replacement, `draws` times."""
    before, after = np.asarray(before), np.asarray(after)
    return np.array([np.median(rng.choice(after, after.size)) -
                     np.median(rng.choice(before, before.size)) for _ in range(draws)])


def percentile_interval(samples, confidence=0.95):
    """The central `confidence` interval of bootstrap samples."""
    tail = 50 * (1 - confidence)
    return np.percentile(samples, [tail, 100 - tail])


def median_shift(before, after, rng, draws=4000, confidence=0.95):
    """Median of `after` minus median of `before`, with a bootstrap interval."""
    shifts = bootstrap_shifts(before, after, rng, draws)
    return np.median(after) - np.median(before), percentile_interval(shifts, confidence)


def expected_half_width(errors, n, seed=0, repeats=20, draws=1000):
    """The half-width (median over `repeats` simulated studies) of the 95%
    bootstrap interval of a median shift between two spaces of `n` networks
    each, whose errors spread like `errors`: for choosing a study's size."""
    rng = np.random.default_rng(seed)
    widths = []
    for _ in range(repeats):
        _, (low, high) = median_shift(rng.choice(errors, n), rng.choice(errors, n), rng, draws)
        widths.append((high - low) / 2)
    return float(np.median(widths))


def log_residuals(records, measure='flops'):
    """Errors minus a straight-line fit of error against the log of a network's
    `measure` ('flops' or 'params') over all `records`; returns (residuals,
    correlation of error with the log of that measure)."""
    log_size = np.log([r['complexity'][measure] for r in records])
    errors = np.array([r['error'] for r in records])
    if np.ptp(log_size) == 0:   # nothing to fit: no trend, no correlation
        return errors - errors.mean(), float('nan')
    slope, intercept = np.polyfit(log_size, errors, 1)
    return errors - (intercept + slope * log_size), np.corrcoef(log_size, errors)[0, 1]


def edf_distance(x, y):
    """The largest vertical gap between the EDFs of `x` and `y` (the
    Kolmogorov-Smirnov statistic)."""
    grid = np.concatenate([x, y])
    return float(np.max(np.abs(design.edf(x, grid)[1] - design.edf(y, grid)[1])))


def edf_test(x, y, rng, draws=2000):
    """(gap between the EDFs, p-value): how often networks shuffled between the
    two spaces, keeping the sample sizes, give a gap at least as large; a
    small p says the whole distributions differ, not only their medians."""
    gap, pooled = edf_distance(x, y), np.concatenate([x, y])
    larger = 0
    for _ in range(draws):
        shuffled = rng.permutation(pooled)
        larger += edf_distance(shuffled[:len(x)], shuffled[len(x):]) >= gap - 1e-12
    return gap, (larger + 1) / (draws + 1)


def average_ranks(values):
    """Ranks 0 .. n-1 of `values`; tied values share the mean of their ranks."""
    values = np.asarray(values, dtype=float)
    ranks = np.empty(values.size)
    ranks[np.argsort(values, kind='stable')] = np.arange(values.size)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x, y):
    """Spearman's rank correlation of two equally long sequences."""
    return float(np.corrcoef(average_ranks(x), average_ranks(y))[0, 1])


def rank_agreement(short, long, seed=0, draws=4000):
    """How well the errors after a short budget rank the networks as a longer
    budget does (the paper's second assumption). `short` and `long` are records
    of the same study (same seed and cost) with different budgets; networks are
    matched by (space, index). Returns (number of networks, Spearman's rho,
    its 95% bootstrap interval over the networks)."""
    by_key = {(r['space'], r['index']): r['error'] for r in short}
    pairs = [(by_key[(r['space'], r['index'])], r['error']) for r in long
             if (r['space'], r['index']) in by_key]
    if len(pairs) < 3:
        raise StudyError('the two studies share fewer than 3 networks; train the longer '
                         'budget with the same --seed and --mflops')
    x, y = np.array(pairs).T
    rng = np.random.default_rng(seed)
    samples = [rng.integers(len(x), size=len(x)) for _ in range(draws)]
    rhos = [spearman(x[i], y[i]) for i in samples if np.ptp(x[i]) and np.ptp(y[i])]
    return len(x), spearman(x, y), tuple(np.percentile(rhos, [2.5, 97.5]))


def errors_by_bottleneck_ratio(found, spaces=('B', 'C', 'D', 'E')):
    """{bottleneck ratio b: errors} of the networks of `spaces`, which share one b
    across their stages and draw it from {1, 2, 4} (RegNetX draws it alike but
    only since the equal-cost study; the first study's RegNetX fixed b = 1)."""
    errors = {}
    for r in found:
        if r['space'] in spaces:
            errors.setdefault(r['config']['stages'][0][3], []).append(number(r['error']))
    return dict(sorted(errors.items()))


@dataclasses.dataclass(frozen=True)
class Step:
    """One refinement from space `before` to space `after`, in points of error:
    the median shift with its 95% interval and with the interval that holds
    for all steps together (Bonferroni), the gap between the whole EDFs and
    its p-value, the shift of the errors corrected for log parameters, and the
    shift among networks without a bottleneck (b = 1), each with a 95%
    interval (None where a space has fewer than MIN_SUBSET such networks)."""
    before: str
    after: str
    shift: float
    interval: tuple
    joint_interval: tuple
    edf_gap: float
    edf_p: float
    size_corrected: tuple
    without_bottleneck: Optional[tuple]


MIN_SUBSET = 10   # networks per space for a comparison within a subset


def compare_steps(records, pairs=COMPARISONS, seed=0):
    """A `Step` per pair of spaces that `records` holds; each pair has its own
    random numbers, so a step's intervals do not depend on the other pairs."""
    errors = errors_by_space(records)
    pairs = [(a, b) for a, b in pairs if a in errors and b in errors]
    spaces = np.array([r['space'] for r in records])
    corrected = log_residuals(records, 'params')[0]
    plain = np.array([all_bottleneck_ratios(r) == {1} for r in records])
    error = np.array([r['error'] for r in records])
    joint = 1 - (1 - 0.95) / len(pairs)
    steps = []
    for i, (a, b) in enumerate(pairs):
        rng = np.random.default_rng([seed, i])
        shifts = bootstrap_shifts(errors[a], errors[b], rng)
        shift = np.median(errors[b]) - np.median(errors[a])
        gap, p = edf_test(np.array(errors[a]), np.array(errors[b]), rng)
        size = median_shift(corrected[spaces == a], corrected[spaces == b], rng)
        subset = None
        x, y = error[(spaces == a) & plain], error[(spaces == b) & plain]
        if min(len(x), len(y)) >= MIN_SUBSET:
            subset = (len(x), len(y), *median_shift(x, y, rng))
        steps.append(Step(a, b, 100 * shift, tuple(100 * percentile_interval(shifts)),
                          tuple(100 * percentile_interval(shifts, joint)), gap, p,
                          (100 * size[0], tuple(100 * size[1])),
                          None if subset is None else
                          (subset[0], subset[1], 100 * subset[2], tuple(100 * subset[3]))))
    return steps


def bottleneck_effect(records, spaces=('B', 'C', 'D', 'E'), seed=0):
    """({b: errors} of the networks of `spaces`, which share one bottleneck
    ratio b across their stages, and the shift of the median error in points
    from b = 1 to the largest b, with its 95% interval)."""
    by_b = errors_by_bottleneck_ratio(records, spaces)
    if len(by_b) < 2:
        return by_b, None
    largest = max(by_b)
    shift, interval = median_shift(by_b[1], by_b[largest], np.random.default_rng(seed))
    return by_b, (largest, 100 * shift, tuple(100 * interval))


def interval_text(interval):
    return f'[{interval[0]:+.2f}, {interval[1]:+.2f}]'


def comparisons(records, pairs=COMPARISONS, seed=0):
    """The steps between spaces as two tables (the shift of the median error
    with its intervals and the EDF test; the same shift under two possible
    confounds: size, and the bottleneck), the correlations of error with cost
    and size, and the effect of the bottleneck ratio."""
    steps = compare_steps(records, pairs, seed)
    lines = [f'change of the median error, in points ({len(steps)} steps; the joint '
             f'interval holds for all {len(steps)} at once):',
             f'{"step":<18}{"shift":>7}{"95% interval":>18}{"joint interval":>18}'
             f'{"EDF gap":>9}{"p":>7}']
    for s in steps:
        lines.append(f'{s.before + " -> " + s.after:<18}{s.shift:>+7.2f}'
                     f'{interval_text(s.interval):>18}{interval_text(s.joint_interval):>18}'
                     f'{s.edf_gap:>9.2f}{s.edf_p:>7.3f}')
    lines += ['the same shift corrected for log parameters, and among networks with b = 1 '
              '(95% intervals):',
              f'{"step":<18}{"size-corrected":>24}{"b = 1 only (networks)":>32}']
    for s in steps:
        within = '-' if s.without_bottleneck is None else (
            f'{s.without_bottleneck[2]:+.2f} {interval_text(s.without_bottleneck[3])} '
            f'({s.without_bottleneck[0]}, {s.without_bottleneck[1]})')
        lines.append(f'{s.before + " -> " + s.after:<18}'
                     f'{s.size_corrected[0]:>+7.2f} {interval_text(s.size_corrected[1]):>16}'
                     f'{within:>32}')
    flops = [r['complexity']['flops'] / 1e6 for r in records]
    lines.append(f'MFLOPs {min(flops):.2f} to {max(flops):.2f}; correlation of error with '
                 f'log FLOPs {log_residuals(records, "flops")[1]:.2f}, with log parameters '
                 f'{log_residuals(records, "params")[1]:.2f}')
    by_b, effect = bottleneck_effect(records, seed=seed)
    if effect:
        lines.append('median error of B to E by bottleneck ratio: ' + ', '.join(
            f'b = {b:g}: {100 * np.median(e):.1f}% ({len(e)})' for b, e in by_b.items())
            + f'; b = {effect[0]:g} against b = 1: {effect[1]:+.2f} '
            f'{interval_text(effect[2])}')
    return '\n'.join(lines)


# ---------------------------------------------------------------------- CLI

def build_parser():
    parser, sub = cli.commands(
        'study', 'Sample, train and compare networks of AnyNet design spaces.')
    p = sub.add_parser('run', help='train the sampled models (resumes a study)')
    p.add_argument('--out', required=True, help='results file (JSON Lines)')
    p.add_argument('--spaces', nargs='+', default=list(design.SPACES), metavar='SPACE',
                   help=f'design spaces among {", ".join(design.SPACES)} (default: all)')
    p.add_argument('-n', type=cli.positive_int, default=32, help='models per space')
    p.add_argument('--seed', type=cli.non_negative_int, default=0)
    p.add_argument('--limit', type=cli.positive_int, help='train at most this many models now')
    p.add_argument('--workers', type=cli.positive_int, help='local worker processes '
                   '(default: CPUs / threads)')
    p.add_argument('--threads', type=cli.positive_int, default=1, help='threads per model')
    p.add_argument('--cluster', metavar='ADDRESS',
                   help='Dask scheduler, e.g. tcp://10.0.0.5:8786 (instead of local workers)')
    p.add_argument('--framework', choices=FRAMEWORKS, default=FRAMEWORK,
                   help='whose Trainer trains the models (its environment must run this)')
    p.add_argument('--mflops', type=float, help='sample only networks of this cost, in '
                   'million flops (default: the whole space)')
    p.add_argument('--tolerance', type=float, default=0.1,
                   help='with --mflops: the band of accepted costs, a fraction (default 0.1)')
    defaults = StudyBudget()
    for field in dataclasses.fields(StudyBudget):
        kind = float if field.name == 'lr' else cli.positive_int
        p.add_argument('--' + field.name.replace('_', '-'), type=kind,
                       default=getattr(defaults, field.name))
    p = sub.add_parser('plot', help='draw the EDF comparisons of a results file')
    p.add_argument('results', help='results file (JSON Lines)')
    p.add_argument('--out', required=True, help='figure file (.svg, .png, .pdf)')
    return parser


def check_figure_file(out):
    """The figure file `out` must be writable in a format matplotlib knows."""
    from matplotlib.backend_bases import FigureCanvasBase
    check_out(out)
    formats = FigureCanvasBase.get_supported_filetypes()
    if Path(out).suffix[1:].lower() not in formats:
        raise StudyError(f'--out {out}: name a figure file ending in one of '
                         f'{", ".join("." + f for f in sorted(formats))}')


def plot(results, out):
    """Draw the comparisons of the results file `results` into `out`; return
    the summary table."""
    check_figure_file(out)
    if not Path(results).is_file():
        raise StudyError(f'no results file {results}; train a study into it with '
                         '`python -m d2lsupport.study run --out ...` first')
    found = read_results(results)
    plot_comparisons(found).savefig(out)
    return summary(found)


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == 'run':
            budget = StudyBudget(**{f.name: getattr(args, f.name)
                                    for f in dataclasses.fields(StudyBudget)})
            cost = None if args.mflops is None else Cost(args.mflops, args.tolerance)
            count = run_study(args.out, args.spaces, args.n, args.seed, budget, cost,
                              args.framework, args.workers, args.threads, args.cluster,
                              args.limit)
            print(f'{count} models trained; results in {args.out}')
        else:
            print(plot(args.results, args.out))
            print(f'figure: {args.out}')
    except (StudyError, DataError, RecordError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    # Run the importable module, not this __main__ copy, so that worker
    # processes and Dask find `run_task` under its module name.
    from d2lsupport.study import main as study_main
    sys.exit(study_main())
