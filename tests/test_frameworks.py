"""The chapter's networks and the support library, in this environment's framework."""
import math

import numpy as np
import pytest

from d2lsupport import design
from d2lsupport.notebook import tab_code

from conftest import CHAPTER_MD

CHANNELS_FIRST = {'mxnet', 'pytorch'}
REGNETX32_ROWS = [(32, 48, 384), (32, 24, 28_896), (80, 12, 149_200)]


def image_shape(framework, batch, size, channels=1):
    if framework in CHANNELS_FIRST:
        return (batch, channels, size, size)
    return (batch, size, size, channels)


@pytest.fixture(scope='module')
def chapter(framework):
    """The namespace left by the chapter's cells of this tab, before training."""
    namespace = {}
    for source in tab_code(CHAPTER_MD, framework, stop_at='d2l.Trainer('):
        exec(compile(source, str(CHAPTER_MD), 'exec'), namespace)
    return namespace


def make_model(chapter, framework, *args, **kwargs):
    cls = chapter[args[0]] if isinstance(args[0], str) else args[0]
    if framework == 'jax':
        return cls(*args[1:], training=False, **kwargs)
    return cls(*args[1:], **kwargs)


def test_regnetx32_has_the_same_parameters_in_every_framework(chapter, d2l, framework):
    model = make_model(chapter, framework, 'RegNetX32')
    assert d2l.param_count(model, image_shape(framework, 1, 96)) == 179_290


def test_layer_summary_halves_resolution_and_widens_channels(chapter, framework, capsys):
    make_model(chapter, framework, 'RegNetX32').layer_summary(image_shape(framework, 1, 96))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5
    for line, (channels, size, params) in zip(lines, REGNETX32_ROWS):
        assert str(image_shape(framework, 1, size, channels)) in line
        assert line.rstrip().endswith(f'{params:,}')
    assert '(1, 10)' in lines[3] and lines[3].rstrip().endswith('810')
    assert lines[4] == 'total parameters: 179,290'


@pytest.mark.parametrize('space', ['A', 'C', 'E'])
def test_anynet_parameters_match_the_complexity_formula(chapter, d2l, framework, space):
    rng = np.random.default_rng(7)
    for _ in range(2):
        config = design.sample_config(space, rng)
        arch = tuple((d, w, g, 1 / b) for d, w, g, b in config['stages'])
        model = make_model(chapter, framework, 'AnyNet', arch, config['stem_width'])
        expected = design.complexity(config, image_size=28)['params']
        assert d2l.param_count(model, image_shape(framework, 2, 28)) == expected, config


def test_fashion_mnist_batches_have_the_framework_layout(d2l, framework, mirror):
    data = d2l.FashionMNIST(batch_size=32, resize=(32, 32))
    X, y = next(data.train_dataloader())
    assert tuple(X.shape) == image_shape(framework, 32, 32)
    assert tuple(y.shape) == (32,)
    values = np.asarray(X)
    assert values.dtype == np.float32 and 0 <= values.min() and values.max() <= 1
    assert data.num_batches(train=False) == math.ceil(10_000 / 32)


def test_trainer_small_budget_trains_and_reports(chapter, d2l, framework, mirror,
                                                 monkeypatch, capsys):
    monkeypatch.setenv('D2L_SMALL_BUDGET', '1')
    model = chapter['AnyNet'](((1, 16, 8, 1),), 8, lr=0.05)
    trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
    trainer.fit(model, d2l.FashionMNIST(batch_size=64, resize=(28, 28)))
    out = capsys.readouterr().out
    assert out.count('training on the CPU') == 1
    assert 'SMALL-BUDGET MODE' in out
    assert trainer.epochs == 2 and len(trainer.history) == 2
    assert math.isfinite(trainer.train_loss) and 0 <= trainer.val_acc <= 1
    assert trainer.summary() in out
