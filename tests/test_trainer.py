"""The framework-free training loop, driven by a stand-in framework."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from d2lsupport import core, records
from d2lsupport import trainer as trainer_lib
from d2lsupport.core import FRAMEWORKS, Budget, ProgressBoard, source_commit

ROOT = Path(__file__).resolve().parents[1]


class CountingData:
    """Batches of ones; `num_batches` per split."""
    batch_size, resize = 4, (28, 28)

    def num_batches(self, train):
        return 5 if train else 2

    def _batches(self):
        while True:
            yield np.ones((4, 28, 28), np.float32), np.zeros(4, np.int64)

    train_dataloader = val_dataloader = _batches


class Devices:
    """A framework module's devices, as the Trainer asks for them."""
    gpus = 0

    def cpu(self):
        return 'cpu'

    def gpu(self, i=0):
        return f'gpu:{i}'

    def num_gpus(self):
        return self.gpus


class Halving(trainer_lib.BaseTrainer):
    """A 'model' whose loss halves every step and which gets 3 of 4 right."""
    framework = 'numpy'
    devices = Devices()

    def framework_module(self):
        return self.devices

    def build(self, model, data):
        self.loss = 2.0

    def train_step(self, batch):
        self.loss /= 2
        return self.loss

    def eval_step(self, batch):
        return self.loss * len(batch[1]), 3.0

    def state(self):
        return {'loss': json.dumps(self.loss).encode()}

    def load_state(self, state):
        self.loss = json.loads(state['loss'])


class Model:
    lr = 0.1


def test_fit_reports_last_epoch(monkeypatch, capsys):
    monkeypatch.delenv(Budget.ENV, raising=False)
    t = Halving(max_epochs=3)
    t.fit(Model(), CountingData())
    assert [h['epoch'] for h in t.history] == [1, 2, 3]
    assert t.train_loss == pytest.approx(np.mean([2.0 / 2 ** k for k in range(11, 16)]))
    assert t.val_acc == 0.75 and t.num_examples_seen == 3 * (5 * 4 + 2 * 4)
    assert capsys.readouterr().out.strip().endswith(t.summary())


def test_results_are_written_after_every_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv(trainer_lib.RESULTS_ENV, str(tmp_path))
    monkeypatch.delenv(Budget.ENV, raising=False)
    Halving(max_epochs=2).fit(Model(), CountingData())
    record = json.loads((tmp_path / 'model.numpy.json').read_text())
    assert record['complete'] and record['epochs_done'] == 2
    assert record['val_acc'] == 0.75 and record['lr'] == 0.1
    assert len(record['history']) == 2 and record['machine']['cores'] >= 1
    times = [h['time_s'] for h in record['history']]
    assert 0 <= times[0] <= times[1] == pytest.approx(record['wall_time_s'], abs=0.06)
    assert record['peak_rss_mb'] > 10  # a Python process with numpy loaded


