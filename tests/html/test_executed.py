"""The page's tabs filled from the notebooks nbval ran (tools/book.py --executed).

Needs d2lbook, whose formatting of code the cells are matched by: it runs in the docs
environment (make test-page, make test-html) and is skipped elsewhere.
"""
import nbformat
import pytest

pytest.importorskip('d2lbook')

from tools import book  # noqa: E402  (after the skip: it needs d2lbook's environment)

# a reader's notebook: the tab magic, then cells of one tab, of every tab, of another tab
READER = ['%load_ext d2lsupport.tab', '%%tab jax\nimport os, sys\nprint(1)',
          '%%tab all\nprint(2)', '%%tab pytorch\nprint(3)', '%%tab all\nprint(2)']
# JAX's notebook (notebooks/jax) as nbval ran it: that tab's cells without %%tab lines
JAX = ['import os, sys\nprint(1)', 'print(2)', 'print(2)']


def write_reader(root, sources=READER):
    path = root / book.READER_NOTEBOOK
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(s) for s in sources]), path)


def write_executed(path, sources=JAX, passed=True, cells_run=None):
    """A notebook as the nbval plugin keeps it: each cell printed its position."""
    cells = []
    for i, source in enumerate(sources):
        cell = nbformat.v4.new_code_cell(source)
        cell.outputs = [nbformat.v4.new_output('stream', name='stdout', text=f'cell {i}\n')]
        cells.append(cell)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata[book.EXECUTED_META] = {'passed': passed,
                                       'cells_run': len(sources) if cells_run is None else cells_run}
    nbformat.write(nb, path)
    return path


def tab_notebook(*sources):
    """A tab's notebook as d2lbook's eval step hands it to its executor."""
    from d2lbook.library import format_code
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell('prose')] + [
        nbformat.v4.new_code_cell(format_code(s)) for s in sources])


def test_a_tab_gets_the_outputs_of_its_cells_in_order(tmp_path):
    write_reader(tmp_path)
    outputs = book.executed_outputs(write_executed(tmp_path / 'jax.ipynb'), 'jax', root=tmp_path)
    nb = tab_notebook('import os, sys\nprint(1)', 'print(2)', 'print(2)')
    book.fill_outputs(nb, 60, outputs)
    assert [c.outputs[0].text for c in nb.cells[1:]] == ['cell 0\n', 'cell 1\n', 'cell 2\n']
    # d2lbook sorts the imports of the cell it runs (isort); the match allows for it
    assert 'import os, sys' not in nb.cells[1].source


def test_a_cell_the_executed_notebook_did_not_run_is_an_error(tmp_path):
    write_reader(tmp_path)
    outputs = book.executed_outputs(write_executed(tmp_path / 'jax.ipynb'), 'jax', root=tmp_path)
    with pytest.raises(RuntimeError, match="no run of the cell 'print\\(3\\)'"):
        book.fill_outputs(tab_notebook('print(3)'), 60, outputs)   # pytorch's cell


@pytest.mark.parametrize('case', ['missing', 'failed', 'not every cell ran', 'other code'])
def test_an_unusable_executed_notebook_means_running_the_tab(tmp_path, case, caplog):
    write_reader(tmp_path)
    path = tmp_path / 'jax.ipynb'
    if case == 'failed':
        write_executed(path, passed=False)
    elif case == 'not every cell ran':
        write_executed(path, cells_run=2)
    elif case == 'other code':
        write_executed(path, JAX[:-1] + ['print(5)'])
    assert book.executed_outputs(path, 'jax', root=tmp_path) is None
    assert 'running the tab' in caplog.text


def test_one_print_sent_in_two_messages_is_one_output(tmp_path):
    write_reader(tmp_path)
    path = write_executed(tmp_path / 'jax.ipynb')
    nb = nbformat.read(path, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output('stream', name='stdout', text='cell 1'),
                           nbformat.v4.new_output('stream', name='stdout', text='\n'),
                           nbformat.v4.new_output('stream', name='stderr', text='warning\n')]
    nbformat.write(nb, path)
    outputs = book.executed_outputs(path, 'jax', root=tmp_path)
    filled = tab_notebook('print(2)')
    book.fill_outputs(filled, 60, outputs)
    assert [(o.name, o.text) for o in filled.cells[1].outputs] == \
        [('stdout', 'cell 1\n'), ('stderr', 'warning\n')]


def test_build_inputs_name_the_executed_notebooks(tmp_path):
    executed = tmp_path / 'executed'
    executed.mkdir()
    before = book.build_inputs(False, executed=executed)
    write_executed(executed / book.EXECUTED.format('jax'))
    after = book.build_inputs(False, executed=executed)
    assert after != before and str(executed / 'cnn-design.jax.ipynb') in after


def test_full_and_executed_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        book.main(['--full', '--executed', 'somewhere'])
    assert 'give one of them' in capsys.readouterr().err
