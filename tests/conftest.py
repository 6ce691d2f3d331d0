"""Shared fixtures: the framework of this environment and the chapter's code."""
import os
from pathlib import Path

import pytest

from d2lsupport import tab
from d2lsupport.core import framework_module
# nbval keeps the notebook it ran, with --executed-notebook PATH (make test)
from executed_notebook import (pytest_addoption, pytest_configure,  # noqa: F401
                               pytest_runtest_call, pytest_sessionfinish)

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_MD = ROOT / 'chapter_cnn_design' / 'cnn-design.md'
# `1` (make test, in the TensorFlow and JAX environments): run only the tests that use
# this environment's framework; see pytest_collection_modifyitems
FRAMEWORK_TESTS_ONLY_ENV = 'D2L_FRAMEWORK_TESTS_ONLY'


def current_framework():
    """The framework under test: D2L_FRAMEWORK, else the one installed here."""
    try:
        return tab.detect()
    except RuntimeError:
        return None


@pytest.fixture(scope='session')
def framework():
    fw = current_framework()
    if fw is None:
        pytest.skip('no deep-learning framework in this environment')
    return fw


@pytest.fixture(scope='session')
def d2l(framework):
    return framework_module(framework)


@pytest.fixture(scope='session')
def mirror():
    """The folder holding the four official files (never the network)."""
    path = os.environ.get('FASHION_MNIST_MIRROR') or str(ROOT.parent / 'shared' / 'data' / 'fashion-mnist')
    if not Path(path).is_dir():
        pytest.skip('no Fashion-MNIST mirror folder; set FASHION_MNIST_MIRROR')
    return path


def pytest_collection_modifyitems(config, items):
    """With D2L_FRAMEWORK_TESTS_ONLY=1, leave out the framework-free tests (those that
    do not ask for the `framework` fixture). `make test` sets it where they would only
    repeat a run of another environment: the PyTorch, TensorFlow and JAX lock files pin
    the same versions of every package they share (numpy, matplotlib, ...; tested by
    test_environment.py), so the framework-free tests run in the PyTorch environment
    for all three, and in MXNet's, whose numpy and matplotlib are older."""
    if os.environ.get(FRAMEWORK_TESTS_ONLY_ENV) != '1':
        return
    kept = [item for item in items if 'framework' in getattr(item, 'fixturenames', ())]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept
