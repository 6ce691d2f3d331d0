"""The chapter's markdown source, its notebook, and the recorded test notebooks agree."""
import itertools

import nbformat
import pytest

from d2lsupport import library, notebook
from d2lsupport.core import FRAMEWORKS
from tools import notebooks

from conftest import CHAPTER_MD, ROOT

CHAPTER_IPYNB = CHAPTER_MD.with_suffix('.ipynb')
RECORDED = ROOT / 'tests' / 'notebooks'


def test_parse_markdown_splits_code_and_prose():
    text = ('# Title\n\nSome prose.\n\n```{.python .input .check-output}\n%%tab jax\nx = 1\n```\n\n'
            '```bash\nmake run\n```\n')
    cells = notebook.parse_markdown(text)
    assert [kind for kind, _, _ in cells] == ['markdown', 'code', 'markdown']
    assert cells[1] == ('code', '%%tab jax\nx = 1', [notebook.CHECK_TAG])
    assert cells[2][1] == '```bash\nmake run\n```'


def test_unterminated_code_cell_is_an_error():
    with pytest.raises(ValueError, match='unterminated'):
        notebook.parse_markdown('```{.python .input}\nx = 1\n')


def test_committed_notebook_matches_the_markdown():
    assert CHAPTER_IPYNB.read_text() == notebook.render(CHAPTER_MD), \
        'cnn-design.ipynb is out of date: run `make ipynb`'


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(CHAPTER_IPYNB, as_version=4)
    assert all(not cell.get('outputs') for cell in nb.cells if cell.cell_type == 'code')


def framework_notebook(framework, suffix=''):
    return nbformat.read(ROOT / notebooks.OUT.format(framework=framework, suffix=suffix),
                         as_version=4)


@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_recorded_notebook_is_the_framework_notebook_without_its_install_cell(framework):
    recorded = nbformat.read(RECORDED / f'cnn-design.{framework}.ipynb', as_version=4)
    cells = [c for c in framework_notebook(framework).cells
             if 'install' not in c.metadata.get('tags', [])]
    assert [c.source for c in recorded.cells] == [c.source for c in cells], \
        'recorded outputs are stale: run `make record`'
    assert [c.metadata.get('tags') for c in recorded.cells] == [c.metadata.get('tags') for c in cells]


def test_the_framework_notebooks_are_current_with_the_chapter():
    stale = [path for path, text in notebooks.render_all().items()
             if not (ROOT / path).exists() or (ROOT / path).read_text() != text]
    assert not stale, f'{stale} out of date: run `make notebooks`'


@pytest.mark.parametrize('suffix', ['', '.id'])
@pytest.mark.parametrize('framework', FRAMEWORKS)
def test_a_framework_notebook_holds_its_tab_and_installs_first(framework, suffix):
    chapter = nbformat.read(CHAPTER_MD.with_name(f'cnn-design{suffix}.ipynb'), as_version=4)
    nb = framework_notebook(framework, suffix)
    code = [c for c in nb.cells if c.cell_type == 'code']
    assert code[0].metadata['tags'] == notebooks.INSTALL_TAGS
    assert f'{notebooks.WHEEL}[{framework}]' in code[0].source
    assert [c.source for c in code[1:]] == notebook.tab_code(
        CHAPTER_MD.with_name(f'cnn-design{suffix}.md'), framework)
    text = '\n'.join(c.source for c in nb.cells if c.cell_type == 'markdown')
    for markup in (':label:', ':numref:', ':cite', '%%tab', '../img/'):
        assert markup not in text, markup
    images = [name for c in chapter.cells for name in notebook_images(c.source)]
    attached = [name for c in nb.cells for name in c.get('attachments', {})]
    assert attached == images and images
    assert ('numpy older than 1.24' in text or 'numpy yang lebih tua' in text) == \
        (framework == 'mxnet')


