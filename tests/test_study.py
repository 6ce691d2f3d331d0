"""The design-space study: tasks, results file, resume, local and Dask workers, plots.

Training runs in a tiny budget (two batches of 32 images per model) with the
Trainer of this environment's framework; the Dask tests need PyTorch.
"""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from d2lsupport import design, study
from d2lsupport.core import THREAD_ENV, source_commit
from d2lsupport.design import AnyNetConfig, RegNetParams
from d2lsupport.records import RecordError
from d2lsupport.study import StudyBudget, StudyError

TINY = StudyBudget(epochs=1, train_size=64, val_size=64, batch_size=32)


def tiny_flags(train_size=64):
    return ['--epochs', '1', '--train-size', str(train_size), '--val-size', '64',
            '--batch-size', '32']


@pytest.fixture
def trained(framework, mirror, monkeypatch):
    """This environment's framework, with the data files taken from the mirror
    (in workers too) and the thread settings of the workers undone afterwards."""
    monkeypatch.setenv('FASHION_MNIST_MIRROR', mirror)
    saved = {name: os.environ.get(name) for name in (*THREAD_ENV, 'XLA_FLAGS')}
    yield framework
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def torch(trained):
    """PyTorch: the study's bookkeeping (several workers, resuming, Dask) is
    framework-free, so it is tested once, in the PyTorch environment; a JAX
    worker needs about a minute to compile even a tiny network on one thread."""
    return pytest.importorskip('torch')


def keys(records):
    return sorted((r['space'], r['index']) for r in records)


def check_records(records, seed, budget, framework='pytorch', cost=None):
    """Each record is the planned model, trained with `budget`."""
    for r in records:
        task = study.make_task(seed, r['space'], r['index'], cost)
        assert r['config'] == json.loads(json.dumps(task['config'].to_json()))
        assert r['draws'] == task['draws'] and r['cost'] == task['cost']
        assert r['complexity'] == design.complexity(task['config'], image_size=28)
        assert 0 <= r['error'] <= 1 and r['seconds'] > 0 and r['framework'] == framework
        assert r['seed'] == seed and r['budget'] == json.loads(json.dumps(dataclasses.asdict(budget)))
        assert r['commit'] == source_commit()


# ------------------------------------------------------------ without PyTorch

def test_tasks_depend_only_on_seed_space_and_index():
    tasks = study.plan(3, ['A', 'E'], 4)
    assert tasks == study.plan(3, ['A', 'E'], 4)
    assert [(t['space'], t['index']) for t in tasks[:4]] == [
        ('A', 0), ('E', 0), ('A', 1), ('E', 1)]
    assert study.make_task(3, 'E', 2) in tasks
    assert study.make_task(3, 'E', 2) in study.plan(3, ['RegNetX', 'E'], 3)
    assert study.make_task(3, 'E', 2) != study.make_task(4, 'E', 2)
    assert len({json.dumps(t['config'].to_json()) for t in tasks}) == len(tasks)


def test_seeds_follow_the_fixed_identifiers_of_the_spaces():
    for space in design.DESIGN_SPACES:
        expected = np.random.SeedSequence((3, space.identifier, 7)).generate_state(2)
        assert study.model_seeds(3, space.name, 7) == tuple(int(s) for s in expected)
    assert study.COMPARISONS == (('A', 'B'), ('B', 'C'), ('C', 'D'), ('D', 'E'),
                                 ('E', 'RegNetX'))


def first_study_regnetx(seed, index):
    """The RegNetX network of the first study (results/study.jsonl). RegNetX fixed
    b = 1 then: it drew the rule's parameters as now, but no b after them."""
    rng = np.random.default_rng(study.model_seeds(seed, 'RegNetX', index)[0])
    while True:
        depth = int(rng.integers(design.REGNET_DEPTHS[0], design.REGNET_DEPTHS[1] + 1))
        w0 = design.log_uniform(rng, *design.REGNET_W0, design.WIDTH_STEP)
        wa = round(design.log_uniform(rng, *design.REGNET_WA, 0.1), 1)
        wm = round(design.log_uniform(rng, *design.REGNET_WM, 0.001), 3)
        params = RegNetParams(w0, wa, wm, depth, design.choice(rng, design.GROUP_WIDTHS))
        if design.regnet_stages(params) is not None:
            return params.config()


