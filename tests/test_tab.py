"""The %%tab cell magic runs only the selected framework's cells."""
import pytest
from IPython.testing.globalipapp import start_ipython

from d2lsupport import tab


@pytest.fixture(scope='module')
def shell():
    ip = start_ipython()
    ip.extension_manager.load_extension('d2lsupport.tab')
    return ip


def test_only_selected_tab_runs(shell, capsys):
    tab.select('jax')
    shell.run_cell('%%tab pytorch\nran_pytorch = True')
    shell.run_cell('%%tab jax, mxnet\nran_jax = True')
    shell.run_cell('%%tab all\nran_all = True')
    ns = shell.user_ns
    assert 'ran_pytorch' not in ns and ns['ran_jax'] and ns['ran_all']
    assert tab.selected('jax') and not tab.selected('pytorch')


@pytest.mark.parametrize('line', ['pytroch', 'jax, tensorflw', ''])
def test_a_misspelled_tab_name_is_an_error_not_a_skipped_cell(shell, line):
    tab.select('jax')
    result = shell.run_cell(f'%%tab {line}\nran_misspelled = True')
    assert 'ran_misspelled' not in shell.user_ns
    assert 'name one or more of mxnet, pytorch, tensorflow, jax or all' in str(
        result.error_in_exec)


def test_errors_in_a_tab_cell_propagate(shell):
    tab.select('mxnet')
    result = shell.run_cell('%%tab mxnet\n1 / 0')
    assert isinstance(result.error_in_exec, ZeroDivisionError)


def test_environment_variable_selects_the_framework(monkeypatch):
    monkeypatch.setenv(tab.ENV, 'tensorflow')
    assert tab.detect() == 'tensorflow'
    monkeypatch.setenv(tab.ENV, 'caffe')
    with pytest.raises(ValueError, match='unknown framework'):
        tab.detect()


@pytest.mark.parametrize('found, default', [(['pytorch'], 'pytorch'), (['jax'], 'jax'),
                                            (['mxnet', 'pytorch'], 'pytorch')])
def test_the_installed_framework_is_the_default(monkeypatch, found, default):
    monkeypatch.delenv(tab.ENV, raising=False)
    monkeypatch.setattr(tab, 'installed', lambda: found)
    assert tab.detect() == default


def test_no_installed_framework_says_which_kernel_to_pick(monkeypatch):
    monkeypatch.delenv(tab.ENV, raising=False)
    monkeypatch.setattr(tab, 'installed', lambda: [])
    with pytest.raises(RuntimeError, match='pick a "cnn-design \\(...\\)" kernel'):
        tab.detect()


def test_each_environment_has_exactly_its_own_framework(framework):
    assert tab.installed() == [framework]


def test_trailing_semicolon_hides_the_result(shell, capsys):
    tab.select('pytorch')
    shell.run_cell('%%tab all\n6 * 7;')
    assert '42' not in capsys.readouterr().out
    shell.run_cell('%%tab all\n6 * 7')
    assert '42' in capsys.readouterr().out
