"""The README documents what the project reads from its environment."""
import re

from conftest import ROOT


def environment_variables_read():
    """Names of environment variables that the project's code reads or sets."""
    root = ROOT
    pattern = re.compile(r"(?:environ(?:\.get|\.setdefault)?\(|environ\[|_ENV = |\bENV = |"
                         r"getenv\()\s*'([A-Z][A-Z0-9_]+)'")
    names = set()
    for folder in ('d2lsupport', 'tools', 'tests'):
        for path in (root / folder).rglob('*.py'):
            names.update(pattern.findall(path.read_text()))
    return names - {'PATH', 'JUPYTER_PATH', 'PYTHONPATH'}   # only passed on to subprocesses


def test_the_readme_documents_every_environment_variable():
    readme = (ROOT / 'README.md').read_text()
    table = readme[readme.index('## Environment variables'):readme.index('## Layout')]
    names = environment_variables_read()
    assert {'D2L_FRAMEWORK', 'D2L_RESULTS_DIR', 'OMP_NUM_THREADS', 'CHROMIUM'} <= names
    missing = sorted(name for name in names if f'`{name}`' not in table)
    assert not missing, f'README, "Environment variables", does not document {missing}'