@pytest.mark.parametrize('path', [study.RESULTS_FILE, study.COST_FILE, study.LONG_FILE])
def test_the_committed_studies_draw_the_same_networks_today(path):
    """Each record's seed, space, index and cost still draw its network (and as many
    draws): the studies under results/ belong to the code that reads them."""
    found = study.read_results(path)
    assert found
    for r in found:
        first_study = r['space'] == 'RegNetX' and 'bottleneck' not in r['config']['regnet']
        assert path == study.RESULTS_FILE or not first_study
        if first_study:
            config, draws = first_study_regnetx(r['seed'], r['index']), 1
            expected = {**r['config'], 'regnet': {**r['config']['regnet'], 'bottleneck': 1}}
        else:
            cost = study.Cost(**r['cost']) if r.get('cost') else None
            task = study.make_task(r['seed'], r['space'], r['index'], cost)
            config, draws, expected = task['config'], task['draws'], r['config']
        assert (config.to_json(), draws) == (expected, r.get('draws', 1)), r
        assert design.complexity(config, image_size=r['budget']['image_size']) == r['complexity']


def test_a_study_whose_networks_are_drawn_differently_is_not_resumed(tmp_path):
    out = tmp_path / 'r.jsonl'
    task = study.make_task(0, 'A', 0)
    other = AnyNetConfig(16, [(1, 8, 1, 1)] * 3).to_json()
    assert task['config'].to_json() != other
    record = {'space': 'A', 'index': 0, 'seed': 0, 'framework': 'pytorch', 'cost': None,
              'budget': dataclasses.asdict(TINY), 'config': other, 'error': 0.5}
    study.append_record(out, record)
    before = out.read_bytes()
    with pytest.raises(StudyError, match="model A #0 with a network that its seed no "
                                         "longer draws .*; choose another --out"):
        study.run_study(out, ['A'], 1, seed=0, budget=TINY, workers=1)
    assert out.read_bytes() == before


@pytest.mark.parametrize('change, message', [
    (dict(train_size=70_000), 'Fashion-MNIST has 60,000 training'),
    (dict(epochs=0), 'epochs must be a positive integer, got 0'),
    (dict(batch_size=12.5), 'batch_size must be a positive integer, got 12.5'),
    (dict(lr=0.0), 'lr must be a finite number > 0'),
    (dict(lr=float('nan')), 'lr must be a finite number > 0')])
def test_bad_budget_is_an_error(change, message):
    with pytest.raises(StudyError, match=f'^StudyBudget: {message}'):
        StudyBudget(**change)


def run_main(args, capsys):
    """study.main's exit code and what it wrote to stderr."""
    try:
        code = study.main(args)
    except SystemExit as exit:   # the parser's errors
        code = exit.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize('args, code, message', [
    (['-n', '0'], 2, "argument -n: '0' is not a positive integer"),
    (['-n', 'many'], 2, "argument -n: 'many' is not a positive integer"),
    (['--seed', '-1'], 2, "argument --seed: '-1' is not an integer >= 0"),
    (['--workers', '0'], 2, "argument --workers: '0' is not a positive integer"),
    (['--framework', 'torch'], 2, "argument --framework: invalid choice: 'torch'"),
    (['--spaces', 'A', 'F'], 1, "unknown design space 'F'; choose from A, B, C, D, E, RegNetX"),
    (['--mflops', 'half'], 2, "argument --mflops: invalid float value: 'half'"),
    (['--mflops', '0'], 1, 'Cost: mflops must be a finite number > 0, got 0.0'),
    (['--mflops', 'inf'], 1, 'Cost: mflops must be a finite number > 0, got inf'),
    (['--mflops', '0.5', '--tolerance', '1'], 1, 'Cost: tolerance must be a fraction'),
    (['--mflops', '500', '--spaces', 'A'], 1, 'AnyNetX_A: no network within 10% of 500 MFLOPs'),
    (['--lr', 'nan'], 1, 'StudyBudget: lr must be a finite number > 0, got nan'),
    (['--train-size', '60001'], 1, 'StudyBudget: Fashion-MNIST has 60,000 training'),
    (['--out', '{tmp}/missing/r.jsonl'], 1, 'the folder {tmp}/missing does not exist'),
    (['--out', '{tmp}'], 1, '--out {tmp} is a folder; name a file in it')])
