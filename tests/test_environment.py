"""environment.yml is a valid conda environment that uses the project's own pins; the
framework environments' lock files agree wherever `make test` relies on it."""
import pytest

from conftest import ROOT


def pins(framework):
    lines = (ROOT / 'requirements' / f'{framework}.txt').read_text().splitlines()
    return dict(line.split('==') for line in lines if '==' in line and not line.startswith('#'))


def test_pytorch_tensorflow_and_jax_pin_the_same_version_of_every_package_they_share():
    """`make test` runs the framework-free tests in the PyTorch environment for all
    three (tests/conftest.py, D2L_FRAMEWORK_TESTS_ONLY): that stands only while the
    three environments hold the same versions of what they share."""
    torch = pins('pytorch')
    for framework in ('tensorflow', 'jax'):
        other = pins(framework)
        differ = {name: (torch[name], other[name]) for name in torch.keys() & other.keys()
                  if torch[name] != other[name]}
        assert not differ, (f'{framework} pins other versions than pytorch: {differ}; run '
                            f'the framework-free tests in its environment too (Makefile)')
        assert 'numpy' in torch.keys() & other.keys()


def test_environment_yml_parses_and_points_at_existing_files():
    yaml = pytest.importorskip('yaml')
    env = yaml.safe_load((ROOT / 'environment.yml').read_text())
    assert env['name'] and 'pip' in env['dependencies']
    pip = next(d['pip'] for d in env['dependencies'] if isinstance(d, dict))
    for line in pip:
        if line.startswith('-r '):
            assert (ROOT / line[3:]).is_file(), line
        elif line.startswith('-e '):
            assert (ROOT / line[3:] / 'pyproject.toml').is_file(), line
    assert '-r requirements/pytorch.txt' in pip

