"""Framework-free helpers: classes grown by add_to_class, hyperparameters, budget."""
import matplotlib
import pytest

from d2lsupport import core

matplotlib.use('Agg')


def test_add_to_class_adds_a_method():
    class A:
        pass

    @core.add_to_class(A)
    def twice(self, x):
        return 2 * x

    assert A().twice(3) == 6


def test_save_hyperparameters_stores_arguments_but_not_ignored_ones():
    class B(core.HyperParameters):
        def __init__(self, a, b=2, c=3):
            self.save_hyperparameters(ignore=['c'])

    b = B(1)
    assert (b.a, b.b) == (1, 2) and not hasattr(b, 'c')
    assert b.hparams == {'a': 1, 'b': 2}


def test_budget_is_full_unless_the_harness_asks(monkeypatch):
    monkeypatch.delenv(core.Budget.ENV, raising=False)
    full = core.Budget()
    assert not full.small and full.epochs(10) == 10 and full.batches(469, True) == 469
    monkeypatch.setenv(core.Budget.ENV, '1')
    small = core.Budget()
    assert small.small and small.epochs(10) == 2
    assert small.batches(469, True) == 3 and small.batches(79, False) == 2
    assert 'SMALL-BUDGET MODE' in small.banner()


class Conv:
    pass


class Dense:
    pass


def test_print_layer_table_totals_and_names_the_template_s_parts(capsys):
    rows = [(Conv(), (1, 8, 4, 4), 80), (Conv(), (1, 8, 2, 2), 100), (Dense(), (1, 10), 1_210)]
    core.print_layer_table(object(), rows)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[:3]] == ['Conv', 'Conv', 'Dense']
    assert lines[2].endswith('1,210') and lines[-1] == 'total parameters: 1,390'
    network = type('Net', (), {'arch': ((1, 8, 1, 1),)})()     # one stage
    core.print_layer_table(network, rows)
    lines = capsys.readouterr().out.splitlines()
    assert [line[:8].strip() for line in lines[:3]] == ['stem', 'stage 1', 'head']


def test_progress_board_draws_each_curve(tmp_path):
    board = core.ProgressBoard()
    for x in range(3):
        board.draw(x, 0.5 * x, 'train_loss')
    board.draw(2, 0.9, 'val_acc')
    ax = board.figure().axes[0]
    assert [line.get_label() for line in ax.lines] == ['train_loss', 'val_acc']
    assert list(ax.lines[0].get_ydata()) == [0.0, 0.5, 1.0]
    board.save(tmp_path / 'board.png')
    assert (tmp_path / 'board.png').stat().st_size > 0


def test_in_notebook_only_in_a_jupyter_kernel(monkeypatch):
    import IPython

    class ZMQInteractiveShell:      # the class name of a Jupyter kernel's shell
        pass

    class TerminalInteractiveShell:
        pass

    for shell, expected in ((ZMQInteractiveShell(), True),
                            (TerminalInteractiveShell(), False), (None, False)):
        monkeypatch.setattr(IPython, 'get_ipython', lambda: shell)
        assert core.in_notebook() == expected


def test_framework_module_by_framework_name():
    with pytest.raises(ValueError, match="unknown framework 'torch'; choose one of mxnet"):
        core.framework_module('torch')


def test_physical_cores_counts_hyperthreads_once(tmp_path, monkeypatch):
    for cpu, core_id in enumerate([0, 1, 0, 1]):    # 2 cores, 2 threads each
        topology = tmp_path / f'cpu{cpu}' / 'topology'
        topology.mkdir(parents=True)
        (topology / 'physical_package_id').write_text('0\n')
        (topology / 'core_id').write_text(f'{core_id}\n')
    monkeypatch.setattr(core.os, 'sched_getaffinity', lambda pid: {0, 1, 2, 3}, raising=False)
    assert core.physical_cores(str(tmp_path)) == 2
    monkeypatch.setattr(core.os, 'sched_getaffinity', lambda pid: {0, 2}, raising=False)
    assert core.physical_cores(str(tmp_path)) == 1       # two threads of one core
    assert core.physical_cores(str(tmp_path / 'missing')) == 2   # no topology: CPUs


def test_cpu_count_is_what_the_process_may_use(monkeypatch):
    monkeypatch.setattr(core.os, 'sched_getaffinity', lambda pid: {1, 3, 5}, raising=False)
    assert core.cpu_count() == 3
    monkeypatch.delattr(core.os, 'sched_getaffinity', raising=False)
    monkeypatch.setattr(core.os, 'cpu_count', lambda: 6)
    assert core.cpu_count() == 6