def test_bad_run_settings_are_a_one_line_error_and_run_nothing(tmp_path, capsys, args, code,
                                                               message):
    out = tmp_path / 'r.jsonl'
    args = [a.format(tmp=tmp_path) for a in ['run', '--out', str(out), *args]]
    found, err = run_main(args, capsys)
    assert found == code and message.format(tmp=tmp_path) in err
    assert err.count('\n') == 1 and not out.exists()


def test_a_framework_missing_here_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(study.MODULES, 'jax', 'no_such_framework_module')
    code, err = run_main(['run', '--out', str(tmp_path / 'r.jsonl'), '--framework', 'jax'],
                         capsys)
    assert code == 1 and err == ('error: jax is not installed here; run the study with the '
                                 'Python of its environment (.venv/jax/bin/python)\n')


@pytest.mark.parametrize('content, out, message', [
    (None, 'edf.svg', 'no results file {tmp}/r.jsonl; train a study into it'),
    ('{"space": "A"\n', 'edf.svg', '{tmp}/r.jsonl, line 1: not a JSON record; delete that'),
    ('{"a": 1}\n', 'edf.svg', 'line 1: not a record of a design-space study'),
    ('{"space": "F", "index": 0, "error": 0.1}\n', 'edf.svg', 'not a record of a design'),
    ('', 'missing/edf.svg', 'the folder {tmp}/missing does not exist'),
    ('', 'edf.xyz', 'edf.xyz: name a figure file ending in one of'),
    ('', 'edf.svg', 'no pair of compared spaces in the results')])
def test_bad_plot_input_is_a_one_line_error(tmp_path, capsys, content, out, message):
    results = tmp_path / 'r.jsonl'
    if content is not None:
        results.write_text(content)
    code, err = run_main(['plot', str(results), '--out', str(tmp_path / out)], capsys)
    assert code == 1 and message.format(tmp=tmp_path) in err and err.count('\n') == 1
    assert not (tmp_path / out).exists()


def test_an_equal_cost_study_plans_networks_of_that_cost():
    cost = study.Cost(0.5, 0.1)
    tasks = study.plan(0, design.SPACES, 3, cost)
    for task in tasks:
        assert abs(design.complexity(task['config'])['flops'] / 0.5e6 - 1) <= 0.1
        assert task['draws'] >= 1 and task['cost'] == {'mflops': 0.5, 'tolerance': 0.1}
    assert study.make_task(0, 'A', 0)['draws'] == 1                 # the whole space
    assert [t['train_seed'] for t in tasks] == [t['train_seed'] for t in study.plan(0, design.SPACES, 3)]


def test_a_broken_complete_line_is_an_error(tmp_path):
    path = tmp_path / 'r.jsonl'
    path.write_text('{"a": 1}\nnot json\n{"a": 2}\n')
    with pytest.raises(RecordError, match='line 2'):
        study.read_results(path)


def test_a_loss_that_is_not_finite_is_strict_json_in_the_record(tmp_path):
    path = tmp_path / 'r.jsonl'
    record = {'space': 'A', 'index': 0, 'error': 0.9, 'train_loss': float('nan'),
              'seconds': 1.0}
    study.append_record(path, record)
    assert '"train_loss": "NaN"' in path.read_text()
    assert study.read_results(path) == [{**record, 'train_loss': 'NaN'}]


def fake_records(errors_by_space):
    return [{'space': space, 'index': i, 'error': e, 'seconds': 1.0}
            for space, errors in errors_by_space.items() for i, e in enumerate(errors)]


