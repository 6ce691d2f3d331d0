"""A design-space study: sample networks from design spaces, train each one
briefly on Fashion-MNIST with a framework's Trainer and compare the spaces'
error EDFs.

    python -m d2lsupport.study run --out results/study-cost.jsonl -n 64 --mflops 0.5
    python -m d2lsupport.study plot results/study-cost.jsonl --out img/edf-study-cost.svg

**Tasks.** Model `index` of design space `space` draws its configuration
and its training seed (weight initialization and minibatch order) from
``SeedSequence((seed, SPACES.index(space), index))``, so a study is the same
whatever the order, the number of workers, or how often it was interrupted.
With ``--mflops`` (a `Cost`) the configuration is drawn from the space's own
distribution until one lies within the tolerance of that cost
(`design.sample_at_cost`), as the paper compares spaces within one band of
flops; the record keeps how many draws that took. Tasks run interleaved:
model 0 of every space, then model 1, ..., so a partial study has about
equal samples per space.

**Budget** (`StudyBudget`; a cheap proxy for full training, which the
paper's second assumption allows and `rank_agreement` tests): by default one
epoch on all 60,000 training images at their native 28 x 28, in minibatches
of 128, trained with the framework's Trainer and the default `Recipe` (SGD
with Nesterov momentum 0.9, weight decay 5e-5, the learning rate decaying
from 0.1 to 0 along a cosine), then the error on all 10,000 test images. The
design spaces of `design` are sized for 28 px: three stages leave 2 x 2 maps.
With the same framework and number of threads a model gives the same numbers
on every run.

**Results** are JSON Lines, one record per finished model, appended and
flushed to disk (fsync) one whole line at a time by the main process. A run
first drops an incomplete last line left by a crash, then skips every
(space, index) already in the file: an interrupted study resumes without
losing or repeating a finished model. Records of another seed, cost, budget
or framework in the same file are an error.

**Workers.** Local worker processes (``--workers``, each limited to
``--threads`` threads before its framework loads, see `core.limit_threads`),
or with ``--cluster ADDRESS`` the workers of an existing Dask distributed
cluster (``pip install d2lsupport[cluster]``); every worker needs
d2lsupport, the framework and the Fashion-MNIST files (see `d2lsupport.data`).
"""
import argparse
import dataclasses
import functools
import json
import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import design
from .core import FRAMEWORKS, framework_module, limit_threads, source_commit
from .data import DataError
from .trainer import RESULTS_DIR

FRAMEWORK = 'pytorch'
CONNECT_TIMEOUT = '10s'   # to reach a Dask scheduler
COMPARISONS = (('A', 'B'), ('B', 'C'), ('C', 'D'), ('D', 'E'), ('E', 'RegNetX'))
# The studies shipped with the chapter: the first one, over whole spaces; the one at
# equal cost; and its first networks retrained with a four times longer budget.
RESULTS_FILE = os.path.join(RESULTS_DIR, 'study.jsonl')
COST_FILE = os.path.join(RESULTS_DIR, 'study-cost.jsonl')
LONG_FILE = os.path.join(RESULTS_DIR, 'study-long.jsonl')


class StudyError(RuntimeError):
    """A problem with the study's input that the user can fix."""


@dataclasses.dataclass(frozen=True)
class StudyBudget:
    """How each sampled model is trained and evaluated (see the module doc).

    `train_size` and `val_size` keep the first images of the training and
    test sets (all by default; fewer for quick tests).
    """
    epochs: int = 1
    image_size: int = 28
    train_size: int = 60_000
    val_size: int = 10_000
    batch_size: int = 128
    lr: float = 0.1

    def __post_init__(self):
        for name in ('epochs', 'image_size', 'train_size', 'val_size', 'batch_size'):
            if getattr(self, name) < 1:
                raise StudyError(f'{name} must be positive')
        if self.train_size > 60_000 or self.val_size > 10_000:
            raise StudyError('Fashion-MNIST has 60,000 training and 10,000 test images')
        if self.lr <= 0:
            raise StudyError('the learning rate must be positive')


@dataclasses.dataclass(frozen=True)
class Cost:
    """Sample only networks within `tolerance` (a fraction) of `mflops` million
    flops (multiply-adds on one 28 x 28 image)."""
    mflops: float
    tolerance: float = 0.1

    def __post_init__(self):
        if not self.mflops > 0 or not 0 < self.tolerance < 1:
            raise StudyError('the cost must be positive and its tolerance between 0 and 1')


# --------------------------------------------------------------------- tasks