def test_time_limit_stops_early_and_is_recorded(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(trainer_lib.RESULTS_ENV, str(tmp_path))
    monkeypatch.setenv(Budget.TIME_ENV, '0')
    Halving(max_epochs=5).fit(Model(), CountingData())
    record = json.loads((tmp_path / 'model.numpy.json').read_text())
    assert not record['complete'] and record['epochs_done'] == 1
    assert 'Stopped after 1 of 5 epochs' in capsys.readouterr().out


def test_small_budget_limits_epochs_and_batches(monkeypatch):
    monkeypatch.setenv(Budget.ENV, '1')
    t = Halving(max_epochs=10)
    t.fit(Model(), CountingData())
    assert t.epochs == 2 and t.num_examples_seen == 2 * (3 * 4 + 2 * 4)


def test_show_results_marks_incomplete_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(trainer_lib.RESULTS_ENV, str(tmp_path))
    monkeypatch.setenv(Budget.TIME_ENV, '0')
    t = Halving(max_epochs=5)
    t.framework = 'jax'
    t.fit(Model(), CountingData())
    capsys.readouterr()
    records.show_results('Model', folder=str(tmp_path))
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith('jax') and '1/5' in out[1] and '(incomplete run)' in out[1]


def test_quiet_fit_neither_draws_nor_prints_nor_records(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(trainer_lib.RESULTS_ENV, str(tmp_path))
    monkeypatch.delenv(Budget.ENV, raising=False)
    t = Halving(max_epochs=1, quiet=True)
    monkeypatch.setattr(t.board, 'show', lambda: pytest.fail('drew a plot'))
    t.fit(Model(), CountingData())
    assert t.history and 'train_loss' in t.board.lines
    assert not list(tmp_path.iterdir())
    assert capsys.readouterr() == ('', '')      # no progress bar, no summary


def test_records_say_which_commit_and_memory_per_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv(trainer_lib.RESULTS_ENV, str(tmp_path))
    monkeypatch.delenv(Budget.ENV, raising=False)
    Halving(max_epochs=2).fit(Model(), CountingData())
    record = json.loads((tmp_path / 'model.numpy.json').read_text())
    assert re.fullmatch(r'[0-9a-f]{40}(\+dirty)?', record['commit'])
    for epoch in record['history']:
        assert epoch['rss_mb'] > 10 and 10 < epoch['peak_rss_mb'] <= record['peak_rss_mb']


def test_source_commit_outside_a_checkout(tmp_path):
    assert source_commit(str(tmp_path)) is None


def test_an_installed_copy_names_no_commit_even_inside_some_repository(monkeypatch):
    from d2lsupport import core
    assert source_commit() is not None   # this checkout
    monkeypatch.setattr(core, 'checkout_root', lambda: None)
    assert source_commit() is None


def test_in_a_notebook_progress_goes_to_the_progress_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(trainer_lib, 'in_notebook', lambda: True)
    monkeypatch.setattr(ProgressBoard, 'show', lambda self: None)   # the live plot
    monkeypatch.delenv(Budget.ENV, raising=False)
    Halving(max_epochs=2).fit(Model(), CountingData())
    assert 'epoch 1/2' not in capsys.readouterr().err   # no runner: no progress text
    progress = tmp_path / 'progress.txt'
    monkeypatch.setenv(trainer_lib.PROGRESS_ENV, str(progress))
    Halving(max_epochs=2).fit(Model(), CountingData())
    text = progress.read_text()
    assert '/5 [' in text and 'epoch 2/2: val loss 0.002, val acc 0.750' in text
    assert 'epoch 1/2' not in capsys.readouterr().err


def test_outside_a_notebook_progress_goes_to_stderr(monkeypatch, capsys):
    monkeypatch.delenv(Budget.ENV, raising=False)
    Halving(max_epochs=1).fit(Model(), CountingData())
    assert 'epoch 1/1: val loss' in capsys.readouterr().err


def test_trainer_mentions_the_cpu_only_when_no_gpu_is_found(monkeypatch, capsys):
    class WithGPU(Halving):
        devices = Devices()
        devices.gpus = 1
    assert WithGPU(max_epochs=1, num_gpus=1).device == 'gpu:0'
    assert Halving(max_epochs=1, num_gpus=0).device == 'cpu'
    assert capsys.readouterr().out == ''
    assert Halving(max_epochs=1, num_gpus=2).device == 'cpu'
    assert 'asked for 2 GPU(s) but none is available' in capsys.readouterr().out


@pytest.mark.parametrize('ys, expected', [
    ([0.2, 1.4], (0, 1.5)),           # inside the default range: unchanged
    ([0.2, 2.5], (0, 2.625)),         # above it: widened with a 5% margin
    ([-0.5, 1.0], (-0.6, 1.5)),       # below it
])
def test_plot_range_shows_every_point(ys, expected):
    board = ProgressBoard()
    for x, y in enumerate(ys):
        board.draw(x, y, 'loss')
    assert board.y_range() == pytest.approx(expected)
    assert board.figure().axes[0].get_ylim() == pytest.approx(expected)


def test_a_stopped_run_resumes_after_its_last_epoch(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(Budget.ENV, raising=False)
    monkeypatch.setenv(trainer_lib.RESULTS_ENV, str(tmp_path / 'whole'))
    (tmp_path / 'whole').mkdir()
    whole = Halving(max_epochs=3)
    whole.fit(Model(), CountingData())
    monkeypatch.setenv(trainer_lib.RESULTS_ENV, str(tmp_path))
    monkeypatch.setenv(Budget.TIME_ENV, '0')
    Halving(max_epochs=3).fit(Model(), CountingData())          # stops after epoch 1
    assert (tmp_path / 'model.numpy.ckpt.npz').exists()
    monkeypatch.delenv(Budget.TIME_ENV)
    resumed = Halving(max_epochs=3)
    resumed.fit(Model(), CountingData())
    assert 'resuming after epoch 1 of 3' in capsys.readouterr().out
    assert [h['epoch'] for h in resumed.history] == [1, 2, 3]
    assert resumed.val_loss == whole.val_loss and resumed.train_loss == whole.train_loss
    assert resumed.num_examples_seen == whole.num_examples_seen
    record = json.loads((tmp_path / 'model.numpy.json').read_text())
    assert record['complete'] and [s['first_epoch'] for s in record['segments']] == [1, 2]
    assert not (tmp_path / 'model.numpy.ckpt.npz').exists()   # gone once complete
    assert 'train_loss' in resumed.board.lines and 1 in resumed.board.lines['val_acc'][0]


def test_a_checkpoint_with_other_settings_is_not_resumed(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(Budget.ENV, raising=False)
    monkeypatch.setenv(trainer_lib.RESULTS_ENV, str(tmp_path))
    monkeypatch.setenv(Budget.TIME_ENV, '0')
    Halving(max_epochs=3).fit(Model(), CountingData())
    monkeypatch.delenv(Budget.TIME_ENV)
    other = Halving(max_epochs=4)
    other.fit(Model(), CountingData())
    assert 'not resuming' in capsys.readouterr().out
    assert len(other.history) == 4 and other.segments[0]['first_epoch'] == 1


def test_small_budget_and_quiet_runs_leave_no_record_or_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv(trainer_lib.RESULTS_ENV, str(tmp_path))
    monkeypatch.setenv(Budget.ENV, '1')
    Halving(max_epochs=3).fit(Model(), CountingData())
    monkeypatch.delenv(Budget.ENV)
    monkeypatch.setenv(Budget.TIME_ENV, '0')
    Halving(max_epochs=3, quiet=True).fit(Model(), CountingData())
    assert not list(tmp_path.iterdir())


def test_arrays_survive_the_trip_through_bytes():
    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3), np.array(7, np.int64)]
    back = trainer_lib.bytes_to_arrays(trainer_lib.arrays_to_bytes(arrays))
    assert len(back) == 2 and all((a == b).all() and a.dtype == b.dtype
                                  for a, b in zip(arrays, back))


class Planned(Halving):
    """Builds its optimizer as the framework Trainers do."""

    def build(self, model, data):
        super().build(model, data)
        self.optim = self.optimizer(model)

    def recipe_optimizer(self, model, steps):
        return ('recipe', steps)


class ModelWithOptimizer(Model):
    def configure_optimizers(self):
        return 'own'


def test_a_recipe_is_planned_over_every_step_of_the_fit(monkeypatch):
    monkeypatch.delenv(Budget.ENV, raising=False)
    recipe = trainer_lib.Recipe()
    full = Planned(max_epochs=3, recipe=recipe, quiet=True)
    full.fit(ModelWithOptimizer(), CountingData())
    assert full.optim == ('recipe', 3 * 5)
    monkeypatch.setenv(Budget.ENV, '1')          # at most 2 epochs of 3 batches
    small = Planned(max_epochs=3, recipe=recipe, quiet=True)
    small.fit(ModelWithOptimizer(), CountingData())
    assert small.optim == ('recipe', 2 * 3)
    own = Planned(max_epochs=1, quiet=True)
    own.fit(ModelWithOptimizer(), CountingData())
    assert own.optim == 'own'


def test_the_cosine_goes_from_the_rate_to_zero():
    recipe = trainer_lib.Recipe()
    rates = [recipe.learning_rate(0.1, k, 10) for k in range(12)]
    assert rates[0] == 0.1 and rates[5] == pytest.approx(0.05) and rates[10:] == [0, 0]
    assert all(a > b for a, b in zip(rates[:10], rates[1:11]))
    assert trainer_lib.Recipe(cosine=False).learning_rate(0.1, 7, 10) == 0.1


class Bfloat16Halving(Halving):
    bfloat16 = True


@pytest.mark.parametrize('instructions, checked, chosen', [
    (None, {'numpy': 'measured'}, 'float32'), ('avx512_bf16', {}, 'float32'),
    ('amx_bf16', {'numpy': 'measured'}, 'bfloat16')])
def test_auto_computes_in_bfloat16_only_on_such_a_cpu_for_a_checked_framework(
        monkeypatch, capsys, instructions, checked, chosen):
    monkeypatch.setattr(trainer_lib, 'cpu_bfloat16', lambda: instructions)
    monkeypatch.setattr(trainer_lib, 'BFLOAT16_CHECKED', checked)
    assert Bfloat16Halving(max_epochs=1, precision='auto').precision == chosen
    assert f'computing in {chosen}' in capsys.readouterr().out
    assert Bfloat16Halving(max_epochs=1, precision='float32').precision == 'float32'


def test_the_cpu_flags_name_the_bfloat16_instructions(tmp_path):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('model name\t: x\nflags\t\t: fpu sse2 avx512f avx512_bf16\n')
    assert core.cpu_bfloat16(str(cpuinfo)) == 'avx512_bf16'
    cpuinfo.write_text('flags\t\t: fpu sse2 avx2\n')
    assert core.cpu_bfloat16(str(cpuinfo)) is None
    assert core.cpu_bfloat16(str(tmp_path / 'missing')) is None


def test_a_checkpoint_of_another_precision_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv(Budget.ENV, raising=False)
    monkeypatch.setenv(trainer_lib.RESULTS_ENV, str(tmp_path))
    monkeypatch.setenv(Budget.TIME_ENV, '0')
    Bfloat16Halving(max_epochs=3, precision='bfloat16').fit(Model(), CountingData())
    monkeypatch.delenv(Budget.TIME_ENV)
    with pytest.raises(ValueError, match=r"made computing in bfloat16, not float32; resume "
                                         r"it with precision='bfloat16'") as error:
        Bfloat16Halving(max_epochs=3).fit(Model(), CountingData())
    assert '\n' not in str(error.value) and str(tmp_path) not in str(error.value)


def test_prepare_then_fit_epoch_runs_a_fit_one_epoch_at_a_time(monkeypatch):
    monkeypatch.delenv(Budget.ENV, raising=False)
    t = Halving(max_epochs=1, quiet=True)
    t.prepare(Model(), CountingData())
    first = t.fit_epoch()
    assert t.epoch == 1 and first[2] == 0.75 and t.num_examples_seen == 5 * 4 + 2 * 4
    second = t.fit_epoch()                   # past the plan of one epoch: it grows
    assert (t.epoch, t.epochs) == (2, 2) and second[0] < first[0]


def test_the_bfloat16_table_cites_a_section_of_benchmarks_md():
    headings = re.findall(r'^#+ (.+)$', (ROOT / 'BENCHMARKS.md').read_text(), re.MULTILINE)
    for framework, why in trainer_lib.BFLOAT16_CHECKED.items():
        assert framework in FRAMEWORKS
        cited = re.search(r'BENCHMARKS\.md, "([^"]+)"', why)
        assert cited and cited.group(1) in headings, (framework, why)
    assert trainer_lib.BaseTrainer.__init__.__defaults__[-1] == 'auto'


def test_freed_heap_pages_go_back_to_the_system():
    libc = trainer_lib._libc()
    if libc is None or not hasattr(libc, 'malloc_trim') or trainer_lib.rss_mb() is None:
        pytest.skip('needs glibc and /proc')
    import ctypes
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size, count = 100 * 1024, 1000   # below glibc's mmap threshold: from the heap
    blocks = [libc.malloc(size) for _ in range(count)]
    for block in blocks:
        ctypes.memset(block, 1, size)   # touched, so resident
    for block in blocks[:-1]:           # the last one keeps the freed ones off the heap's top
        libc.free(block)
    held = trainer_lib.rss_mb()
    assert trainer_lib.release_free_memory()
    released = held - trainer_lib.rss_mb()
    libc.free(blocks[-1])
    assert released > 0.5 * size * count / 2 ** 20


def test_each_epoch_hands_freed_memory_back(monkeypatch):
    monkeypatch.delenv(Budget.ENV, raising=False)
    calls = []
    monkeypatch.setattr(trainer_lib, 'release_free_memory', lambda: calls.append(1))
    t = Halving(max_epochs=3)
    t.fit(Model(), CountingData())
    assert len(calls) >= 3
