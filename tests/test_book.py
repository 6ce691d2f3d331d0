"""The HTML build's sources and its build-time steps (tools/book.py), without building.

The built page itself is tested in a browser by tests/html (make test-html).
"""
import configparser
import json
import re

import nbformat
import pytest

from d2lsupport.core import FRAMEWORKS, Budget
from d2lsupport.notebook import tab_code

from conftest import CHAPTER_MD, ROOT
from tools import book

CITE = re.compile(r':cite[tp]?:`([^`]+)`')
BIB_KEY = re.compile(r'^@\w+\{([^,\s]+),', re.MULTILINE)


def cited_keys(*paths):
    keys = set()
    for path in paths:
        for group in CITE.findall(path.read_text()):
            keys.update(k.strip() for k in group.split(','))
    return keys


def test_the_bibliography_has_exactly_the_cited_works():
    bib = BIB_KEY.findall((ROOT / 'references.bib').read_text())
    assert len(bib) == len(set(bib)), 'duplicate BibTeX keys'
    assert set(bib) == cited_keys(CHAPTER_MD, ROOT / 'index.md')


def test_config_has_one_tab_per_framework_in_order():
    config = configparser.ConfigParser()
    config.read(ROOT / 'config.ini')
    tabs = [t.strip() for t in config['build']['tabs'].split(',')]
    assert tuple(tabs) == FRAMEWORKS
    assert config['pdf']['bibfile'] == 'references.bib'


def test_index_lists_the_chapter_and_the_references():
    index = (ROOT / 'index.md').read_text()
    assert 'chapter_cnn_design/cnn-design' in index
    assert 'chapter_references/references' in index


@pytest.mark.parametrize('full', [False, True])
def test_staged_chapter(full):
    source = CHAPTER_MD.read_text()
    labels = set(book.LABEL.findall(source))
    staged = book.stage_chapter(source, full, labels)
    assert '%load_ext' not in staged
    title = staged.split('\n', 5)
    assert title[0].startswith('# ') and title[1].startswith(':label:')
    assert title[3] == ('*Read in:* [Bahasa Indonesia]'
                        '(../id/chapter_cnn_design/cnn-design.html)')
    assert title[5].startswith(f'*{book.NOTE_MARK}*')
    assert ('full training budget' in title[5]) == full
    # every :numref: left points into this book; the others link to d2l.ai
    assert set(book.NUMREF.findall(staged)) <= labels
    assert staged.count('](https://d2l.ai/') == source.count(':numref:`') - \
        sum(source.count(f':numref:`{label}`') for label in labels)
    # the code cells are untouched (but for the dropped first one)
    fence = re.compile(r'```\{\.python \.input[^}]*\}\n(.*?)\n```', re.DOTALL)
    assert fence.findall(staged) == fence.findall(source)[1:]


def test_the_indonesian_edition_is_staged_and_translated_paragraph_by_paragraph():
    from d2lsupport import translation
    source, translated = CHAPTER_MD.read_text(), translation.translated_chapter('id').read_text()
    labels = set(book.LABEL.findall(source))
    english = book.stage_chapter(source, False, labels)
    indonesian = book.stage_chapter(translated, False, labels, 'id')
    lines = indonesian.split('\n', 5)
    assert lines[3] == '*Baca dalam:* [English](../../chapter_cnn_design/cnn-design.html)'
    assert lines[5].startswith('*Keluaran di halaman ini*')
    mapping = book.staged_pair(english, indonesian, 'id')
    assert mapping[' '.join(english.split('\n')[3].split())] == lines[3]
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(english.split('\n\n')[1] + '\n\n<div class="tab">x</div>'),
        nbformat.v4.new_markdown_cell('An English paragraph nobody translated.'),
        nbformat.v4.new_code_cell('print(1)')])
    assert book.translate_notebook(nb, mapping) == ['An English paragraph nobody translated.']
    assert nb.cells[0].source == lines[3] + '\n\n<div class="tab">x</div>'
    assert nb.cells[2].source == 'print(1)'


def tab_cell(source, tab, pos, text=None):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata.update({'tab': [tab], 'origin_pos': pos})
    if text is not None:
        cell.outputs = [nbformat.v4.new_output('stream', name='stdout', text=text)]
    return cell


def test_cells_every_tab_ran_alike_show_once():
    tabs = list(FRAMEWORKS)
    cells = [nbformat.v4.new_markdown_cell('prose')]
    cells[0].metadata['origin_pos'] = 0
    cells += [tab_cell(f'code of {t}', t, 1, 'out') for t in tabs]        # one per tab
    cells += [tab_cell('print(1)', t, 2, '1\n') for t in tabs]            # %%tab all
    nb = book.show_shared_cells_once(nbformat.v4.new_notebook(cells=cells), tabs)
    assert [c.source for c in nb.cells] == ['prose'] + [f'code of {t}' for t in tabs] + ['print(1)']
    assert nb.cells[-1].metadata['tab'] == tabs
    assert nb.cells[-1].outputs[0].text == '1\n'


def test_a_shared_cell_with_different_outputs_stays_in_each_tab():
    tabs = list(FRAMEWORKS)
    cells = [tab_cell('trainer.fit(model, data)', t, 1, f'val acc of {t}') for t in tabs]
    nb = book.show_shared_cells_once(nbformat.v4.new_notebook(cells=cells), tabs)
    assert [c.metadata['tab'] for c in nb.cells] == [[t] for t in tabs]
    assert [c.outputs[0].text for c in nb.cells] == [f'val acc of {t}' for t in tabs]


