"""What `make` runs, checked by running it against stand-in environments.

Each environment under a temporary ENVS_DIR is a marker file (so make sees it built)
and a `bin/python` that only records how it was called: its arguments, working
folder and environment. The browser tools the page needs are stand-ins on PATH too.
So `make test` runs in a second, and the tests check what each framework's
interpreter was asked to do, however the recipes are written.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import d2lsupport
from d2lsupport.core import FRAMEWORKS

from conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which('make') is None, reason='make is not installed')

RECORDER = """#!{python}
import json, os, sys
env = {{k: v for k, v in os.environ.items() if k.startswith(('D2L_', 'CNN_DESIGN_'))}}
with open({log!r}, 'a') as log:
    log.write(json.dumps({{'python': sys.argv[0], 'args': sys.argv[1:],
                          'cwd': os.getcwd(), 'env': env}}) + '\\n')
"""
# the Debian commands whose absence would make `make` install them
DEBIAN_COMMANDS = ('pandoc', 'chromium', 'chromedriver')


def executable(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def make(tmp_path):
    """`make(*arguments)` runs make in the repository with ENVS_DIR holding stand-in
    environments; returns the calls of their interpreters, in the order they began."""
    envs, log = tmp_path / 'envs', tmp_path / 'calls.jsonl'
    for env in (*FRAMEWORKS, 'docs', 'dist'):
        executable(envs / env / 'bin' / 'python', RECORDER.format(python=sys.executable,
                                                                  log=str(log)))
        (envs / env / '.installed').touch()   # newer than the lock files
    for command in DEBIAN_COMMANDS:
        executable(tmp_path / 'bin' / command, '#!/bin/sh\n')
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(('MAKE', 'MFLAGS', 'D2L_', 'CNN_DESIGN_'))}
    environ['PATH'] = f'{tmp_path / "bin"}{os.pathsep}{environ["PATH"]}'

    def run(*arguments):
        # (DIST_DIR: the stand-in build must not replace the checkout's wheel)
        subprocess.run(['make', '--no-print-directory', f'ENVS_DIR={envs}',
                        f'DIST_DIR={tmp_path / "dist"}', *arguments],
                       cwd=ROOT, env=environ, capture_output=True, text=True, check=True)
        return [Call(envs, json.loads(line)) for line in log.read_text().splitlines()]
    return run


class Call:
    """One recorded interpreter call: which environment, arguments, folder, variables."""

    def __init__(self, envs, record):
        self.env = Path(record['cwd'], record['python']).parent.parent.relative_to(envs).name
        self.args, self.cwd, self.vars = record['args'], Path(record['cwd']), record['env']

    def runs(self, module):
        return self.args[:2] == ['-m', module]

    def option(self, name):
        """The value given to option `name`, or None."""
        for i, arg in enumerate(self.args):
            if arg == name:
                return self.args[i + 1]
            if arg.startswith(name + '='):
                return arg[len(name) + 1:]
        return None

    def path(self, name):
        """Option `name`'s value as an absolute path."""
        return (self.cwd / self.option(name)).resolve()

    def paths(self):
        """Every argument read as a path from the working folder."""
        return {(self.cwd / arg).resolve() for arg in self.args if not arg.startswith('-')}


def only(calls, what):
    """The one call of `calls` that `what` accepts."""
    found = [call for call in calls if what(call)]
    assert len(found) == 1, [c.args for c in found]
    return found[0]


def wheel_name():
    version = make_variables()['VERSION']
    assert version == d2lsupport.__version__
    return f'd2lsupport-{version}-py3-none-any.whl'


