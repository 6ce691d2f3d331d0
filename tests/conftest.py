"""Shared fixtures: the framework of this environment and the chapter's code."""
import os
from pathlib import Path

import pytest

from d2lsupport import tab
from d2lsupport.core import framework_module

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_MD = ROOT / 'chapter_cnn_design' / 'cnn-design.md'


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
