"""`make test` really runs the tests of every framework and of the HTML page (a dry run
of the Makefile)."""
import re
import shutil
import subprocess

import pytest

from d2lsupport.core import FRAMEWORKS

from conftest import ROOT


@pytest.mark.skipif(shutil.which('make') is None, reason='make is not installed')
def test_make_test_runs_pytest_and_nbval_for_every_framework(tmp_path):
    dry = subprocess.run(['make', '-n', 'test', f'ENVS_DIR={tmp_path}'], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    dry = re.sub(r'\\\n\s*', '', dry)   # one line per command
    for fw in FRAMEWORKS:
        only = 0 if fw in ('pytorch', 'mxnet') else 1   # the framework-free tests run there
        assert (f'cd tests && D2L_FRAMEWORK={fw} D2L_FRAMEWORK_TESTS_ONLY={only} '
                f'{tmp_path}/{fw}/bin/python -m pytest') in dry, fw
        assert f'tests/notebooks/cnn-design.{fw}.ipynb' in dry, fw
        assert f'--executed-notebook {ROOT}/_build/executed/cnn-design.{fw}.ipynb' in dry, fw
    # the page shows what nbval ran, and is checked in the browser
    assert f'tools/book.py --envs-dir {tmp_path} --executed {ROOT}/_build/executed' in dry
    assert '--confcutdir=tests/html tests/html/test_page.py' in dry       # the browser
    assert '--confcutdir=tests/html --ignore=tests/html/test_page.py tests/html' in dry
