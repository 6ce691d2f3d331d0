"""The records under results/: strict JSON, atomic and line-wise writes, the
training-run table (d2lsupport.records)."""
import json
import math

import numpy as np
import pytest

from d2lsupport import records
from d2lsupport.records import RecordError


def test_non_finite_numbers_are_written_as_their_names():
    obj = {'loss': float('nan'), 'up': [np.float32(np.inf), -math.inf],
           'acc': np.float64(0.5), 'n': np.int64(3), 'history': ({'x': np.array([1.0])},)}
    text = records.dumps(obj)
    assert json.loads(text) == {'loss': 'NaN', 'up': ['Infinity', '-Infinity'], 'acc': 0.5,
                                'n': 3, 'history': [{'x': [1.0]}]}
    assert [records.number(v) for v in ('Infinity', '-Infinity', 0.25)] == [
        math.inf, -math.inf, 0.25]
    assert math.isnan(records.number('NaN')) and math.isnan(records.number(None))


def test_write_json_atomic_replaces_the_whole_file(tmp_path):
    path = tmp_path / 'run.json'
    path.write_text('old')
    records.write_json_atomic(path, {'train_loss': float('nan'), 'epochs': 2})
    assert json.loads(path.read_text()) == {'train_loss': 'NaN', 'epochs': 2}
    with pytest.raises(TypeError):
        records.write_json_atomic(path, {'model': object()})
    assert json.loads(path.read_text())['epochs'] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ['run.json']


def test_incomplete_last_line_is_ignored_then_dropped(tmp_path):
    path = tmp_path / 'r.jsonl'
    assert records.read_json_lines(path) == []
    records.append_json_line(path, {'a': 1})
    records.append_json_line(path, {'a': float('nan')})
    with open(path, 'ab') as f:
        f.write(b'{"a": 3, "b"')
    assert records.read_json_lines(path) == [{'a': 1}, {'a': 'NaN'}]
    records.drop_incomplete_line(path)
    assert path.read_bytes() == b'{"a": 1}\n{"a": "NaN"}\n'


@pytest.mark.parametrize('content, message', [
    (b'{"a": 1}\n\xff\xfe\n', 'line 2: not a JSON record'),
    (b'[1, 2\n', 'line 1: not a JSON record')])
def test_a_damaged_line_is_a_one_line_error(tmp_path, content, message):
    path = tmp_path / 'r.jsonl'
    path.write_bytes(content)
    with pytest.raises(RecordError, match=message):
        records.read_json_lines(path)
    with pytest.raises(RecordError, match='cannot read .* choose a readable'):
        records.read_json_lines(tmp_path)


def run_record(framework='mxnet', **change):
    record = {'framework': framework, 'epochs_done': 5, 'epochs_planned': 5, 'complete': True,
              'train_loss': 0.2, 'val_acc': 0.9, 'wall_time_s': 600.0,
              'examples_per_sec': 200.0, 'peak_rss_mb': 2048.4,
              'machine': {'cores': 2, 'cpu': 'x86'},
              'history': [{'val_acc': a} for a in (0.5, 0.88, 0.91, 0.87, 0.9)]}
    return {**record, **change}


def show(tmp_path, capsys, **files):
    for name, content in files.items():
        (tmp_path / f'model.{name}.json').write_text(content)
    records.show_results('Model', folder=str(tmp_path))
    return capsys.readouterr().out.splitlines()


def test_show_results_gives_the_spread_of_the_last_epochs(tmp_path, capsys):
    out = show(tmp_path, capsys, mxnet=json.dumps(run_record()))
    assert out[1].split() == ['mxnet', '5/5', '0.200', '0.900', '0.870-0.910', '10.0', '200',
                              '2048', 'float32']
    out = show(tmp_path, capsys, mxnet=json.dumps(run_record(precision='bfloat16')))
    assert out[0].split()[-1] == 'precision' and out[1].split()[-1] == 'bfloat16'
    assert out[2] == 'machine: 2 cores, x86'


def test_show_results_marks_incomplete_and_diverged_runs(tmp_path, capsys):
    diverged = run_record('jax', epochs_done=1, complete=False, train_loss='NaN',
                          history=[{'val_acc': 0.1}])
    out = show(tmp_path, capsys, jax=records.dumps(diverged))
    assert out[1].split() == ['jax', '1/5', 'nan', '0.900', 'n/a', '10.0', '200', '2048',
                              'float32', '(incomplete', 'run)']


def test_show_results_says_which_record_it_cannot_read(tmp_path, capsys):
    out = show(tmp_path, capsys, mxnet=json.dumps(run_record()), pytorch='{"framework": ',
               jax='{"framework": "jax"}')
    assert out[1].startswith('mxnet')
    assert out[2].startswith('pytorch') and 'model.pytorch.json is not a JSON record' in out[2]
    assert out[3].startswith('jax') and 'is not a training record; `make run FRAMEWORK=jax`' \
        in out[3]


def test_show_results_without_records(tmp_path, capsys):
    records.show_results('RegNetX32', folder=str(tmp_path))
    assert 'no recorded runs of RegNetX32' in capsys.readouterr().out