def synthetic_records(errors_by_space, flops=None, params=None):
    """Study records with the given errors (and FLOPs and parameters, default
    1e6 and 1e4 for all); bottleneck ratios alternate between 1 and 2."""
    records = []
    for space, errors in errors_by_space.items():
        for i, error in enumerate(errors):
            b = 1 + i % 2
            records.append({'space': space, 'index': i, 'error': error, 'seconds': 1.0,
                            'config': {'stem_width': 16, 'stages': [(1, 16, 1, b)] * 3},
                            'complexity': {'flops': (flops or {}).get((space, i), 1e6),
                                           'params': (params or {}).get((space, i), 1e4)}})
    return records


def test_median_shift_is_the_difference_of_medians_with_an_interval_around_it():
    rng = np.random.default_rng(0)
    before = rng.normal(0.15, 0.01, 200)
    shift, (low, high) = study.median_shift(before, before + 0.02, np.random.default_rng(1))
    assert shift == pytest.approx(0.02)
    assert low < 0.02 < high and high - low < 0.01     # 200 samples: a narrow interval
    same, (low, high) = study.median_shift(before, before, np.random.default_rng(1))
    assert same == 0 and low < 0 < high


def test_the_expected_interval_shrinks_as_one_over_the_root_of_the_sample_size():
    errors = np.random.default_rng(3).normal(0.14, 0.01, 500)
    small, large = (study.expected_half_width(errors, n) for n in (25, 100))
    assert large == pytest.approx(small / 2, rel=0.25)
    # a normal sample's median has a standard error of about 1.25 sigma / sqrt(n)
    assert small == pytest.approx(1.96 * np.sqrt(2) * 1.25 * 0.01 / 5, rel=0.25)


def test_log_residuals_remove_a_trend_with_log_size():
    flops = {('A', i): 10 ** (5 + i / 10) for i in range(20)}
    errors = [0.3 - 0.01 * np.log(flops[('A', i)]) for i in range(20)]
    residuals, correlation = study.log_residuals(synthetic_records({'A': errors}, flops))
    assert correlation == pytest.approx(-1)
    assert np.abs(residuals).max() < 1e-12
    residuals, correlation = study.log_residuals(
        synthetic_records({'A': errors}, params=flops), 'params')
    assert correlation == pytest.approx(-1) and np.abs(residuals).max() < 1e-12


def test_edf_test_finds_a_shift_of_the_whole_distribution_and_not_a_shuffle():
    rng = np.random.default_rng(0)
    x = rng.normal(0.14, 0.01, 60)
    assert study.edf_distance(x, x) == 0
    assert study.edf_distance([0.1, 0.2], [0.3, 0.4]) == 1
    gap, p = study.edf_test(x, x + 0.01, np.random.default_rng(1), draws=500)
    assert gap > 0.3 and p < 0.01
    gap, p = study.edf_test(x[:30], x[30:], np.random.default_rng(1), draws=500)
    assert p > 0.05


def test_steps_have_wider_joint_intervals_and_size_corrections():
    rng = np.random.default_rng(0)
    errors = {'A': rng.normal(0.15, 0.005, 40), 'B': rng.normal(0.13, 0.005, 40),
              'C': rng.normal(0.15, 0.005, 40)}
    # B's networks are bigger (e times the parameters), which explains its lower error
    params = {('B', i): 1e4 * np.e for i in range(40)}
    records = synthetic_records(errors, params=params)
    steps = study.compare_steps(records)
    assert [(s.before, s.after) for s in steps] == [('A', 'B'), ('B', 'C')]
    ab = steps[0]
    assert ab.shift == pytest.approx(100 * (np.median(errors['B']) - np.median(errors['A'])))
    assert ab.joint_interval[0] < ab.interval[0] < ab.shift < ab.interval[1] < ab.joint_interval[1]
    assert ab.edf_p < 0.01 and ab.shift < -1.5
    assert abs(ab.size_corrected[0]) < 0.5
    # half of each space has b = 1 (fewer than MIN_SUBSET would give None)
    assert ab.without_bottleneck[:2] == (20, 20)
    assert study.compare_steps(synthetic_records({k: v[:18] for k, v in errors.items()}))[
        0].without_bottleneck is None
    # a step is the same whatever other pairs are compared
    assert study.compare_steps(records, pairs=[('A', 'B')])[0].interval == ab.interval


