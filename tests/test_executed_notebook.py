"""nbval keeps the notebook it ran (tests/executed_notebook.py, --executed-notebook)."""
import os
import subprocess
import sys

import nbformat
import pytest

from conftest import ROOT

CELLS = [
    "print('first cell')",
    # a figure redrawn in place, as the Trainer's live plot is: the last drawing stays
    "from IPython.display import display, clear_output\n"
    "handle = display('first drawing', display_id=True)\n"
    "handle.update('last drawing')",
    "print('cleared'); clear_output(); print('after the clear')",
    "1 + 1",
]


def run_nbval(tmp_path, cells, recorded=None):
    """nbval on a notebook of `cells` with the plugin; returns (exit code, kept notebook)."""
    pytest.importorskip('nbval')
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    if recorded is not None:   # a checked cell with a recorded output
        cell = nb.cells[0]
        cell.metadata['tags'] = ['nbval-check-output']
        cell.execution_count = 1
        cell.outputs = [nbformat.v4.new_output('stream', name='stdout', text=recorded)]
    nbformat.write(nb, tmp_path / 'tiny.ipynb')
    kept = tmp_path / 'out' / 'tiny.ipynb'
    result = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
                             '-p', 'executed_notebook', '--nbval-lax', '--nbval-current-env',
                             '--rootdir', str(tmp_path), '--executed-notebook', str(kept),
                             str(tmp_path / 'tiny.ipynb')], cwd=tmp_path, capture_output=True,
                            text=True, env={**os.environ, 'PYTHONPATH': str(ROOT / 'tests')})
    return result.returncode, nbformat.read(kept, as_version=4)


def shown(cell):
    return [out.get('text') or out.get('data', {}).get('text/plain') for out in cell.outputs]


def test_the_kept_notebook_has_each_cells_final_outputs(tmp_path):
    code, nb = run_nbval(tmp_path, CELLS)
    assert code == 0
    assert [c.source for c in nb.cells] == CELLS
    assert [shown(c) for c in nb.cells] == [['first cell\n'], ["'last drawing'"],
                                           ['after the clear\n'], ['2']]
    assert nb.metadata['cnn_design_nbval'] == {'passed': True, 'cells_run': 4}


def test_a_failed_comparison_is_written_down(tmp_path):
    code, nb = run_nbval(tmp_path, CELLS[:1], recorded='another output\n')
    assert code == 1
    assert shown(nb.cells[0]) == ['first cell\n']
    assert nb.metadata['cnn_design_nbval']['passed'] is False
