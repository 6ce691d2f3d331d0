"""The chapter's networks and the support library, in this environment's framework."""
import importlib
import math
import subprocess
import sys

import numpy as np
import pytest

from d2lsupport import design
from d2lsupport import core
from d2lsupport import trainer as trainer_lib
from d2lsupport.core import MODULES

REGNETX32_PARAMS = 179_290   # as the chapter's recorded layer summary prints it
REGNETY32_PARAMS = 199_366
REGNETX32_ROWS = [(32, 48, 384), (32, 24, 28_896), (80, 12, 149_200)]


def image_shape(d2l, batch, size, channels=1):
    return core.image_shape(d2l.LAYOUT, batch, size, channels)


def test_regnetx32_has_the_same_parameters_in_every_framework(d2l, framework):
    model = d2l.RegNetX32()
    assert d2l.param_count(model, image_shape(d2l, 1, 96)) == REGNETX32_PARAMS


@pytest.mark.parametrize('name', ['RegNetX32', 'RegNetY32'])
def test_the_chapters_regnets_are_the_rules_configurations(d2l, framework, name):
    model = getattr(d2l, name)()
    arguments = design.anynet_arguments(getattr(design, name.upper()))
    found = {key: getattr(model, key) for key in arguments}
    found['arch'] = tuple(tuple(stage) for stage in found['arch'])
    assert found == arguments


def test_layer_summary_halves_resolution_and_widens_channels(d2l, framework, capsys):
    d2l.RegNetX32().layer_summary(image_shape(d2l, 1, 96))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5
    for line, (channels, size, params) in zip(lines, REGNETX32_ROWS):
        assert str(image_shape(d2l, 1, size, channels)) in line
        assert line.rstrip().endswith(f'{params:,}')
    assert '(1, 10)' in lines[3] and lines[3].rstrip().endswith('810')
    assert lines[4] == f'total parameters: {REGNETX32_PARAMS:,}'
    assert [line[:8].strip() for line in lines[:4]] == ['stem', 'stage 1', 'stage 2', 'head']


@pytest.mark.parametrize('space', ['A', 'C', 'E', 'RegNetX'])
@pytest.mark.parametrize('se_ratio', [0.0, 0.25])
def test_anynet_matches_the_complexity_formula(d2l, framework, space, se_ratio):
    rng = np.random.default_rng(11)
    for _ in range(2):
        sampled = design.sample_config(space, rng)
        config = sampled.with_se_ratio(se_ratio)
        expected = design.complexity(config)['params']
        model = d2l.anynet(config)
        assert d2l.param_count(model, image_shape(d2l, 2, 28)) == expected, config


def test_regnety_squeezes_a_quarter_of_each_block_input(d2l, framework):
    # RegNetX32 with SE: the first block of each stage squeezes its input
    # width (32, then 32) and the others their own width (32, then 80).
    se_params = 4 * (32 * 8 + 8 + 8 * 32 + 32) + (80 * 8 + 8 + 8 * 80 + 80) \
        + 5 * (80 * 20 + 20 + 20 * 80 + 80)
    assert design.complexity(design.REGNETY32, image_size=96)['params'] \
        == REGNETX32_PARAMS + se_params == REGNETY32_PARAMS
    assert (design.REGNETY32.stem_width, design.REGNETY32.stages, design.REGNETY32.se_ratio) \
        == (design.REGNETX32.stem_width, design.REGNETX32.stages, 0.25)
    model = d2l.RegNetY32()
    assert d2l.param_count(model, image_shape(d2l, 1, 96)) == REGNETY32_PARAMS


def test_too_small_se_ratio_is_an_error(d2l, framework):
    model = d2l.AnyNet(((1, 8, 8, 1),), 8, se_ratio=0.01)
    with pytest.raises(ValueError, match='no squeeze channel'):
        d2l.param_count(model, image_shape(d2l, 1, 28))


def test_fashion_mnist_batches_have_the_framework_layout(d2l, framework, mirror):
    data = d2l.FashionMNIST(batch_size=32, resize=(32, 32))
    X, y = next(data.train_dataloader())
    assert tuple(X.shape) == image_shape(d2l, 32, 32)
    assert tuple(y.shape) == (32,)
    values = X.asnumpy() if hasattr(X, 'asnumpy') else np.asarray(X)
    assert values.dtype == np.float32 and 0 <= values.min() and values.max() <= 1
    assert data.num_batches(train=False) == math.ceil(10_000 / 32)


