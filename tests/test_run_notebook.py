"""tools/run_notebook.py (make run): the chapter executes with its progress in the terminal."""
import subprocess
import sys

import nbformat

from conftest import ROOT


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
