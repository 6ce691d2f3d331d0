"""tools/run_notebook.py (make run): the chapter executes with its progress in the terminal."""
import os
import signal
import subprocess
import sys
import time

import nbformat
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
with open({checkpoint!r}, 'wb') as f:
    f.write(b'epoch 1')
child = subprocess.Popen(['sleep', '60'])
with open({pids!r}, 'w') as f:
    f.write(f'{{os.getpid()}} {{child.pid}}')
for _ in range(600):
    time.sleep(0.1)'''


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f'/proc/{pid}/stat') as f:       # a zombie has ended too
        return f.read().split(') ')[-1][0] != 'Z'


@pytest.mark.parametrize('sig, ignore', [
    (signal.SIGINT, ''), (signal.SIGTERM, ''),
    (signal.SIGTERM, 'import signal; signal.signal(signal.SIGINT, signal.SIG_IGN)')],
    ids=['ctrl-c', 'sigterm', 'a-kernel-that-ignores-the-interrupt'])
def test_a_signal_stops_the_run_and_its_kernel_and_keeps_the_checkpoint(tmp_path, sig, ignore):
    checkpoint, pids = tmp_path / 'run.ckpt.npz', tmp_path / 'pids'
    write_notebook(tmp_path / 'in.ipynb', 'print("first cell")',
                   TRAINING.format(ignore=ignore, checkpoint=str(checkpoint), pids=str(pids)))
    runner = subprocess.Popen([sys.executable, '-m', 'tools.run_notebook', str(tmp_path / 'in.ipynb'),
                               str(tmp_path / 'out.ipynb')], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (pids.exists() and pids.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    kernel, child = map(int, pids.read_text().split())
    runner.send_signal(sig)
    out, err = runner.communicate(timeout=run_notebook.KILL_AFTER + 10)
    assert runner.returncode == 130, err
    assert f'stopped by {sig.name}' in err and 'run the same command again' in err
    assert not alive(kernel) and not alive(child)
    assert checkpoint.read_bytes() == b'epoch 1'
    assert nbformat.read(tmp_path / 'out.ipynb', 4).cells[0].outputs[0]['text'] == 'first cell\n'