def test_the_references_are_listed_with_accents_written_out():
    entries = notebooks.read_bibliography()
    surnames, year, line = entries['Radosavovic.Kosaraju.Girshick.ea.2020']
    assert surnames[-1] == 'Dollár' and year == '2020'
    assert line.startswith('Ilija Radosavovic, Raj Prateek Kosaraju') and '{' not in line
    nb = framework_notebook('jax')
    assert nb.cells[-1].source.startswith('## References')
    assert nb.cells[-1].source.count('\n* ') == len({
        key.strip() for cell in nbformat.read(CHAPTER_IPYNB, as_version=4).cells
        for keys in notebooks.CITE.findall(cell.source) for key in keys[1].split(',')})


def notebook_images(markdown):
    return [m.group(2) for m in notebooks.IMAGE.finditer(markdown)]


def test_citations_are_written_out():
    bibliography = {'a': (['Zoph', 'Le'], '2017', ''), 'b': (['Tan'], '2019', ''),
                    'c': (['Radosavovic', 'Kosaraju', 'Girshick'], '2020', '')}
    assert notebooks.citation('a,b', False, bibliography, 'en') == '(Zoph and Le, 2017; Tan, 2019)'
    assert notebooks.citation('c', True, bibliography, 'id') == 'Radosavovic et al. (2020)'
    assert notebooks.citation('a', True, bibliography, 'id') == 'Zoph dan Le (2017)'


def test_every_code_group_has_all_four_tabs():
    cells = notebook.parse_markdown(CHAPTER_MD.read_text())
    groups = itertools.groupby(cells[1:], key=lambda cell: cell[0])
    for kind, group in groups:
        if kind != 'code':
            continue
        sources = [source for _, source, _ in group]
        tabs = sorted(t for source in sources for t in notebook.cell_tabs(source))
        assert set(tabs) == {'all'} or tabs == sorted(FRAMEWORKS), sources[0][:60]


def test_tab_code_strips_the_tab_line():
    sources = notebook.tab_code(CHAPTER_MD, 'pytorch', stop_at='class RegNetX32')
    assert sources and not any(s.startswith('%%tab') for s in sources)
    assert any('class AnyNet' in s for s in sources)


def test_generated_library_matches_the_chapter():
    for name, text in library.modules(CHAPTER_MD).items():
        assert (library.PACKAGE / name).read_text() == text, \
            f'd2lsupport/chapter/{name} is out of date: run `make library`'


def test_saved_cells_go_to_the_frameworks_of_their_tab():
    text = ('```{.python .input}\n%%tab pytorch, jax\n#@save\nA = 1\n```\n'
            '```{.python .input}\n%%tab jax\nB = 2  # not saved\n```\n'
            '```{.python .input}\n%%tab all\n#@save\nC = 3\n```\n'
            '```{.python .input}\n%%tab jax\nx = 1\n#@save\n```\n')
    assert library.saved_cells(text, 'jax') == ['A = 1', 'C = 3']
    assert library.saved_cells(text, 'mxnet') == ['C = 3']
    source = library.module_source(text, 'pytorch')
    assert 'A = 1\n\n\nC = 3\n' in source and 'Generated from' in source
    with pytest.raises(ValueError, match='no cell marked #@save for mxnet'):
        library.module_source(text.replace('%%tab all', '%%tab jax'), 'mxnet')


def test_library_check_names_the_stale_module_and_the_fix(tmp_path, capsys):
    assert library.main([str(CHAPTER_MD), str(tmp_path)]) == 0
    assert library.main([str(CHAPTER_MD), str(tmp_path), '--check']) == 0
    (tmp_path / 'jax.py').write_text('# edited by hand\n')
    assert library.main([str(CHAPTER_MD), str(tmp_path), '--check']) == 1
    err = capsys.readouterr().err
    assert 'jax.py out of date' in err and 'run `make library`' in err


def test_notebook_check_fails_on_a_stale_notebook(tmp_path, capsys):
    dest = tmp_path / 'chapter.ipynb'
    assert notebook.main([str(CHAPTER_MD), str(dest), '--check']) == 1
    assert 'run `make ipynb`' in capsys.readouterr().err
    assert notebook.main([str(CHAPTER_MD), str(dest)]) == 0
    assert notebook.main([str(CHAPTER_MD), str(dest), '--check']) == 0
