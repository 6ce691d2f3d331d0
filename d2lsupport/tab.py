"""Framework tabs in a notebook: run only the cells of the selected framework.

Load it in the first cell with ``%load_ext d2lsupport.tab``. A cell that
starts with ``%%tab pytorch`` (or ``%%tab mxnet, jax``, or ``%%tab all``) runs
only when one of its frameworks is selected. By default the framework
installed in the running kernel is selected, so each framework's kernel just
runs; ``D2L_FRAMEWORK`` or ``tab.select('jax')`` chooses explicitly.
"""
import importlib.util
import os

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class

from .core import FRAMEWORKS, MODULES

ENV = 'D2L_FRAMEWORK'
_selected = None


def installed():
    """Frameworks importable in this Python environment, in tab order."""
    return [fw for fw in FRAMEWORKS if importlib.util.find_spec(MODULES[fw])]


def detect():
    """The framework to run: D2L_FRAMEWORK if set, else the installed one."""
    wanted = os.environ.get(ENV)
    if wanted:
        return check(wanted)
    found = installed()
    if not found:
        raise RuntimeError('no deep-learning framework is installed in this kernel; '
                           'pick a "cnn-design (...)" kernel or run `make setup`')
    return 'pytorch' if 'pytorch' in found else found[0]


def check(name):
    if name not in FRAMEWORKS:
        raise ValueError(f'unknown framework {name!r}; choose one of {", ".join(FRAMEWORKS)}')
    return name


def select(name):
    """Make `name` the framework whose cells run."""
    global _selected
    _selected = check(name)
    print(f'Running the {_selected} tab: cells of other frameworks are skipped. '
          'To run another framework, switch to its "cnn-design" kernel.')


def selected(*names):
    """True if the selected framework is one of `names`."""
    return _selected in names


@magics_class
class TabMagics(Magics):
    @cell_magic
    def tab(self, line, cell):
        names = [name.strip() for name in line.split(',') if name.strip()]
        unknown = [name for name in names if name != 'all' and name not in FRAMEWORKS]
        if unknown or not names:
            raise UsageError(f'%%tab {line.strip()}: name one or more of '
                             f'{", ".join(FRAMEWORKS)} or all, separated by commas')
        if 'all' in names or _selected in names:
            if cell.rstrip().endswith(';'):  # a trailing ';' hides the result, as usual
                cell += '\npass'
            self.shell.run_cell(cell).raise_error()


def load_ipython_extension(shell):
    shell.register_magics(TabMagics)
    shell.user_ns['tab'] = __import__(__name__, fromlist=['select'])
    select(detect())
