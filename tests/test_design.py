"""Tests for d2lsupport.design: width rule, samplers, EDFs, complexity, CLI."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from d2lsupport import design, design_cli
from d2lsupport.design import (
    BOTTLENECK_RATIOS, DEPTHS, DESIGN_SPACES, GROUP_WIDTHS, NUM_STAGES, SPACES, STEM_WIDTH,
    WIDTHS, AnyNetConfig, RegNetParams, complexity, edf, edf_summary, plot_edfs,
    regnet_widths, sample_config)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGNETX32 = design.REGNETX32
TINY = AnyNetConfig(8, [(1, 16, 4, 2)])

# ---------------------------------------------------------------- width rule

# (depth, w0, wa, wm, group width) of pycls's published RegNetX configs.
PYCLS_REGNETX = {
    '200MF': ((13, 24, 36.44, 2.49, 8), [1, 1, 4, 7], [24, 56, 152, 368], 8),
    '400MF': ((22, 24, 24.48, 2.54, 16), [1, 2, 7, 12], [32, 64, 160, 384], 16),
    '800MF': ((16, 56, 35.73, 2.28, 16), [1, 3, 7, 5], [64, 128, 288, 672], 16),
}


@pytest.mark.parametrize('name', sorted(PYCLS_REGNETX))
def test_regnetx_model_zoo(name):
    (d, w0, wa, wm, g), depths, widths, gw = PYCLS_REGNETX[name]
    net = regnet_widths(w0, wa, wm, d, g)
    assert net == {'depths': depths, 'widths': widths, 'group_widths': [gw] * 4}


def test_width_rule_steps():
    u = design.linear_widths(24, 24.48, 3)
    assert u == pytest.approx([24, 48.48, 72.96])
    assert design.quantize_widths(u, 24, 2.54) == [24, 64, 64]
    assert design.to_stages([24, 64, 64]) == ([1, 2], [24, 64])


def test_make_compatible():
    # Group width capped by the bottleneck width; widths rounded to multiples
    # of it, ties to even as in pycls: 40 / 16 = 2.5 -> 2, 56 / 16 = 3.5 -> 4.
    assert design.make_compatible([8, 40, 56], 16) == ([8, 32, 64], [8, 16, 16])
    # Ratio 4: bottleneck widths 8 (group width capped at 8) and 24 -> 32.
    assert design.make_compatible([32, 96], 16, 4) == ([32, 128], [8, 16])


def test_block_widths_are_what_the_network_uses_per_block():
    widths = design.block_widths(24, 24.48, 2.54, 22, 16)   # RegNetX-400MF
    assert widths == [32] + [64] * 2 + [160] * 7 + [384] * 12
    assert design.block_widths(32, 5, 2.5, 10, 16) == [32] * 4 + [80] * 6   # RegNetX32


def test_plot_width_rule_draws_the_networks_widths():
    ax = design.plot_width_rule(w0=24, wa=24.48, wm=2.54, depth=22, group_width=16)
    line, steps = ax.get_lines()
    assert list(line.get_ydata()) == pytest.approx(design.linear_widths(24, 24.48, 22))
    assert list(steps.get_ydata()) == design.block_widths(24, 24.48, 2.54, 22, 16)


@pytest.mark.parametrize('args', [(20, 24.0, 2.5, 10, 8), (24, 24.0, 1.0, 10, 8),
                                  (24, -1.0, 2.5, 10, 8), (24, 24.0, 2.5, 0, 8),
                                  (24, 24.0, 2.5, 10, 0)])
def test_regnet_widths_rejects_bad_parameters(args):
    with pytest.raises(ValueError):
        regnet_widths(*args)


# ------------------------------------------------------------- design spaces

def test_the_table_declares_each_space_once_with_a_fixed_identifier():
    # the identifiers seed the committed studies: they must never change
    assert [(s.name, s.identifier) for s in DESIGN_SPACES] == [
        ('A', 0), ('B', 1), ('C', 2), ('D', 3), ('E', 4), ('RegNetX', 5)]
    assert SPACES == tuple(s.name for s in DESIGN_SPACES)
    assert [design.space_name(s) for s in SPACES] == [
        'AnyNetX_A', 'AnyNetX_B', 'AnyNetX_C', 'AnyNetX_D', 'AnyNetX_E', 'RegNetX']
    with pytest.raises(ValueError, match="unknown design space 'F'; choose from A, B"):
        design.space_name('F')


def check_in_space(config, space):
    """What the table says of `space`, checked directly on a sample."""
    spec = design.design_space(space)
    stages = config.stages
    assert config.stem_width == STEM_WIDTH and len(stages) == NUM_STAGES
    for d, w, g, b in stages:
        assert DEPTHS[0] <= d <= DEPTHS[1]
        assert WIDTHS[0] <= w <= WIDTHS[1] and w % 8 == 0
        assert b in BOTTLENECK_RATIOS and g in GROUP_WIDTHS
        assert w % b == 0 and g <= w // b and (w // b) % g == 0
    depths, widths, groups, ratios = zip(*stages)
    if spec.shared_bottleneck_ratio:
        assert len(set(ratios)) == 1
    if spec.shared_group_width:
        assert len(set(groups)) == 1
    if spec.nondecreasing_widths:
        assert list(widths) == sorted(widths)
    if spec.nondecreasing_depths:
        assert list(depths) == sorted(depths)
    assert (config.regnet is not None) == spec.regnet_rule
    if spec.regnet_rule:
        p = config.regnet
        assert set(ratios) == {p.bottleneck_ratio} and set(groups) == {p.group_width}
        assert sum(depths) == p.depth
        net = regnet_widths(p.w0, p.wa, p.wm, p.depth, p.group_width, p.bottleneck_ratio)
        assert (net['depths'], net['widths']) == (list(depths), list(widths))
    assert design.in_space(config, space)


# A network of AnyNetX_E (b = 2, g = 8, widths and depths non-decreasing), and the
# change that takes it out of each space that adds a constraint.
E_STAGES = [(1, 16, 8, 2), (2, 32, 8, 2), (2, 64, 8, 2)]
LEAVES = {'B': (0, (1, 16, 8, 1)), 'C': (0, (1, 16, 4, 2)), 'D': (0, (1, 96, 8, 2)),
          'E': (0, (3, 16, 8, 2))}


@pytest.mark.parametrize('space', LEAVES)
def test_in_space_applies_the_constraint_each_space_adds(space):
    assert all(design.in_space(AnyNetConfig(STEM_WIDTH, E_STAGES), s) for s in 'ABCDE')
    index, stage = LEAVES[space]
    stages = [stage if i == index else s for i, s in enumerate(E_STAGES)]
    config = AnyNetConfig(STEM_WIDTH, stages)
    following = SPACES[SPACES.index(space):SPACES.index('E') + 1]
    assert design.in_space(config, SPACES[SPACES.index(space) - 1])
    assert not any(design.in_space(config, s) for s in following)


def test_in_space_needs_the_stem_the_ranges_and_for_regnetx_the_rule():
    assert not design.in_space(AnyNetConfig(32, E_STAGES), 'A')
    assert not design.in_space(AnyNetConfig(STEM_WIDTH, E_STAGES[:2]), 'A')
    assert not design.in_space(AnyNetConfig(STEM_WIDTH, [(5, 16, 8, 2)] + E_STAGES[1:]), 'A')
    assert not design.in_space(AnyNetConfig(STEM_WIDTH, E_STAGES, se_ratio=0.25), 'A')
    regnetx = sample_config('RegNetX', np.random.default_rng(0))
    assert not design.in_space(AnyNetConfig(STEM_WIDTH, regnetx.stages), 'RegNetX')
    assert not design.in_space(AnyNetConfig(STEM_WIDTH, E_STAGES), 'RegNetX')


# ------------------------------------------------------------------ samplers

def test_regnetx_draws_every_bottleneck_ratio_as_anynetx_e():
    rng = np.random.default_rng(0)
    ratios = {sample_config('RegNetX', rng).stages[0].bottleneck_ratio for _ in range(60)}
    assert ratios == set(BOTTLENECK_RATIOS)


@pytest.mark.parametrize('space', SPACES)
def test_networks_at_one_cost_are_drawn_from_the_space(space):
    config, draws = design.sample_at_cost(space, np.random.default_rng(7), 0.5, 0.1)
    check_in_space(config, space)
    assert abs(design.complexity(config)['flops'] / 0.5e6 - 1) <= 0.1
    # the rejected draws are the space's own: redrawing with the same generator
    # gives draws - 1 networks outside the band, then this one
    rng = np.random.default_rng(7)
    outside = [sample_config(space, rng) for _ in range(draws - 1)]
    assert all(abs(design.complexity(c)['flops'] / 0.5e6 - 1) > 0.1 for c in outside)
    assert sample_config(space, rng) == config


def test_a_cost_that_the_space_never_reaches_is_a_clear_error():
    with pytest.raises(ValueError, match='no network within 10% of 500 MFLOPs in 50 draws'):
        design.sample_at_cost('A', np.random.default_rng(0), 500, max_draws=50)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), space=st.sampled_from(SPACES))
def test_samples_respect_their_space(seed, space):
    rng = np.random.default_rng(seed)
    for _ in range(3):
        check_in_space(sample_config(space, rng), space)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), space=st.sampled_from(SPACES))
def test_sampling_is_deterministic(seed, space):
    first = sample_config(space, np.random.default_rng(seed))
    assert first == sample_config(space, np.random.default_rng(seed))
    assert AnyNetConfig.from_json(json.dumps(first.to_json())) == first


def test_samples_vary():
    rng = np.random.default_rng(0)
    for space in SPACES:
        configs = {json.dumps(sample_config(space, rng).to_json()) for _ in range(20)}
        assert len(configs) > 10


def test_log_uniform_covers_range():
    rng = np.random.default_rng(1)
    draws = [design.log_uniform(rng, 8, 128, 8) for _ in range(3000)]
    assert set(draws) == set(range(8, 129, 8))
    assert draws.count(8) > draws.count(128)


@pytest.mark.parametrize('call, message', [
    (lambda: sample_config('F', np.random.default_rng(0)), "unknown design space 'F'"),
    (lambda: sample_config('A', 0), 'rng must be a numpy Generator'),
    (lambda: design.sample_at_cost('A', np.random.default_rng(0), -1),
     'sample_at_cost: mflops must be a finite number > 0, got -1'),
    (lambda: design.sample_at_cost('A', np.random.default_rng(0), 0.5, tolerance=0),
     'sample_at_cost: tolerance must be a finite number > 0, got 0')])
def test_bad_sampling_arguments_are_an_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------------- EDFs

def test_edf_by_hand():
    x, f = edf([0.3, 0.1, 0.2, 0.2], grid=[0.05, 0.1, 0.2, 0.25, 0.3])
    np.testing.assert_allclose(f, [0, 0.25, 0.75, 0.75, 1])
    x, f = edf([0.3, 0.1, 0.2, 0.2])
    np.testing.assert_allclose(x, [0.1, 0.2, 0.2, 0.3])
    np.testing.assert_allclose(f, [0.25, 0.75, 0.75, 1])


def test_edf_summary():
    assert edf_summary([0.3, 0.1, 0.2, 0.2]) == pytest.approx(
        {'n': 4, 'min': 0.1, 'median': 0.2, 'mean': 0.2})


def test_plot_edfs():
    matplotlib = pytest.importorskip('matplotlib')
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    ax = plot_edfs({'A': [0.3, 0.2, 0.25], 'RegNetX': [0.1, 0.15]})
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ['AnyNetX_A (n=3)', 'RegNetX (n=2)']
    assert (ax.get_xlabel(), ax.get_ylabel()) == ('error', 'cumulative prob.')
    plt.close(ax.figure)


# ------------------------------------------------------------ configurations

def test_regnetx32_and_regnety32_come_from_the_rule():
    assert REGNETX32.stages == ((4, 32, 16, 1), (6, 80, 16, 1)) and REGNETX32.stem_width == 32
    assert REGNETX32.regnet == RegNetParams(w0=32, wa=5, wm=2.5, depth=10, group_width=16,
                                            stem_width=32)
    assert design.REGNETY32 == REGNETX32.with_se_ratio(0.25)
    assert (design.REGNETY32.stages, design.REGNETY32.se_ratio) == (REGNETX32.stages, 0.25)


def test_anynet_arguments_are_the_chapters_anynet_arguments():
    config = AnyNetConfig(8, [(1, 16, 4, 2), (2, 32, 8, 4)], se_ratio=0.25, num_classes=3)
    assert design.anynet_arguments(config) == {
        'arch': ((1, 16, 4, 0.5), (2, 32, 8, 0.25)), 'stem_width': 8,
        'num_classes': 3, 'se_ratio': 0.25}


def test_json_keeps_the_format_of_the_results_files():
    config = sample_config('RegNetX', np.random.default_rng(5))
    p = config.regnet
    assert config.to_json() == {
        'stem_width': 16, 'stages': [list(s) for s in config.stages],
        'regnet': {'depth': p.depth, 'w0': p.w0, 'wa': p.wa, 'wm': p.wm,
                   'group_width': p.group_width, 'bottleneck': p.bottleneck_ratio}}
    assert list(config.to_json()['regnet']) == ['depth', 'w0', 'wa', 'wm', 'group_width',
                                                'bottleneck']
    assert TINY.to_json() == {'stem_width': 8, 'stages': [[1, 16, 4, 2]]}
    other = AnyNetConfig(8, [(1, 16, 4, 2)], se_ratio=0.25, num_classes=3)
    assert other.to_json() == {'stem_width': 8, 'stages': [[1, 16, 4, 2]],
                               'se_ratio': 0.25, 'num_classes': 3}
    for c in (config, other, design.REGNETY32):
        assert AnyNetConfig.from_json(json.dumps(c.to_json())) == c


def test_a_record_of_the_first_study_reads_as_b_equal_to_one():
    # the first study (results/study.jsonl) was drawn while RegNetX fixed b = 1
    data = {'stem_width': 16, 'stages': [[1, 8, 2, 1], [1, 16, 2, 1], [2, 48, 2, 1]],
            'regnet': {'depth': 4, 'w0': 8, 'wa': 21.1, 'wm': 2.464, 'group_width': 2}}
    config = AnyNetConfig.from_json(data)
    assert config.regnet.bottleneck_ratio == 1 and design.in_space(config, 'RegNetX')


@pytest.mark.parametrize('args, kwargs, message', [
    ((16, [(1.5, 16, 8, 1)]), {}, 'stage 1 depth must be a positive integer, got 1.5'),
    ((16, [(1, -8, 8, 1)]), {}, 'stage 1 width must be a positive integer, got -8'),
    ((16, [(1, '16', 8, 1)]), {}, "stage 1 width must be a positive integer, got '16'"),
    ((16, [(1, 16, 8, 1), (1, 16, 8, 0)]), {}, 'stage 2 bottleneck_ratio must be a positive'),
    ((16, [(1, 16, 8)]), {}, 'stage 1 must be .depth, width, group_width, bottleneck_ratio'),
    ((16, '1,16,8,1'), {}, 'stages must be a non-empty list'),
    ((16, []), {}, 'stages must be a non-empty list'),
    ((16.0, [(1, 16, 8, 1)]), {}, 'stem_width must be a positive integer, got 16.0'),
    ((16, [(1, 24, 16, 1)]), {}, r'stage 1 \(1, 24, 16, 1\): group width 16 must divide'),
    ((16, [(1, 16, 8, 1)]), dict(se_ratio=2), 'se_ratio must be a number from 0 to 1'),
    ((16, [(1, 16, 8, 1)]), dict(se_ratio=0.01), 'leaves no squeeze channel'),
    ((16, [(1, 16, 8, 1)]), dict(num_classes=0), 'num_classes must be a positive integer'),
    ((16, [(1, 16, 8, 1)]), dict(regnet={'w0': 8}), 'regnet must be a RegNetParams or None'),
    ((32, [(4, 32, 16, 1)]), dict(regnet=REGNETX32.regnet), 'build it with RegNetParams.config'),
])
def test_a_bad_configuration_is_a_one_line_error(args, kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        AnyNetConfig(*args, **kwargs)
    assert str(error.value).startswith('AnyNetConfig: ') and '\n' not in str(error.value)


@pytest.mark.parametrize('change, message', [
    (dict(w0=20), 'w0 must be a multiple of q = 8, got 20'),
    (dict(w0='32'), "w0 must be a positive integer, got '32'"),
    (dict(wa=-1.0), 'wa must be a finite number >= 0, got -1.0'),
    (dict(wm=1.0), 'wm must be a finite number > 1, got 1.0'),
    (dict(wm=float('nan')), 'wm must be a finite number > 1, got nan'),
    (dict(depth=0), 'depth must be a positive integer, got 0'),
    (dict(group_width=2.5), 'group_width must be a positive integer, got 2.5'),
    (dict(bottleneck_ratio=0.5), 'bottleneck_ratio must be a finite number >= 1'),
    (dict(se_ratio=-0.25), 'se_ratio must be a number from 0 to 1'),
])
def test_bad_regnet_parameters_are_a_one_line_error(change, message):
    good = dict(w0=32, wa=5, wm=2.5, depth=10, group_width=16)
    with pytest.raises(ValueError, match=f'^RegNetParams: {message}'):
        RegNetParams(**{**good, **change})


# ---------------------------------------------------------------- complexity

def test_regnetx32_params():
    assert complexity(REGNETX32)['params'] == 179_290


def test_tiny_network_by_hand():
    # 1 x 8 x 8 input; stem 3x3/2 -> 8 x 4 x 4; block 8 -> 16, bottleneck
    # 16 / 2 = 8 channels in 8 / 4 = 2 groups, stride 2 -> 2 x 2; dense 16 -> 10.
    params = (9 * 8 + 8 + 16                  # stem conv + BN
              + 8 * 8 + 8 + 16                # conv1 1x1 8 -> 8
              + 9 * 4 * 8 + 8 + 16            # conv2 3x3, 2 groups of 4
              + 8 * 16 + 16 + 32              # conv3 1x1 8 -> 16
              + 8 * 16 + 16 + 32              # projection 1x1/2 8 -> 16
              + 16 * 10 + 10)                 # dense
    flops = (16 * 9 * 8 + 16 * 8 * 8 + 4 * 9 * 4 * 8
             + 4 * 8 * 16 + 4 * 8 * 16 + 16 * 10)
    acts = 16 * 8 + 16 * 8 + 4 * 8 + 4 * 16 + 4 * 16 + 10
    assert complexity(TINY, image_size=8) == {
        'params': params, 'flops': flops, 'acts': acts}
    assert (params, flops, acts) == (1018, 4512, 426)
    # SE on the block input width 8: 2 channels; two 1x1 convs on 1 x 1 maps.
    se = complexity(TINY.with_se_ratio(0.25), image_size=8)
    assert se == {'params': params + 8 * 2 + 2 + 2 * 8 + 8,
                  'flops': flops + 2 * 8 * 2, 'acts': acts + 2 + 8}


def test_odd_sizes_round_up():
    # 28 -> 14 -> 7 -> 4 -> 2: flops of a 3x3/2 conv on 7 x 7 count 4 x 4.
    cx = design.conv_cx({'h': 7, 'w': 7, 'params': 0, 'flops': 0, 'acts': 0},
                        1, 1, 3, stride=2)
    assert (cx['h'], cx['w'], cx['flops']) == (4, 4, 16 * 9)


def test_complexity_reads_the_classes_of_the_configuration():
    more = complexity(AnyNetConfig(8, [(1, 16, 4, 2)], num_classes=12), image_size=8)
    assert more['params'] - complexity(TINY, image_size=8)['params'] == 2 * 16 + 2


# ----------------------------------------------------------------------- CLI

def run_cli(*args):
    env = {**os.environ, 'PYTHONPATH': ROOT}
    return subprocess.run([sys.executable, '-m', 'd2lsupport.design', *args],
                          capture_output=True, text=True, env=env, cwd=ROOT)


def test_cli():
    out = run_cli('regnet', '--w0', '24', '--wa', '24.48', '--wm', '2.54',
                  '--depth', '22', '--group-width', '16')
    assert json.loads(out.stdout) == regnet_widths(24, 24.48, 2.54, 22, 16)
    out = run_cli('complexity', '--stem', '32', '--stage', '4,32,16,1',
                  '--stage', '6,80,16,1', '--image-size', '96', '--se', '0.25')
    assert json.loads(out.stdout) == complexity(design.REGNETY32, image_size=96)
    out = run_cli('sample', '--space', 'E', '--seed', '3', '-n', '4')
    lines = out.stdout.splitlines()
    rng = np.random.default_rng(3)
    assert [AnyNetConfig.from_json(s) for s in lines] == [
        sample_config('E', rng) for _ in range(4)]


@pytest.mark.parametrize('args, code, message', [
    (('complexity', '--stage', '1,24,16,1'), 1, 'group width 16 must divide'),
    (('complexity', '--stage', '1,24'), 2, "'1,24' is not depth,width,group_width,bottleneck"),
    (('complexity', '--stage', '1,16,8,1', '--se', '0.01'), 1, 'no squeeze channel'),
    (('sample', '--space', 'F'), 2, "invalid choice: 'F'"),
    (('sample', '--space', 'A', '-n', '0'), 2, "argument -n: '0' is not a positive integer"),
    (('sample', '--space', 'A', '--seed', '-1'), 2, "'-1' is not an integer >= 0"),
    (('regnet', '--w0', '20', '--wa', '24', '--wm', '2.5', '--depth', '8',
      '--group-width', '8'), 1, 'w0 must be a multiple of q = 8'),
    (('regnet', '--w0', '24', '--wa', '24', '--wm', '2.5', '--depth', '8',
      '--group-width', '8', '--bottleneck-ratio', 'two'), 2, "'two' is not a number")])
def test_cli_errors(capsys, args, code, message):
    try:
        found = design_cli.main(list(args))
    except SystemExit as exit:   # the parser's errors
        found = exit.code
    out = capsys.readouterr()
    assert found == code and out.out == ''
    assert out.err.count('\n') == 1 and message in out.err


def test_se_width_rounds_a_share_of_the_block_input():
    assert design.se_width(0.25, 80) == 20 and design.se_width(0.25, 6) == 2
    assert design.se_width(0.0, 80) == 0
    with pytest.raises(ValueError, match='no squeeze channel'):
        TINY.with_se_ratio(0.01)
    with pytest.raises(ValueError, match='>= 0'):
        design.se_width(-0.25, 80)