def test_a_shared_plot_shows_once_although_its_png_bytes_differ():
    tabs = list(FRAMEWORKS)
    cells = []
    for i, t in enumerate(tabs):
        cell = tab_cell('design.plot_width_rule();', t, 1)
        cell.outputs = [nbformat.v4.new_output('display_data', data={
            'image/png': f'png written by matplotlib 3.{i}', 'text/plain': '<Figure>'})]
        cells.append(cell)
    nb = book.show_shared_cells_once(nbformat.v4.new_notebook(cells=cells), tabs)
    assert len(nb.cells) == 1 and nb.cells[0].metadata['tab'] == tabs


def test_build_inputs_change_with_what_the_outputs_depend_on(tmp_path):
    for name in ('d2lsupport/core.py', 'd2lsupport/chapter/torch.py', 'results/run.json',
                 'requirements/jax.txt', 'pyproject.toml', 'tools/book.py', 'README.md'):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text('v1')
    before = book.build_inputs(False, root=tmp_path)
    assert before != book.build_inputs(True, root=tmp_path)
    (tmp_path / 'README.md').write_text('v2')         # the outputs do not depend on it
    assert book.build_inputs(False, root=tmp_path) == before
    for name in ('d2lsupport/chapter/torch.py', 'results/run.json', 'requirements/jax.txt',
                 'tools/book.py'):
        (tmp_path / name).write_text('v2')
        after = book.build_inputs(False, root=tmp_path)
        assert after != before, name
        before = after


def write_run(root, framework, cells, record):
    (root / 'results').mkdir(exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=cells),
                   root / book.RUN_NOTEBOOK.format(framework))
    (root / book.RUN_RECORD.format(framework)).write_text(json.dumps(record))


def small_budget_cell(source):
    cell = nbformat.v4.new_code_cell(source)
    cell.outputs = [nbformat.v4.new_output('stream', name='stdout', text=Budget().banner()),
                    nbformat.v4.new_output('stream', name='stdout', text='val acc 0.094\n')]
    return cell


def test_cells_that_trained_in_the_small_budget_show_the_recorded_run(tmp_path):
    full = nbformat.v4.new_code_cell('%%tab jax\ntrainer.fit(model, data)')
    full.outputs = [nbformat.v4.new_output('stream', name='stdout', text='val acc 0.901\n')]
    skipped = nbformat.v4.new_code_cell('%%tab mxnet\ntrainer.fit(model, data)')  # same code,
    other = nbformat.v4.new_code_cell('print(2)')                                 # no output
    other.outputs = [nbformat.v4.new_output('stream', name='stdout', text='2\n')]
    write_run(tmp_path, 'jax', [full, skipped, other], {
        'commit': 'abcdef1234567890', 'complete': True, 'epochs_done': 10,
        'epochs_planned': 10, 'date': '2026-12-01 12:00:00'})
    untouched = nbformat.v4.new_code_cell('print(1)')   # an edited cell, no banner
    untouched.outputs = [nbformat.v4.new_output('stream', name='stdout', text='1\n')]
    edited = small_budget_cell('trainer.fit(model, data, more=True)')   # not in the record
    nb = nbformat.v4.new_notebook(cells=[small_budget_cell('trainer.fit(model, data)'),
                                         untouched, edited])
    assert book.show_recorded_runs(nb, 'jax', root=tmp_path) == 1
    shown = [o.text for o in nb.cells[0].outputs]
    assert shown[1] == 'val acc 0.901\n'
    assert shown[0].startswith(f'{book.RECORDED_MARK} results/cnn-design.jax.ipynb '
                               '(complete, 10 of 10 epochs; commit abcdef123456')
    assert nb.cells[1].outputs[0].text == '1\n'
    # a training cell the record does not have shows no small-budget output, but why
    assert [o.text for o in nb.cells[2].outputs] == [book.NO_RECORD]


def test_recorded_outputs_name_no_machine_path():
    out = nbformat.v4.new_output('stream', name='stdout', text=(
        'Trainer: resuming after epoch 6 of 10 from /work/main/results/regnetx32.jax.ckpt.npz '
        '(delete it to start over).\nval acc 0.9 in /home/a/b.c/results/x.json\n'))
    shown = book.without_machine_paths(out)
    assert shown['text'] == ('Trainer: resuming after epoch 6 of 10 from '
                             'results/regnetx32.jax.ckpt.npz (delete it to start over).\n'
                             'val acc 0.9 in results/x.json\n')
    assert out['text'].count('/work/main/') == 1      # the record itself is not changed


def test_without_a_recorded_run_no_small_budget_output_is_shown(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[small_budget_cell('trainer.fit(model, data)')])
    assert book.show_recorded_runs(nb, 'mxnet', root=tmp_path) == 0
    assert [o.text for o in nb.cells[0].outputs] == [book.NO_RECORD]


def test_the_committed_runs_have_the_chapters_training_cell():
    """Each framework's recorded run ran the training cell the chapter has now."""
    for framework in FRAMEWORKS:
        line, outputs = book.recorded_run(framework)
        training = [code for code in outputs if 'trainer.fit(model, data)' in code]
        chapter = [code for code in tab_code(CHAPTER_MD, framework)
                   if 'trainer.fit(model, data)' in code]
        assert [c.strip() for c in chapter] == training, framework