def test_comparisons_print_each_step_and_the_bottleneck_effect():
    records = synthetic_records({'A': [0.20, 0.22, 0.24, 0.26], 'B': [0.10, 0.12, 0.14, 0.16]})
    lines = study.comparisons(records, pairs=[('A', 'B'), ('B', 'C')]).splitlines()
    assert lines[2].split()[:4] == ['A', '->', 'B', '-10.00']        # 0.13 - 0.23, in points
    assert not any('-> C' in line for line in lines)                  # C has no records
    assert lines[-2].startswith('MFLOPs 1.00 to 1.00')
    assert lines[-1].startswith('median error of B to E by bottleneck ratio: '
                                'b = 1: 12.0% (2), b = 2: 14.0% (2); b = 2 against b = 1: +2.00')


def test_summary_gives_cost_size_and_bottleneck_per_space():
    flops = {('A', i): 1e6 * (i + 1) for i in range(4)}
    records = synthetic_records({'A': [0.20, 0.22, 0.24, 0.26]}, flops)
    lines = study.summary(records).splitlines()
    residuals = study.log_residuals(records)[0]
    assert lines[1].split()[:8] == ['A', '4', '2.50', '10.0', '2', '20.0', '23.00',
                                    f'{100 * np.median(residuals):+.2f}']


def test_spearman_ranks_ties_together():
    assert list(study.average_ranks([0.3, 0.1, 0.3, 0.2])) == [2.5, 0, 2.5, 1]
    assert study.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1)
    assert study.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1)
    assert study.spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)


def test_rank_agreement_matches_networks_by_space_and_index():
    short = synthetic_records({'A': [0.20, 0.21, 0.22, 0.23], 'B': [0.10, 0.30]})
    # the long budget halves every error but swaps B's two networks
    long = synthetic_records({'A': [0.10, 0.105, 0.11, 0.115], 'B': [0.16, 0.05]})
    n, rho, (low, high) = study.rank_agreement(short, long[:5])    # B 1 has no long run
    assert n == 5 and rho == pytest.approx(study.spearman(
        [0.20, 0.21, 0.22, 0.23, 0.10], [0.10, 0.105, 0.11, 0.115, 0.16]))
    assert low <= rho <= high
    n, rho, _ = study.rank_agreement(short[:4], long[:4])
    assert (n, rho) == (4, pytest.approx(1))
    with pytest.raises(StudyError, match='share fewer than 3 networks'):
        study.rank_agreement(short[:2], long[4:])


def test_plot_draws_one_panel_per_comparison_and_a_legend(tmp_path, capsys):
    records = synthetic_records({'A': [0.2, 0.3], 'B': [0.1, 0.25, 0.3], 'C': [0.15]})
    axes = study.plot_comparisons(records).axes   # A vs B, B vs C, and the legend
    assert [len(ax.lines) for ax in axes] == [2, 2, 0]
    assert len(axes[2].get_legend().get_texts()) == 3 + 2   # three spaces, two line styles
    path = tmp_path / 'r.jsonl'
    path.write_text(''.join(json.dumps(r) + '\n' for r in records))
    assert study.main(['plot', str(path), '--out', str(tmp_path / 'edf.svg')]) == 0
    assert (tmp_path / 'edf.svg').read_text().lstrip().startswith('<?xml')
    out = capsys.readouterr().out.splitlines()
    assert out[2].split()[:2] == ['B', '3'] and out[2].split()[6] == '25.00'
    with pytest.raises(StudyError, match='no pair'):
        study.plot_comparisons(fake_records({'A': [0.2], 'C': [0.3]}))