def model_seeds(seed, space, index):
    """(configuration seed, training seed) of model `index` of `space`."""
    sequence = np.random.SeedSequence((seed, design.SPACES.index(space), index))
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
    spaces = list(dict.fromkeys(spaces))
    for space in spaces:
        if space not in design.SPACES:
            raise StudyError(f'unknown design space {space!r}; choose from '
                             f'{", ".join(design.SPACES)}')
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
    trainer = d2l.Trainer(budget.epochs, quiet=True, recipe=d2l.Recipe(),
                          seed=task['train_seed'] % 2 ** 31)
    start = time.perf_counter()
    trainer.fit(d2l.anynet(task['config'], lr=budget.lr), data)
    return {'space': task['space'], 'index': task['index'], 'seed': task['seed'],
            'config': task['config'].to_json(), 'cost': task['cost'], 'draws': task['draws'],
            'complexity': design.complexity(task['config'], image_size=budget.image_size),
            'error': 1 - trainer.val_acc,
            'train_loss': trainer.train_loss if math.isfinite(trainer.train_loss) else None,
            'seconds': round(time.perf_counter() - start, 2), 'framework': framework,
            'budget': dataclasses.asdict(budget), 'threads': threads}


# ------------------------------------------------------------- results file

def read_results(path):
    """The records of a JSON Lines results file ([] if there is none); an
    incomplete last line (no newline yet) is not a record."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    records = []
    for number, line in enumerate(data[:data.rfind(b'\n') + 1].splitlines(), 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise StudyError(f'{path}, line {number}: not a JSON record; delete '
                             'that line to go on') from None
    return records


def drop_incomplete_line(path):
    """Cut an incomplete last line, left by a crash while writing, off the file."""
    try:
        with open(path, 'r+b') as f:
            data = f.read()
            if data and not data.endswith(b'\n'):
                f.truncate(data.rfind(b'\n') + 1)
                os.fsync(f.fileno())
    except FileNotFoundError:
        pass


def append_record(path, record):
    """Append one JSON line and force it to disk before returning."""
    line = memoryview((json.dumps(record) + '\n').encode())
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        while line:
            line = line[os.write(fd, line):]
        os.fsync(fd)
    finally:
        os.close(fd)


def settings(seed, budget, framework=FRAMEWORK, cost=None):
    """What every record of one study shares: seed, framework, cost and budget."""
    return {'seed': seed, 'framework': framework,
            'cost': None if cost is None else dataclasses.asdict(cost),
            **dataclasses.asdict(budget)}


def finished_models(records, seed, budget, framework=FRAMEWORK, cost=None):
    """The (space, index) pairs in `records`, which must come from this study."""
    expected = settings(seed, budget, framework, cost)
    for record in records:
        found = {'seed': record.get('seed'), 'framework': record.get('framework'),
                 'cost': record.get('cost'), **record.get('budget', {})}
        if found != expected:
            changes = ', '.join(f'{key} {found.get(key)} (now {expected.get(key)})'
                                for key in {**found, **expected}
                                if found.get(key) != expected.get(key))
            raise StudyError(f'the results file holds a study with other settings: '
                             f'{changes}; choose another --out or the same settings')
    return {(record['space'], record['index']) for record in records}


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
                         f'({" ".join(str(e).split()) or type(e).__name__})') from None


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
    if framework not in FRAMEWORKS:
        raise StudyError(f'unknown framework {framework!r}; choose from {", ".join(FRAMEWORKS)}')
    tasks = plan(seed, spaces, n, cost)
    drop_incomplete_line(out)
    done = finished_models(read_results(out), seed, budget, framework, cost)
    remaining = [t for t in tasks if (t['space'], t['index']) not in done]
    todo = remaining[:limit]
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
                                f'{record["error"]:.3f} in {record["seconds"]:.0f} s')
            bar.update()
    return len(todo)


def cpu_count():
    """The CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()


# --------------------------------------------------------------------- plots

def errors_by_space(records):
    """{space: [errors]} in the order of design.SPACES."""
    errors = {}
    for record in records:
        errors.setdefault(record['space'], []).append(record['error'])
    return {space: errors[space] for space in design.SPACES if space in errors}


def plot_comparisons(records, pairs=COMPARISONS):
    """A figure with one panel of error EDFs per pair of spaces that `records` holds."""
    import matplotlib.pyplot as plt
    errors = errors_by_space(records)
    pairs = [(a, b) for a, b in pairs if a in errors and b in errors]
    if not pairs:
        raise StudyError(f'no pair of compared spaces in the results; need one of '
                         f'{", ".join(a + "/" + b for a, b in COMPARISONS)}')
    fig, axes = plt.subplots(1, len(pairs), figsize=(3.2 * len(pairs), 3),
                             sharex=True, sharey=True, squeeze=False)
    for ax, (a, b) in zip(axes[0], pairs):
        design.plot_edfs({a: errors[a], b: errors[b]}, ax=ax)
        if ax is not axes[0, 0]:
            ax.set_ylabel('')
    fig.tight_layout()
    plt.close(fig)
    return fig


def summary(records):
    """One line per design space: sample size, best, median and mean error, the
    median training time of a network and, for a study at equal cost, how many
    networks of the space were drawn per accepted one (mean)."""
    at_cost = any(r.get('cost') for r in records)
    lines = [f'{"space":<10}{"n":>4}{"best":>8}{"median":>8}{"mean":>8}{"s/model":>9}'
             + (f'{"draws":>7}' if at_cost else '')]
    for space, errors in errors_by_space(records).items():
        s = design.edf_summary(errors)
        mine = [r for r in records if r['space'] == space]
        line = (f'{space:<10}{s["n"]:>4}{s["min"]:>8.3f}{s["median"]:>8.3f}{s["mean"]:>8.3f}'
                f'{np.median([r["seconds"] for r in mine]):>9.1f}')
        if at_cost:
            line += f'{np.mean([r["draws"] for r in mine]):>7.1f}'
        lines.append(line)
    return '\n'.join(lines)


