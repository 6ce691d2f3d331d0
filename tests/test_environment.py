"""environment.yml is a valid conda environment that uses the project's own pins."""
import pytest

from conftest import ROOT

yaml = pytest.importorskip('yaml')


def test_environment_yml_parses_and_points_at_existing_files():
    env = yaml.safe_load((ROOT / 'environment.yml').read_text())
    assert env['name'] and 'pip' in env['dependencies']
    pip = next(d['pip'] for d in env['dependencies'] if isinstance(d, dict))
    for line in pip:
        if line.startswith('-r '):
            assert (ROOT / line[3:]).is_file(), line
        elif line.startswith('-e '):
            assert (ROOT / line[3:] / 'pyproject.toml').is_file(), line
    assert '-r requirements/pytorch.txt' in pip

