"""Tests for d2lsupport.design: width rule, samplers, EDFs, complexity, CLI."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from d2lsupport import design
from d2lsupport.design import (
    BOTTLENECK_RATIOS, DEPTHS, GROUP_WIDTHS, NUM_STAGES, SPACES, STEM_WIDTH,
    WIDTHS, AnyNetConfig, complexity, edf, edf_summary, plot_edfs,
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


# ------------------------------------------------------------------ samplers

def check_in_space(config, space):
    stages = config.stages
    assert config.stem_width == STEM_WIDTH and len(stages) == NUM_STAGES
    for d, w, g, b in stages:
        assert DEPTHS[0] <= d <= DEPTHS[1]
        assert WIDTHS[0] <= w <= WIDTHS[1] and w % 8 == 0
        assert b in BOTTLENECK_RATIOS and g in GROUP_WIDTHS
        assert w % b == 0 and g <= w // b and (w // b) % g == 0
    depths, widths, groups, ratios = zip(*stages)
    if space in ('B', 'C', 'D', 'E'):
        assert len(set(ratios)) == 1
    if space in ('C', 'D', 'E'):
        assert len(set(groups)) == 1
    if space in ('D', 'E', 'RegNetX'):
        assert list(widths) == sorted(widths)
    if space == 'E':
        assert list(depths) == sorted(depths)
    if space == 'RegNetX':
        p = config.regnet
        assert set(ratios) == {p['bottleneck']} and set(groups) == {p['group_width']}
        assert sum(depths) == p['depth']
        net = regnet_widths(p['w0'], p['wa'], p['wm'], p['depth'], p['group_width'],
                            p['bottleneck'])
        assert (net['depths'], net['widths']) == (list(depths), list(widths))


def test_regnetx_draws_every_bottleneck_ratio_as_anynetx_e():
    rng = np.random.default_rng(0)
    ratios = {sample_config('RegNetX', rng).stages[0].bottleneck for _ in range(60)}
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


def test_unknown_space():
    with pytest.raises(ValueError):
        sample_config('F', np.random.default_rng(0))


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
    se = complexity(TINY, image_size=8, se_ratio=0.25)
    assert se == {'params': params + 8 * 2 + 2 + 2 * 8 + 8,
                  'flops': flops + 2 * 8 * 2, 'acts': acts + 2 + 8}


def test_odd_sizes_round_up():
    # 28 -> 14 -> 7 -> 4 -> 2: flops of a 3x3/2 conv on 7 x 7 count 4 x 4.
    cx = design.conv_cx({'h': 7, 'w': 7, 'params': 0, 'flops': 0, 'acts': 0},
                        1, 1, 3, stride=2)
    assert (cx['h'], cx['w'], cx['flops']) == (4, 4, 16 * 9)


def test_an_unbuildable_configuration_is_an_error():
    with pytest.raises(ValueError, match='stage 1 .* group width 16 must divide'):
        AnyNetConfig(16, [(1, 24, 16, 1)])
    with pytest.raises(ValueError, match='need a positive stem width'):
        AnyNetConfig(0, [(1, 24, 8, 1)])


def test_a_configuration_survives_the_trip_through_json():
    config = sample_config('RegNetX', np.random.default_rng(5))
    data = json.loads(json.dumps(config.to_json()))
    assert data['stages'] == [list(s) for s in config.stages] and 'regnet' in data
    assert AnyNetConfig.from_json(data) == config
    assert AnyNetConfig.from_json(data).stages[0].group_width == config.regnet['group_width']


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
    assert json.loads(out.stdout) == complexity(REGNETX32, image_size=96,
                                                se_ratio=0.25)
    out = run_cli('sample', '--space', 'E', '--seed', '3', '-n', '4')
    lines = out.stdout.splitlines()
    rng = np.random.default_rng(3)
    assert [AnyNetConfig.from_json(s) for s in lines] == [
        sample_config('E', rng) for _ in range(4)]


@pytest.mark.parametrize('args, code', [
    (('complexity', '--stage', '1,24,16,1'), 1),
    (('complexity', '--stage', '1,24'), 2),
    (('sample', '--space', 'F'), 2),
    (('regnet', '--w0', '20', '--wa', '24', '--wm', '2.5', '--depth', '8',
      '--group-width', '8'), 1)])
def test_cli_errors(args, code):
    out = run_cli(*args)
    assert out.returncode == code and out.stdout == ''
    assert len(out.stderr.strip().splitlines()) == 1


def test_se_width_rounds_a_share_of_the_block_input():
    assert design.se_width(0.25, 80) == 20 and design.se_width(0.25, 6) == 2
    assert design.se_width(0.0, 80) == 0
    with pytest.raises(ValueError, match='no squeeze channel'):
        complexity(TINY, se_ratio=0.01)
    with pytest.raises(ValueError, match='>= 0'):
        design.se_width(-0.25, 80)
