"""`make test` really runs the tests of every framework and of the HTML page (a dry run
of the Makefile)."""
import shutil
import subprocess

import pytest

from d2lsupport.core import FRAMEWORKS

from conftest import ROOT


@pytest.mark.skipif(shutil.which('make') is None, reason='make is not installed')
def test_make_test_runs_pytest_and_nbval_for_every_framework(tmp_path):
    dry = subprocess.run(['make', '-n', 'test', f'ENVS_DIR={tmp_path}'], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    for fw in FRAMEWORKS:
        assert f'cd tests && D2L_FRAMEWORK={fw} {tmp_path}/{fw}/bin/python -m pytest' in dry, fw
        assert f'tests/notebooks/cnn-design.{fw}.ipynb' in dry, fw
    assert 'tools/book.py' in dry and '--confcutdir=tests/html tests/html' in dry