def test_make_test_runs_pytest_and_nbval_in_every_environment(make):
    calls = make('test')
    # the wheel, built in the packaging environment before any notebook runs (again in
    # the tests' phase here only because the stand-in build writes no file)
    wheels = [c for c in calls if c.runs('build')]
    wheel = wheels[0]
    assert all(w.env == 'dist' and w.cwd == ROOT and '--no-isolation' in w.args for w in wheels)
    assert calls.index(wheel) < min(i for i, c in enumerate(calls) if c.runs('tools.outside'))
    for fw in FRAMEWORKS:
        mine = [c for c in calls if c.env == fw]
        assert any(c.runs('d2lsupport.data') for c in mine), fw
        pytest_run = only(mine, lambda c: c.runs('pytest') and '--nbval-lax' not in c.args)
        assert pytest_run.cwd == ROOT / 'tests' and ROOT / 'tests' in pytest_run.paths()
        assert pytest_run.vars['D2L_FRAMEWORK'] == fw
        # the framework-free tests run in the PyTorch and MXNet environments only
        assert pytest_run.vars['D2L_FRAMEWORK_TESTS_ONLY'] == \
            ('0' if fw in ('pytorch', 'mxnet') else '1')
        # the framework's notebook under nbval, run outside the repository from the wheel
        nbval = only(mine, lambda c: c.runs('tools.outside'))
        assert nbval.cwd == ROOT and nbval.option('--framework') == fw
        assert nbval.path('--notebook') == ROOT / 'tests' / 'notebooks' / f'cnn-design.{fw}.ipynb'
        assert nbval.path('--executed') == ROOT / '_build' / 'executed' / f'cnn-design.{fw}.ipynb'
        assert nbval.path('--wheel') == wheel.path('--outdir') / wheel_name()
        installed = nbval.path('--dir')
        assert installed.name == fw and not installed.is_relative_to(ROOT)
    # the page (test-page, below), and the build's own tests: the rest of tests/html
    docs = [c for c in calls if c.env == 'docs']
    assert any(c.runs('tools.book') for c in docs)
    built = only(docs, lambda c: c.runs('pytest') and c.option('--ignore'))
    assert ROOT / 'tests' / 'html' in built.paths()
    assert built.path('--ignore') == ROOT / 'tests' / 'html' / 'test_page.py'


def test_make_test_page_builds_the_page_from_what_nbval_ran_then_opens_it(make, tmp_path):
    calls = make('test-page')
    build = only(calls, lambda c: c.runs('tools.book'))
    assert build.env == 'docs' and build.cwd == ROOT
    assert build.path('--envs-dir') == tmp_path / 'envs'
    assert build.path('--executed') == ROOT / '_build' / 'executed'
    nbval = {c.env for c in calls[:calls.index(build)] if c.runs('tools.outside')}
    assert nbval == set(FRAMEWORKS)
    page = ROOT / 'tests' / 'html' / 'test_page.py'
    browser = only(calls, lambda c: c.runs('pytest') and page in c.paths())
    assert browser.env == 'docs' and browser.vars['CNN_DESIGN_HTML_TEST'] == '1'
    assert calls.index(browser) > calls.index(build)


def test_make_run_executes_the_chapter_with_the_chosen_framework(make):
    run = only(make('run', 'FRAMEWORK=jax'), lambda c: c.runs('tools.run_notebook'))
    assert run.env == 'jax' and run.cwd == ROOT and run.option('--framework') == 'jax'
    assert ROOT / 'chapter_cnn_design' / 'cnn-design.ipynb' in run.paths()
    assert ROOT / 'results' / 'cnn-design.jax.ipynb' in run.paths()
    assert run.vars['D2L_RESULTS_DIR'] == str(ROOT / 'results')


def test_make_html_builds_the_page_in_the_docs_environment(make):
    calls = make('html', 'FULL=1')
    build = only(calls, lambda c: c.runs('tools.book'))
    assert build.env == 'docs' and build.cwd == ROOT and '--full' in build.args


def test_make_bench_measures_every_framework_then_reports(make):
    calls = [c for c in make('bench') if c.runs('tools.bench')]
    assert all(c.cwd == ROOT for c in calls)
    for command in ('measure', 'book'):
        assert {(c.env, c.option('--framework')) for c in calls if c.args[2] == command} \
            == {(fw, fw) for fw in FRAMEWORKS}, command
    assert {c.env for c in calls if c.args[2] == 'profile'} == {'jax', 'pytorch'}
    report = calls[-1]
    assert report.args[2] == 'report' and report.path('--out') == ROOT / 'results' / 'bench.json'
    # the report merges every file the measurements wrote
    assert {c.path('--out') for c in calls[:-1]} <= report.paths()


def make_variables(*arguments):
    """The values of make's variables after reading the Makefile with `arguments`."""
    out = subprocess.run(['make', '--no-print-directory', '-pnq', *arguments, 'nothing'],
                         cwd=ROOT, capture_output=True, text=True).stdout
    return dict(line.split(' := ', 1) for line in out.splitlines()
                if ' := ' in line and not line.startswith('#'))


def test_the_makefile_knows_the_frameworks_of_the_registry():
    assert sorted(make_variables()['FRAMEWORKS'].split()) == sorted(FRAMEWORKS)


def test_a_new_framework_is_one_makefile_entry_and_tested_before_the_page():
    titles = make_variables()['FRAMEWORK_TITLES']
    order = make_variables(f'FRAMEWORK_TITLES={titles} paddle:Paddle')['TEST_ORDER'].split()
    assert {'pytest-paddle', 'nbval-paddle'} <= set(order)
    assert order.index('nbval-paddle') < order.index('test-page')
    assert len(order) == len(set(order)) == 2 * (len(FRAMEWORKS) + 1) + 2
