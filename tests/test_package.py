"""The package metadata: one version, one extra per framework carrying the
framework choices of requirements/<framework>.in, the license files, and the
records shipped inside the package."""
import re
import tomllib
from pathlib import Path

import pytest

import d2lsupport
from d2lsupport import core, records
from tools import outside

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / 'pyproject.toml').read_text())


def requirement_lines(path):
    return [line.strip() for line in path.read_text().splitlines()
            if line.strip() and not line.startswith('#')]


def test_the_version_is_stated_once():
    assert PROJECT['project']['dynamic'] == ['version']
    assert PROJECT['tool']['setuptools']['dynamic']['version'] == {'attr': 'd2lsupport.__version__'}
    assert re.fullmatch(r'\d+\.\d+\.\d+', d2lsupport.__version__)


def test_the_readme_and_the_page_name_that_version():
    readme = re.findall(r'd2lsupport-(\d+\.\d+\.\d+)-py3', (REPO / 'README.md').read_text())
    release = re.findall(r'(?m)^release = (.+)$', (REPO / 'config.ini').read_text())
    assert readme and set(readme) == set(release) == {d2lsupport.__version__}


def test_each_framework_has_an_extra_with_its_requirements_choices():
    extras = PROJECT['project']['optional-dependencies']
    cluster = set(extras.pop('cluster'))
    assert set(extras) == set(core.FRAMEWORKS)
    for fw in core.FRAMEWORKS:
        chosen = set(requirement_lines(REPO / 'requirements' / f'{fw}.in'))
        # the cluster's packages sit in the PyTorch file, which runs the study
        assert set(extras[fw]) == chosen - cluster, fw


def test_the_licenses_are_there_and_named():
    assert PROJECT['project']['license'] == 'MIT'
    assert PROJECT['project']['license-files'] == ['LICENSE']
    assert (REPO / 'LICENSE').read_text().startswith('MIT License')
    assert 'Attribution-ShareAlike 4.0' in (REPO / 'LICENSE-TEXT').read_text().splitlines()[0]


def test_the_records_the_chapter_reads_are_shipped(monkeypatch):
    shipped = PROJECT['tool']['setuptools']['package-data']['d2lsupport.results']
    folder = REPO / PROJECT['tool']['setuptools']['package-dir']['d2lsupport.results']
    read = [records.STUDY_FILE, records.STUDY_COST_FILE, records.STUDY_LONG_FILE,
            *(Path(records.RESULTS_DIR, f'regnetx32.{fw}.json') for fw in core.FRAMEWORKS)]
    for path in map(Path, read):
        assert path.parent == folder and any(path.match(pattern) for pattern in shipped), path
    # installed, the same names are read from inside the package
    monkeypatch.setattr(records, 'checkout_root', lambda: None)
    assert Path(records.results_dir()) == Path(d2lsupport.__file__).parent / 'results'


def test_the_outside_run_asks_for_the_wheel_it_lacks(tmp_path):
    with pytest.raises(SystemExit, match=r'no wheel .*; run `make dist`'):
        outside.main(['--framework', 'jax', '--wheel', str(tmp_path / 'missing.whl'),
                      '--notebook', 'nb.ipynb', '--executed', 'out.ipynb',
                      '--dir', str(tmp_path / 'env'), '--data', 'data'])
    assert not (tmp_path / 'env').exists()
