"""tools/run_notebook.py (make run): the chapter executes with its progress in the terminal."""
import json
import os
import signal
import subprocess
import sys
import time

import nbformat
import numpy as np
import pytest

from conftest import ROOT
from tools import run_notebook


def write_notebook(path, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nbformat.write(nb, path)


def run(source, dest, framework='jax'):
    """`python -m tools.run_notebook` from the repository root, as `make run` runs it."""
    return subprocess.run([sys.executable, '-m', 'tools.run_notebook', '--framework', framework,
                           str(source), str(dest)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_the_terminal_shows_the_tabs_cells_their_output_and_training_progress(tmp_path):
    progress = ('import os\n'
                "with open(os.environ['D2L_PROGRESS'], 'a') as f:\n"
                "    f.write('epoch 1/1: val loss 0.500, val acc 0.900\\n')")
    write_notebook(tmp_path / 'in.ipynb', '%load_ext d2lsupport.tab',
                   '%%tab pytorch\nprint("not this tab")',
                   '%%tab jax\nprint("hello from jax")', f'%%tab all\n{progress}')
    result = run(tmp_path / 'in.ipynb', tmp_path / 'out.ipynb')
    assert result.returncode == 0, result.stderr
    assert '[cell 1/3] %load_ext d2lsupport.tab' in result.stdout
    assert '[cell 2/3] print("hello from jax")' in result.stdout     # pytorch's cell not counted
    assert 'hello from jax' in result.stdout and 'not this tab' not in result.stdout
    assert 'epoch 1/1: val loss 0.500, val acc 0.900' in result.stderr
    assert 'without encryption' not in result.stdout + result.stderr
    out = nbformat.read(tmp_path / 'out.ipynb', 4)
    assert out.cells[2].outputs[0]['text'] == 'hello from jax\n'


def test_a_failing_cell_is_one_line_and_the_notebook_is_still_written(tmp_path):
    write_notebook(tmp_path / 'in.ipynb', '%load_ext d2lsupport.tab', '%%tab all\n1 / 0')
    result = run(tmp_path / 'in.ipynb', tmp_path / 'out.ipynb')
    assert result.returncode == 1
    assert 'error: ZeroDivisionError: division by zero' in result.stderr
    errors = [o for o in nbformat.read(tmp_path / 'out.ipynb', 4).cells[1].outputs
              if o.output_type == 'error']
    assert errors and errors[0]['ename'] == 'ZeroDivisionError'


TRAINING = '''import os, subprocess, time
{ignore}
import numpy as np
from d2lsupport.trainer import BaseTrainer


class Devices:
    cpu, num_gpus = staticmethod(lambda: 'cpu'), staticmethod(lambda: 0)


class SlowTrainer(BaseTrainer):
    """The real loop and checkpoints; a 'model' whose loss shrinks, slowly."""
    framework = 'numpy'

    def framework_module(self):
        return Devices

    def build(self, model, data):
        self.loss = 1.0

    def train_step(self, batch):
        time.sleep(0.05)
        self.loss *= 0.9
        return self.loss

    def eval_step(self, batch):
        return self.loss * 4, 3.0

    def state(self):
        return {{'model': repr(self.loss).encode(), 'optimizer': b'sgd'}}

    def load_state(self, state):
        self.loss = float(state['model'])


class Data:
    batch_size, resize = 4, (28, 28)

    def num_batches(self, train):
        return 4 if train else 1

    def batches(self):
        while True:
            yield np.ones((4, 28, 28), np.float32), np.zeros(4, np.int64)

    train_dataloader = val_dataloader = batches


class Model:
    lr = 0.1


child = subprocess.Popen(['sleep', '60'])
with open({pids!r}, 'w') as f:
    f.write(f'{{os.getpid()}} {{child.pid}}')
SlowTrainer(max_epochs=1000).fit(Model(), Data())'''


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f'/proc/{pid}/stat') as f:       # a zombie has ended too
        return f.read().split(') ')[-1][0] != 'Z'


@pytest.mark.parametrize('sig, ignore', [
    (signal.SIGINT, ''),
    (signal.SIGTERM, 'import signal; signal.signal(signal.SIGINT, signal.SIG_IGN)')],
    ids=['ctrl-c', 'sigterm-to-a-kernel-that-ignores-the-interrupt'])
def test_a_signal_stops_the_run_and_its_kernel_and_keeps_the_checkpoint(tmp_path, sig, ignore):
    results, pids = tmp_path / 'results', tmp_path / 'pids'
    results.mkdir()
    checkpoint = results / 'model.numpy.ckpt.npz'
    write_notebook(tmp_path / 'in.ipynb', 'print("first cell")',
                   TRAINING.format(ignore=ignore, pids=str(pids)))
    env = {k: v for k, v in os.environ.items() if k != 'D2L_SMALL_BUDGET'}
    runner = subprocess.Popen([sys.executable, '-m', 'tools.run_notebook', str(tmp_path / 'in.ipynb'),
                               str(tmp_path / 'out.ipynb')], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**env, 'D2L_RESULTS_DIR': str(results)})
    deadline = time.monotonic() + 60
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)                                  # into a later epoch
    kernel, child = map(int, pids.read_text().split())
    runner.send_signal(sig)
    out, err = runner.communicate(timeout=run_notebook.KILL_AFTER + 10)
    assert runner.returncode == 128 + sig, err
    assert f'stopped by {sig.name}' in err and 'run the same command again' in err
    assert not alive(kernel) and not alive(child)
    with np.load(checkpoint) as saved:             # whole, with the epochs that finished
        assert len(json.loads(str(saved['meta']))['history']) >= 1
    assert sorted(p.name for p in results.iterdir()) == ['model.numpy.ckpt.npz',
                                                         'model.numpy.json']
    assert nbformat.read(tmp_path / 'out.ipynb', 4).cells[0].outputs[0]['text'] == 'first cell\n'
