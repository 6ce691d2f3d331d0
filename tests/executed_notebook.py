"""nbval, keeping what it ran: a pytest plugin (tests/conftest.py loads it).

With ``--executed-notebook PATH`` the notebook under test is written to PATH when the run
ends, holding the outputs of this run. They are built from the kernel's messages the way
Jupyter's own executor (nbclient) builds them, so a figure that was redrawn keeps its last
drawing and a cleared output stays cleared; nbval itself keeps only what it compares.
`make test` keeps each framework's notebook this way, and the HTML page shows those
outputs instead of running every tab a second time (tools/book.py --executed). The
notebook's metadata says whether every cell passed.
"""
import copy
import os
from contextlib import contextmanager

import pytest

KEPT = pytest.StashKey()
# the notebook's metadata {'passed': bool, 'cells_run': int}, read by tools/book.py
META = 'cnn_design_nbval'


def pytest_addoption(parser):
    parser.addoption('--executed-notebook', metavar='PATH', default=None,
                     help='write the notebook under nbval, with the outputs of this run, to PATH')


def pytest_configure(config):
    path = config.getoption('--executed-notebook')
    if path:
        config.stash[KEPT] = ExecutedNotebook(path)


class ExecutedNotebook:
    """The notebook nbval runs, filled cell by cell from the kernel's messages."""

    def __init__(self, path):
        self.path = path
        self.nb = self.client = None
        self.cells_run = 0
        self.passed = False

    def start(self, nb):
        from nbclient import NotebookClient
        self.nb = copy.deepcopy(nb)
        for cell in self.nb.cells:
            if cell.cell_type == 'code':
                cell.outputs, cell.execution_count = [], None
        self.client = NotebookClient(self.nb, record_timing=False)

    @contextmanager
    def listening(self, item):
        """Record the messages of `item`'s execution, then turn them into its outputs."""
        notebook_file, kernel = item.parent, item.parent.kernel
        if self.nb is None:
            self.start(notebook_file.nb)
        sent, messages = [], []

        def execute(*args, **kwargs):
            sent.append(type(kernel).execute_cell_input(kernel, *args, **kwargs))
            return sent[-1]

        def receive(*args, **kwargs):
            messages.append(type(notebook_file).get_kernel_message(notebook_file, *args, **kwargs))
            return messages[-1]

        kernel.execute_cell_input, notebook_file.get_kernel_message = execute, receive
        try:
            yield
        finally:
            del kernel.execute_cell_input, notebook_file.get_kernel_message
            index = next(i for i, c in enumerate(notebook_file.nb.cells) if c is item.cell)
            self.record(index, sent, messages)

    def record(self, index, sent, messages):
        from nbclient.exceptions import CellExecutionComplete
        cell = self.nb.cells[index]
        cell.outputs = []                              # as nbclient starts each cell
        self.client.clear_before_next_output = False
        for msg in messages:
            if sent and msg['parent_header'].get('msg_id') == sent[0]:
                try:
                    self.client.process_message(msg, cell, index)
                except CellExecutionComplete:
                    pass
        self.cells_run += 1

    def write(self):
        import nbformat
        if self.nb is None:
            return
        self.nb.metadata[META] = {'passed': self.passed, 'cells_run': self.cells_run}
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        partial = f'{self.path}.partial'
        nbformat.write(self.nb, partial)
        os.replace(partial, self.path)


def _is_notebook_cell(item):
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:
        return False
    return isinstance(item, IPyNbCell)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    kept = item.config.stash.get(KEPT, None)
    if kept is None or not _is_notebook_cell(item):
        yield
        return
    with kept.listening(item):
        yield


def pytest_sessionfinish(session):
    kept = session.config.stash.get(KEPT, None)
    if kept is not None:
        kept.passed = session.testsfailed == 0
        kept.write()