def test_trainer_small_budget_trains_and_reports(d2l, framework, mirror, monkeypatch, capsys):
    monkeypatch.setenv('D2L_SMALL_BUDGET', '1')
    model = d2l.AnyNet(((1, 16, 8, 1),), 8, lr=0.05)
    trainer = d2l.Trainer(max_epochs=10, num_gpus=1)
    trainer.fit(model, d2l.FashionMNIST(batch_size=64, resize=(28, 28)))
    out = capsys.readouterr().out
    assert out.count('training on the CPU') == 1
    assert 'SMALL-BUDGET MODE' in out
    assert trainer.epochs == 2 and len(trainer.history) == 2
    assert math.isfinite(trainer.train_loss) and 0 <= trainer.val_acc <= 1
    assert trainer.summary() in out


class FakeGPU:
    """Stands in for a framework's GPU device object."""


@pytest.mark.parametrize('found, asked, device', [(1, 1, 'gpu'), (0, 1, 'cpu'), (1, 0, 'cpu')])
def test_trainer_trains_on_a_gpu_exactly_when_one_is_asked_for_and_found(
        d2l, monkeypatch, capsys, found, asked, device):
    monkeypatch.setattr(d2l, 'num_gpus', lambda: found)
    monkeypatch.setattr(d2l, 'gpu', lambda i=0: FakeGPU())
    trainer = d2l.Trainer(max_epochs=1, num_gpus=asked)
    assert isinstance(trainer.device, FakeGPU) == (device == 'gpu')
    assert trainer.device_name() == device.upper()
    warned = 'none is available; training on the CPU' in capsys.readouterr().out
    assert warned == (asked and not found)


def tiny_fit(d2l, framework, epochs=2, recipe=None, seed=0, precision='float32'):
    model = d2l.AnyNet(((1, 16, 8, 1),), 8, lr=0.05)
    trainer = d2l.Trainer(max_epochs=epochs, recipe=recipe, seed=seed, precision=precision)
    trainer.fit(model, d2l.FashionMNIST(batch_size=64, resize=(28, 28), num_train=320,
                                        num_val=128))
    return trainer


def test_the_seed_fixes_the_initialization(d2l, framework, mirror, monkeypatch):
    monkeypatch.delenv('D2L_SMALL_BUDGET', raising=False)
    first, again, other = (tiny_fit(d2l, framework, 1, seed=seed) for seed in (3, 3, 4))
    assert again.train_loss == pytest.approx(first.train_loss, rel=1e-5)
    assert other.train_loss != pytest.approx(first.train_loss, rel=1e-3)


def test_a_network_described_by_lists_trains_as_the_same_one_by_tuples(d2l, framework, mirror,
                                                                      monkeypatch):
    # (JAX compiles the initialization once per hashable model; a list is not hashable)
    monkeypatch.delenv('D2L_SMALL_BUDGET', raising=False)
    losses = []
    for arch in (((1, 16, 8, 1),), [[1, 16, 8, 1]]):
        data = d2l.FashionMNIST(batch_size=64, resize=(28, 28), num_train=128, num_val=64)
        trainer = d2l.Trainer(max_epochs=1, quiet=True, seed=0)
        trainer.fit(d2l.AnyNet(arch, 8, lr=0.05), data)
        losses.append(trainer.train_loss)
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)


PLAIN_SGD = dict(momentum=0.0, nesterov=False, weight_decay=0.0, cosine=False)


def test_a_recipe_of_plain_sgd_trains_as_the_models_own_optimizer(d2l, framework, mirror,
                                                                   monkeypatch):
    monkeypatch.delenv('D2L_SMALL_BUDGET', raising=False)
    own = tiny_fit(d2l, framework, 1)
    recipe = tiny_fit(d2l, framework, 1, d2l.Recipe(**PLAIN_SGD))
    assert recipe.train_loss == pytest.approx(own.train_loss, rel=1e-4)
    assert recipe.val_loss == pytest.approx(own.val_loss, rel=1e-4)


