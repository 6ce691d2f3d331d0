"""The benchmark's bookkeeping: mixing rates, merging files, the report table.

Timings themselves are never asserted: `make bench` reports them.
"""
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from tools import bench, bench_book, real_book


def run_bench(*args, check=False):
    """`python -m tools.bench ARGS` from the repository root, as `make bench` runs it."""
    return subprocess.run([sys.executable, '-m', 'tools.bench', *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, check=check)


def test_mixed_rate_weights_the_two_phases_by_their_images(monkeypatch):
    # 24 training batches at 100 images/s take 30.72 s, 4 validation batches at
    # 400 images/s 1.28 s: 28 * 128 images in 32 s. (The mean of the two rates
    # would be 250; the mean weighted by batches 142.9.)
    for name, value in (('TRAIN_BATCHES', 24), ('VAL_BATCHES', 4), ('BATCH', 128)):
        monkeypatch.setattr(bench, name, value)
    assert bench.mixed_rate(100.0, 400.0) == pytest.approx(112.0, abs=0.05)
    assert bench.mixed_rate(200.0, 200.0) == 200.0


def test_median_time_is_the_median_of_the_timed_calls_after_the_warmup():
    # A clock read before and after each timed call: they take 10, 3 and 1 s on it.
    # Their median, 3, is none of the first, the last, the mean or the extremes;
    # were the warm-up calls timed too, the readings would pair up differently
    # and run out.
    readings = iter([0.0, 10.0, 10.0, 13.0, 20.0, 21.0])
    calls = []
    median = bench.median_time(lambda: calls.append(1), reps=3, warmup=2,
                               clock=lambda: next(readings))
    assert median == 3.0 and len(calls) == 5
    assert next(readings, None) is None     # every reading used: two per timed call


def fake_framework(trainer):
    return {'bare_eager': 10.0, 'bare_fast': 40.0, 'bare_fast_eval': 120.0, 'data': 5000.0,
            'trainer': trainer, 'overhead': 0.05, 'variants': {'XLA': 20.0},
            'peak_rss_mb': 900.0}


def test_report_merges_and_prints_the_ratios(tmp_path):
    book = {'train_batches': 24, 'val_batches': 4, 'params': 179290, 'precision': 'float32',
            'ours_s': [10.0, 12.0, 11.0],
            'book_s': [20.0, 18.0, 33.0], 'ours': 325.8, 'book': 179.2, 'speedup': 2.0}
    paths = []
    for name, record in {'pytorch': {'pytorch': fake_framework(60.0)},
                         'jax': {'jax': fake_framework(30.0)},
                         'jax-book': {'jax': {'book': book}}}.items():
        paths.append(tmp_path / f'{name}.json')
        paths[-1].write_text(json.dumps(record))
    out = tmp_path / 'bench.json'
    result = run_bench('report', *paths, '--out', out, check=True)
    merged = json.loads(out.read_text())
    assert set(merged) == {'pytorch', 'jax', 'machine'}
    assert merged['jax']['book'] == book and merged['jax']['trainer'] == 30.0
    speed, against = result.stdout.split('\n\n| framework | epoch')[:2]
    rows = {line.split('|')[1].strip(): line for line in speed.splitlines()
            if line.startswith('| ')}
    assert '| 60.0 | 1.00x |' in rows['pytorch'] and '| 30.0 | 0.50x |' in rows['jax']
    assert 'jax XLA: 20.0' in speed
    # the pairs' ratios are 2.00, 1.50 and 3.00: their median, not a ratio of sums
    assert '| jax | 24 + 4 | 3 | 325.8 | float32 | 179.2 | 2.00x | 2.00, 1.50, 3.00 |' in against


def test_median_ratio_pairs_each_run_with_its_neighbour():
    assert bench_book.median_ratio([1.0, 2.0, 4.0], [3.0, 2.0, 2.0]) == 1.0   # 3, 1, 0.5
    assert bench_book.median_ratio([1.0, 1.0], [2.0, 4.0]) == 3.0


def test_report_names_a_missing_file(tmp_path):
    result = run_bench('report', tmp_path / 'nope.json', '--out', tmp_path / 'b.json')
    assert result.returncode == 2 and 'run `make bench` first' in result.stderr


@pytest.fixture(scope='module')
def checked(framework, mirror, tmp_path_factory):
    """Every measurement of tools/bench.py at tiny sizes, in one process of this
    framework (`python -m tools.bench check`): what `make bench`, `make drift`,
    `make bn-check` and `make memory` run, each part checked by a test below."""
    out = tmp_path_factory.mktemp('bench') / 'check.json'
    run_bench('check', '--framework', framework, '--out', out, check=True)
    return json.loads(out.read_text())[framework]


def test_quick_benchmark_runs_in_this_framework(framework, checked):
    result = checked['measure']
    for key in ('bare_eager', 'bare_fast', 'bare_fast_eval', 'data', 'resize', 'trainer',
                'peak_rss_mb'):
        assert result[key] > 0, key
    expected = {'pytorch': {'torch.compile'}, 'tensorflow': {'XLA'}}
    assert set(result['variants']) == expected.get(framework, set())


def test_quick_benchmark_alternates_the_precisions_where_the_trainer_has_both(d2l, checked):
    precision = checked['measure'].get('precision')
    assert (precision is not None) == d2l.Trainer.bfloat16
    if precision:
        for key in ('bare_float32', 'bare_bfloat16', 'speedup', 'trainer_float32',
                    'trainer_bfloat16'):
            assert precision[key] > 0, key


def test_quick_comparison_with_the_book_runs_in_this_framework(checked):
    """The book's way of training this framework's tab runs, alternated with ours,
    on the same network (`against_book` stops when the parameter counts differ)."""
    book = checked['book']
    assert book['params'] == 179290 and len(book['ours_s']) == len(book['book_s']) == 1
    assert book['ours'] > 0 and book['book'] > 0
    assert book['precision'] in ('float32', 'bfloat16')   # as resolved from 'auto'
    assert book['speedup'] == pytest.approx(book['book_s'][0] / book['ours_s'][0], rel=1e-3)


def test_quick_long_run_check_runs_in_this_framework(checked):
    drift = checked['drift']
    assert drift['epochs'] == 4 and len(drift['epoch_s']) == len(drift['rss_mb']) == 4
    assert all(t > 0 for t in drift['epoch_s']) and min(drift['rss_mb']) > 0
    # (other measurements ran before in the same process, so memory may also shrink)
    assert drift['rss_growth'] == pytest.approx(drift['rss_mb'][-1] / drift['rss_mb'][1] - 1,
                                                abs=1e-3)
    assert isinstance(drift['time_ok'], bool) and isinstance(drift['memory_ok'], bool)


def test_quick_batch_norm_check_runs_in_this_framework(checked):
    bn = checked['bn']
    assert bn['steps'] == 1 and bn['val_images'] == bench.BATCH
    for stats in ('running_stats', 'batch_stats'):
        assert 0 <= bn[stats]['acc'] <= 1 and bn[stats]['loss'] > 0


def test_quick_memory_phases_run_in_this_framework(framework, checked):
    phases = checked['memory']
    assert len(phases) == 9 and phases[0]['phase'] == 'python and d2lsupport.core'
    peaks = [p['peak_rss_mb'] for p in phases]
    assert peaks == sorted(peaks) and phases[-1]['rss_mb'] > phases[0]['rss_mb']
    text = bench.memory_table({framework: {'memory': phases}})
    assert f'| phase | {framework} |' in text and len(text.splitlines()) == 11


def test_quick_profile_runs_where_the_profiler_times_each_operation(framework, checked):
    if framework not in bench.PROFILED:
        assert 'profile' not in checked
        return
    profile = checked['profile']
    assert set(profile['kinds_ms']) == set(bench.PROFILE_KINDS)
    # the step's convolutions are found and timed, forward and backward
    assert profile['kinds_ms']['convolution, forward'] > 0
    assert profile['kinds_ms']['convolution, backward'] > 0
    assert 0 < sum(profile['kinds_ms'].values()) and profile['step_ms'] > 0
    text = bench.profile_table({framework: {'profile': profile}})
    assert f'| operations | {framework} ms (share) |' in text


def test_profile_of_a_framework_without_an_operation_profiler_is_a_one_line_error(tmp_path):
    result = run_bench('profile', '--framework', 'mxnet', '--out', tmp_path / 'p.json')
    assert result.returncode == 2 and 'profile: only jax and pytorch' in result.stderr
    assert not (tmp_path / 'p.json').exists()


def test_jax_operations_are_traced_to_the_model_operations_they_come_from():
    program = """HloModule step
%fused_computation.1 (p: f32[4]) -> f32[4] {
  %p = f32[4]{0} parameter(0)
  ROOT %max.1 = f32[4]{0} maximum(%p, %p), metadata={op_name="jit(s)/jvp(Net)/BatchNorm_0/max"}
}
%fused_computation.2 (a: f32[4], b: f32[4]) -> f32[4,4] {
  ROOT %convolution.9 = f32[4,4]{1,0} convolution(%a, %b), window={size=3}
}
ENTRY %main (x: f32[4]) -> f32[4] {
  %x = f32[4]{0} parameter(0)
  %fusion.1 = f32[4]{0} fusion(%x), kind=kLoop, calls=%fused_computation.1
  %ynn_fusion.2 = f32[4,4]{1,0} fusion(%x, %x), kind=kCustom, calls=%fused_computation.2
  %convolution.3 = f32[4]{0} convolution(%x, %x), metadata={op_name="jit(s)/transpose(jvp(Net))/_Conv1x1_0/conv_general_dilated"}
  %transpose_copy_fusion.4 = f32[4]{0} fusion(%x), kind=kLoop, calls=%fused_computation.1
  ROOT %mul.5 = f32[4]{0} multiply(%x, %x), metadata={op_name="jit(s)/mul"}
}
"""
    origin = bench._hlo_origins(program)
    kinds = {name: bench._jax_kind(name, origin[name]) for name in
             ('fusion.1', 'ynn_fusion.2', 'convolution.3', 'transpose_copy_fusion.4', 'mul.5')}
    assert kinds == {'fusion.1': 'batch norm, forward', 'ynn_fusion.2': 'convolution, backward',
                     'convolution.3': 'convolution, backward',
                     'transpose_copy_fusion.4': 'layout copies', 'mul.5': 'optimizer update'}


def test_report_tables_of_the_long_run_and_batch_norm_checks(tmp_path):
    drift = {'epochs': 4, 'epoch_s': [30.0, 20.0, 20.0, 25.0], 'rss_mb': [900, 1000, 1000, 1100],
             'time_spread': 0.111, 'rss_growth': 0.1, 'time_ok': False, 'memory_ok': False}
    bn = {'steps': 100, 'val_images': 1024, 'running_stats': {'loss': 0.7, 'acc': 0.75},
          'batch_stats': {'loss': 0.65, 'acc': 0.77}}
    paths = [tmp_path / 'drift.json', tmp_path / 'bn.json']
    paths[0].write_text(json.dumps({'mxnet': {'drift': drift}}))
    paths[1].write_text(json.dumps({'mxnet': {'bn': bn}}))
    merged = bench.merge(paths)
    assert set(merged['mxnet']) == {'drift', 'bn'}      # one entry per framework
    text = bench.table(merged)
    assert '| mxnet | 30, 20, 20, 25 | 11% MISSED | 900, 1000, 1000, 1100 | +10.0% MISSED |' in text
    assert '| mxnet | 100 | 0.700 | 0.750 | 0.650 | 0.770 |' in text
    assert 'trainer / fastest' not in text              # no speed measurements merged


def test_the_real_books_data_are_our_files_unpacked(tmp_path, mirror):
    # torchvision's FashionMNIST reads the four files uncompressed from
    # <root>/FashionMNIST/raw; tools.real_book puts ours there, byte for byte
    real_book.raw_files(tmp_path, root=mirror)
    for name in real_book.FILES:
        unpacked = tmp_path / 'FashionMNIST' / 'raw' / name.removesuffix('.gz')
        assert unpacked.read_bytes() == gzip.decompress((Path(mirror) / name).read_bytes())