def median_shift(before, after, rng, draws=4000):
    """Median of `after` minus median of `before`, with a 95% bootstrap interval."""
    before, after = np.asarray(before), np.asarray(after)
    shifts = [np.median(rng.choice(after, after.size)) - np.median(rng.choice(before, before.size))
              for _ in range(draws)]
    return np.median(after) - np.median(before), np.percentile(shifts, [2.5, 97.5])


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


def cost_residuals(records):
    """Errors minus a straight-line fit of error against log FLOPs over all
    `records`; returns (residuals, correlation of error with log FLOPs)."""
    log_flops = np.log([r['complexity']['flops'] for r in records])
    errors = np.array([r['error'] for r in records])
    slope, intercept = np.polyfit(log_flops, errors, 1)
    return errors - (intercept + slope * log_flops), np.corrcoef(log_flops, errors)[0, 1]


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


def errors_by_bottleneck(records, spaces=('B', 'C', 'D', 'E')):
    """{bottleneck ratio b: errors} of the networks of `spaces`, which share one b
    across their stages (our RegNetX fixes b = 1; B to E sample it from {1, 2, 4})."""
    errors = {}
    for r in records:
        if r['space'] in spaces:
            errors.setdefault(r['config']['stages'][0][3], []).append(r['error'])
    return dict(sorted(errors.items()))


def comparisons(records, pairs=COMPARISONS, seed=0):
    """Per pair of spaces, the change in median error (bootstrap interval), and
    per space the median cost and the median error after correcting for cost."""
    errors, rng = errors_by_space(records), np.random.default_rng(seed)
    lines = ['change of the median error, in points (95% bootstrap interval):']
    for a, b in [(a, b) for a, b in pairs if a in errors and b in errors]:
        shift, (low, high) = median_shift(errors[a], errors[b], rng)
        lines.append(f'  {a:>7} -> {b:<8}{100 * shift:+6.2f}  [{100 * low:+.2f}, {100 * high:+.2f}]')
    residuals, correlation = cost_residuals(records)
    flops = [r['complexity']['flops'] / 1e6 for r in records]
    lines.append(f'MFLOPs of the networks: {min(flops):.2f} to {max(flops):.2f}; '
                 f'correlation of error with log FLOPs: {correlation:.2f}')
    lines.append(f'{"space":<10}{"MFLOPs":>8}{"cost-corrected median error (points)":>38}')
    spaces = np.array([r['space'] for r in records])
    for space in errors:
        flops = np.median([r['complexity']['flops'] for r in records if r['space'] == space])
        lines.append(f'{space:<10}{flops / 1e6:>8.2f}{100 * np.median(residuals[spaces == space]):>+38.2f}')
    by_b = errors_by_bottleneck(records)
    if by_b:
        lines.append('median error of B to E by bottleneck ratio: ' + ', '.join(
            f'b = {b:g}: {100 * np.median(e):.1f}% (n={len(e)})' for b, e in by_b.items()))
    return '\n'.join(lines)


# ---------------------------------------------------------------------- CLI

def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'{text} is not a positive integer')
    return value


def build_parser():
    parser = design.Parser(
        prog='python -m d2lsupport.study',
        description='Sample, train and compare networks of AnyNet design spaces.')
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('run', help='train the sampled models (resumes a study)')
    p.add_argument('--out', required=True, help='results file (JSON Lines)')
    p.add_argument('--spaces', nargs='+', default=list(design.SPACES), metavar='SPACE',
                   help=f'design spaces among {", ".join(design.SPACES)} (default: all)')
    p.add_argument('-n', type=positive_int, default=32, help='models per space')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--limit', type=positive_int, help='train at most this many models now')
    p.add_argument('--workers', type=positive_int, help='local worker processes '
                   '(default: CPUs / threads)')
    p.add_argument('--threads', type=positive_int, default=1, help='threads per model')
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
        kind = float if field.name == 'lr' else positive_int
        p.add_argument('--' + field.name.replace('_', '-'), type=kind,
                       default=getattr(defaults, field.name))
    p = sub.add_parser('plot', help='draw the EDF comparisons of a results file')
    p.add_argument('results', help='results file (JSON Lines)')
    p.add_argument('--out', required=True, help='figure file (.svg, .png, .pdf)')
    return parser


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
            records = read_results(args.results)
            plot_comparisons(records).savefig(args.out)
            print(summary(records))
            print(f'figure: {args.out}')
    except (StudyError, DataError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    # Run the importable module, not this __main__ copy, so that worker
    # processes and Dask find `run_task` under its module name.
    from d2lsupport.study import main as study_main
    sys.exit(study_main())