def test_every_part_of_the_recipe_changes_training(d2l, framework, mirror, monkeypatch):
    monkeypatch.delenv('D2L_SMALL_BUDGET', raising=False)
    parts = [{}, dict(momentum=0.9), dict(momentum=0.9, nesterov=True),
             dict(weight_decay=0.5), dict(cosine=True)]
    losses = [tiny_fit(d2l, framework, 1, d2l.Recipe(**{**PLAIN_SGD, **part})).val_loss
              for part in parts]
    assert all(a != pytest.approx(b, rel=1e-6) for i, a in enumerate(losses)
               for b in losses[i + 1:]), losses


@pytest.mark.parametrize('recipe', [dict(), dict(cosine=False, nesterov=False)],
                         ids=['cosine', 'constant'])
def test_every_step_uses_the_recipes_learning_rate(d2l, framework, mirror, monkeypatch, recipe):
    monkeypatch.delenv('D2L_SMALL_BUDGET', raising=False)
    recipe = d2l.Recipe(**recipe)
    data = d2l.FashionMNIST(batch_size=64, resize=(28, 28), num_train=320, num_val=64)
    trainer = d2l.Trainer(max_epochs=2, recipe=recipe, quiet=True)
    trainer.prepare(d2l.AnyNet(((1, 16, 8, 1),), 8, lr=0.05), data)
    rates = []
    for _ in range(trainer.epochs):
        for batch in data.train_dataloader():
            rates.append(trainer.learning_rate())
            trainer.train_step(batch)
    rates.append(trainer.learning_rate())
    steps = trainer.num_steps()
    expected = [recipe.learning_rate(0.05, k, steps) for k in range(steps + 1)]
    assert steps == 10 and rates == pytest.approx(expected, abs=1e-7)
    assert rates[-1] == pytest.approx(0 if recipe.cosine else 0.05, abs=1e-9)


def test_a_stopped_run_resumes_where_it_stopped(d2l, framework, mirror, monkeypatch,
                                                 tmp_path, capsys):
    monkeypatch.delenv('D2L_SMALL_BUDGET', raising=False)
    monkeypatch.setenv('D2L_RESULTS_DIR', str(tmp_path / 'whole'))
    (tmp_path / 'whole').mkdir()
    whole = tiny_fit(d2l, framework)
    monkeypatch.setenv('D2L_RESULTS_DIR', str(tmp_path))
    monkeypatch.setenv('D2L_TIME_LIMIT', '0')
    assert len(tiny_fit(d2l, framework).history) == 1      # stopped after epoch 1
    assert (tmp_path / 'anynet.{}.ckpt.npz'.format(framework)).exists()
    monkeypatch.delenv('D2L_TIME_LIMIT')
    resumed = tiny_fit(d2l, framework)                       # a fresh model
    assert 'resuming after epoch 1 of 2' in capsys.readouterr().out
    # the same weights, optimizer state and data order as the run that never stopped
    assert resumed.val_loss == pytest.approx(whole.val_loss, rel=1e-3)
    assert resumed.train_loss == pytest.approx(whole.train_loss, rel=1e-3)
    assert not (tmp_path / 'anynet.{}.ckpt.npz'.format(framework)).exists()


@pytest.mark.parametrize('fast', [True, False], ids=['fast', 'eager'])
def test_training_steps_reduce_the_loss(d2l, framework, mirror, monkeypatch, fast):
    monkeypatch.delenv('D2L_SMALL_BUDGET', raising=False)
    model = d2l.AnyNet(((1, 16, 8, 1), (1, 32, 8, 1)), 16, lr=0.1)
    data = d2l.FashionMNIST(batch_size=64, resize=(28, 28))
    trainer = d2l.Trainer(max_epochs=1, fast=fast)
    trainer.prepare(model, data)
    batches = data.train_dataloader()
    losses = [float(trainer.train_step(next(batches))) for _ in range(60)]
    assert np.mean(losses[-10:]) < 0.75 * np.mean(losses[:3]), losses


def test_parameters_change_only_by_training(d2l, framework):
    """A forward pass must not reset or move the weights (e.g. a stray init hook)."""
    model = d2l.AnyNet(((1, 16, 8, 1),), 8)
    shape = image_shape(d2l, 2, 28)
    d2l.param_count(model, shape)
    before = d2l.weights(model)
    if not before:
        pytest.skip(f'{framework} models hold no weights (the Trainer does)')
    d2l.param_count(model, shape)
    assert all(np.array_equal(a, b) for a, b in zip(before, d2l.weights(model)))