# ------------------------------------------------- with this environment's framework

def test_a_model_trains_the_same_in_every_run(tmp_path, trained):
    """In every framework: the record depends on the task only (its seed fixes the
    initialization and the order of the minibatches), whichever worker trains it."""
    first, second = tmp_path / 'first.jsonl', tmp_path / 'second.jsonl'
    for out in (first, second):
        study.run_study(out, ['C'], 1, seed=2, budget=TINY, framework=trained, workers=1)
    (one,), (other,) = study.read_results(first), study.read_results(second)
    check_records([one, other], 2, TINY, trained)
    assert one['error'] == other['error'] and one['train_loss'] == other['train_loss']


def test_tiny_study_writes_one_record_per_model(tmp_path, torch):
    out = tmp_path / 'r.jsonl'
    assert study.run_study(out, ['A', 'RegNetX'], 2, seed=1, budget=TINY, workers=2) == 4
    records = study.read_results(out)
    assert keys(records) == [('A', 0), ('A', 1), ('RegNetX', 0), ('RegNetX', 1)]
    check_records(records, 1, TINY)


def test_resume_loses_and_repeats_no_model(tmp_path, torch):
    out, cost = tmp_path / 'r.jsonl', study.Cost(0.5)
    run = dict(seed=0, budget=TINY, cost=cost, workers=1)
    assert study.run_study(out, ['B', 'D'], 2, **run, limit=1) == 1
    first = out.read_bytes()
    with open(out, 'ab') as f:
        f.write(b'{"space": "D", "index": 0, "err')   # a crash while writing
    assert study.run_study(out, ['B', 'D'], 2, **run) == 3
    assert out.read_bytes().startswith(first)
    records = study.read_results(out)
    assert keys(records) == [('B', 0), ('B', 1), ('D', 0), ('D', 1)]
    check_records(records, 0, TINY, cost=cost)
    assert study.run_study(out, ['B', 'D'], 2, **run) == 0
    with pytest.raises(StudyError, match='seed 0 \\(now 1\\)'):
        study.run_study(out, ['B', 'D'], 2, **{**run, 'seed': 1})
    with pytest.raises(StudyError, match='cost .* \\(now None\\)'):
        study.run_study(out, ['B', 'D'], 2, **{**run, 'cost': None})


def test_killed_run_resumes(tmp_path, torch):
    out, n = tmp_path / 'r.jsonl', 8
    args = ['run', '--out', str(out), '--spaces', 'C', '-n', str(n), '--workers', '1',
            *tiny_flags(640)]   # 20 batches: slow enough to interrupt
    run = subprocess.Popen([sys.executable, '-m', 'd2lsupport.study', *args],
                           start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        while not (out.exists() and out.read_bytes().count(b'\n')) and run.poll() is None:
            time.sleep(0.02)
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    before = study.read_results(out)
    assert 1 <= len(before) < n
    assert study.main(args) == 0
    records = study.read_results(out)
    assert records[:len(before)] == before
    assert keys(records) == [('C', i) for i in range(n)]


def test_study_runs_on_a_dask_cluster(tmp_path, torch, capsys):
    distributed = pytest.importorskip('distributed')
    out = tmp_path / 'r.jsonl'
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  host='127.0.0.1', dashboard_address=None) as cluster:
        code = study.main(['run', '--out', str(out), '--spaces', 'E', 'RegNetX', '-n', '1',
                           '--cluster', cluster.scheduler_address, *tiny_flags()])
    assert code == 0, capsys.readouterr().err
    records = study.read_results(out)
    assert keys(records) == [('E', 0), ('RegNetX', 0)]
    check_records(records, 0, TINY)


def test_unreachable_cluster_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    pytest.importorskip('distributed')
    monkeypatch.setattr(study, 'CONNECT_TIMEOUT', '1s')
    args = ['run', '--out', str(tmp_path / 'r.jsonl'), '--spaces', 'A', '-n', '1']
    assert study.main([*args, '--cluster', 'tcp://127.0.0.1:9']) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'")
    assert err.count('\n') == 1