@pytest.mark.parametrize('c_in, num_channels, group_width, bot_mul, use_1x1conv, strides', [
    (16, 16, 8, 1, False, 1), (16, 16, 4, 0.25, False, 1), (16, 32, 16, 1, True, 2),
    (8, 32, 2, 0.25, True, 2), (16, 24, 8, 1, True, 1), (8, 8, 1, 0.5, True, 2)])
def test_resnext_block_shapes(d2l, framework, c_in, num_channels, group_width, bot_mul,
                              use_1x1conv, strides):
    block = d2l.ResNeXtBlock(num_channels, group_width, bot_mul, use_1x1conv, strides)
    out, _ = d2l.try_layer(block, image_shape(d2l, 2, 12, c_in))
    assert out == image_shape(d2l, 2, 12 // strides, num_channels)


@pytest.mark.parametrize('num_channels, group_width, bot_mul', [(32, 12, 1), (16, 8, 0.25)])
def test_resnext_block_rejects_widths_that_do_not_split_into_groups(
        d2l, framework, num_channels, group_width, bot_mul):
    with pytest.raises(ValueError, match='do not split into groups'):
        block = d2l.ResNeXtBlock(num_channels, group_width, bot_mul, True, 2)
        d2l.try_layer(block, image_shape(d2l, 2, 8, 8))


def test_squeeze_excitation_squeezes_a_share_of_the_block_input(d2l, framework):
    # Y has 16 channels and the block input X 32: the unit squeezes to 0.25 * 32 = 8
    # channels, with 16 * 8 + 8 weights and biases in and 8 * 16 + 16 out.
    Y_shape, X_shape = image_shape(d2l, 2, 6, 16), image_shape(d2l, 2, 12, 32)
    shape, params = d2l.try_layer(d2l.SqueezeExcitation(0.25), Y_shape, X_shape)
    assert (shape, params) == (Y_shape, 16 * 8 + 8 + 8 * 16 + 16)


BAD_ARGUMENTS = [
    ('ResNeXtBlock', dict(num_channels=0, group_width=8, bot_mul=1), 'num_channels must be a positive integer'),
    ('ResNeXtBlock', dict(num_channels=16, group_width=2.5, bot_mul=1), 'group_width must be'),
    ('ResNeXtBlock', dict(num_channels=16, group_width=8, bot_mul='1'), 'bot_mul must be a positive number'),
    ('ResNeXtBlock', dict(num_channels=16, group_width=8, bot_mul=1, strides=(2, 1)),
     'strides must be a positive integer or a pair of equal ones'),
    ('ResNeXtBlock', dict(num_channels=16, group_width=8, bot_mul=1, se_ratio=4),
     'se_ratio must be a number from 0 to 1'),
    ('SqueezeExcitation', dict(se_ratio=-0.25), 'se_ratio must be a number from 0 to 1'),
    ('Trainer', dict(max_epochs=0), 'max_epochs must be a positive integer'),
    ('Trainer', dict(max_epochs=1, num_gpus=-1), 'num_gpus must be an integer >= 0'),
    ('FashionMNIST', dict(batch_size=0), 'batch_size must be a positive integer'),
    ('FashionMNIST', dict(resize=(96,)), 'resize must be a (height, width) pair'),
    ('anynet', dict(config={'stem_width': 8, 'stages': [(1, 8, 8, 1)]}),
     'config must be a d2lsupport.design.AnyNetConfig'),
    ('Trainer', dict(max_epochs=1, recipe={'momentum': 0.9}),
     'recipe must be a d2lsupport Recipe or None'),
    ('Trainer', dict(max_epochs=1, seed=-1), 'seed must be an integer >= 0'),
    ('Trainer', dict(max_epochs=1, fast='yes'), 'fast must be True or False'),
    ('Trainer', dict(max_epochs=1, precision='half'), 'precision must be one of float32, bfloat16'),
    ('Recipe', dict(momentum=1.0), 'momentum must be a number from 0 to below 1'),
    ('Recipe', dict(weight_decay=-1e-4), 'weight_decay must be a finite number >= 0'),
    ('Recipe', dict(cosine='no'), 'cosine must be True or False'),
    ('Recipe', dict(momentum=0.0), 'nesterov needs a momentum above 0'),
]


@pytest.mark.parametrize('name, kwargs, message', BAD_ARGUMENTS)
def test_bad_arguments_fail_at_once_with_a_one_line_error(d2l, framework, name, kwargs,
                                                          message):
    with pytest.raises(ValueError) as error:
        getattr(d2l, name)(**kwargs)
    assert message in str(error.value) and '\n' not in str(error.value)
    assert str(error.value).startswith(f'{name}: ')


def test_a_bad_input_shape_names_the_expected_layout(d2l, framework):
    model = d2l.RegNetX32()
    for call in (lambda: d2l.param_count(model, (96, 96)),
                 lambda: model.layer_summary((96, 96))):
        with pytest.raises(ValueError, match=r'X_shape must be four positive integers'):
            call()


def test_flax_style_strides_are_accepted(d2l, framework):
    block = d2l.ResNeXtBlock(16, 8, 1, use_1x1conv=True, strides=(2, 2))
    assert d2l.try_layer(block, image_shape(d2l, 1, 8, 8))[0] == image_shape(d2l, 1, 4, 16)


def test_the_generated_module_can_be_imported_first(framework):
    """As unpickling a model does: the generated module before the framework module."""
    module = f'd2lsupport.chapter.{MODULES[framework]}'
    out = subprocess.run([sys.executable, '-c', f'import {module} as m; print(m.RegNetX32.__name__)'],
                         capture_output=True, text=True, timeout=300)
    assert out.stdout.strip() == 'RegNetX32', out.stderr[-500:]


def test_the_framework_module_gives_the_chapters_classes(d2l, framework):
    generated = importlib.import_module(f'd2lsupport.chapter.{MODULES[framework]}')
    assert (d2l.AnyNet, d2l.RegNetX32, d2l.RegNetY32) == \
        (generated.AnyNet, generated.RegNetX32, generated.RegNetY32)
    with pytest.raises(AttributeError, match='has no attribute'):
        d2l.RegNetZ32


def test_every_framework_module_exports_exactly_the_shared_names_and_its_extras(d2l, framework):
    extras = core.EXTRAS.get(framework, ())
    assert len(set(core.PUBLIC_NAMES)) == len(core.PUBLIC_NAMES)
    assert not set(extras) & set(core.PUBLIC_NAMES)
    assert sorted(d2l.__all__) == sorted([*core.PUBLIC_NAMES, *extras])
    for name in d2l.__all__:
        assert getattr(d2l, name) is not None, name
    own = {name for name, value in vars(d2l).items()
           if not name.startswith('_') and getattr(value, '__module__', None) == d2l.__name__}
    assert own <= set(d2l.__all__), own - set(d2l.__all__)


def test_a_checkpoint_holds_the_model_and_the_optimizer(d2l, framework, mirror, monkeypatch):
    monkeypatch.delenv('D2L_SMALL_BUDGET', raising=False)
    trainer = tiny_fit(d2l, framework, 1, d2l.Recipe())
    state = trainer.state()
    assert sorted(state) == ['model', 'optimizer']
    assert all(isinstance(part, bytes) and part for part in state.values())


def test_auto_trains_exactly_as_float32_on_a_cpu_without_bfloat16(d2l, framework, mirror,
                                                                  monkeypatch, capsys):
    monkeypatch.delenv('D2L_SMALL_BUDGET', raising=False)
    monkeypatch.setattr(trainer_lib, 'cpu_bfloat16', lambda: None)
    auto = tiny_fit(d2l, framework, 1, precision='auto')
    said = 'computing in float32 (this CPU has no bfloat16 instructions' in capsys.readouterr().out
    assert said == d2l.Trainer.bfloat16      # said where 'auto' had a choice to make
    plain = tiny_fit(d2l, framework, 1, precision='float32')
    assert (auto.precision, auto.train_loss, auto.val_loss) == \
        ('float32', plain.train_loss, plain.val_loss)


def test_bfloat16_computes_in_bfloat16_or_says_it_cannot(d2l, framework, mirror, monkeypatch):
    monkeypatch.delenv('D2L_SMALL_BUDGET', raising=False)
    if not d2l.Trainer.bfloat16:
        with pytest.raises(ValueError, match=r"precision='bfloat16' is not available in the"):
            d2l.Trainer(max_epochs=1, precision='bfloat16')
        return
    low, plain = (tiny_fit(d2l, framework, 1, precision=p) for p in ('bfloat16', 'float32'))
    # the same training to bfloat16's 3 significant digits, and not bit for bit
    assert low.val_loss == pytest.approx(plain.val_loss, rel=0.05)
    assert low.val_loss != plain.val_loss and low.precision == 'bfloat16'
