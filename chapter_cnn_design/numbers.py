"""Where every number in the chapter's prose (cnn-design.md) and in the README's
results comes from; `python -m d2lsupport.prose` and `tests/test_prose.py` check them.

Each claim quotes the prose exactly and recomputes its numbers from their source:
a record under results/, a recorded output of the chapter (tests/notebooks/, whose
deterministic cells nbval checks against the live chapter), `d2lsupport.design`,
or plain arithmetic. Facts from the paper are claims whose source is 'paper, ...'.
"""
import json
import math
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from d2lsupport import design, study
from d2lsupport.core import FRAMEWORKS
from d2lsupport.notebook import cell_tabs
from d2lsupport.prose import Claim

ROOT = Path(__file__).resolve().parents[1]
PAPER = 'paper (Radosavovic et al., 2020)'


# ------------------------------------------------------------------ sources

@lru_cache
def record(framework, model='regnetx32'):
    """The training record of a framework's run of the chapter (make run)."""
    return json.loads((ROOT / 'results' / f'{model}.{framework}.json').read_text())


@lru_cache
def recorded_notebook(framework):
    import nbformat
    return nbformat.read(ROOT / 'tests' / 'notebooks' / f'cnn-design.{framework}.ipynb', 4)


def recorded_output(framework, code):
    """The text printed by the chapter's cell containing `code`, as recorded for
    nbval in tests/notebooks/ (cells marked .check-output are compared there)."""
    for cell in recorded_notebook(framework).cells:
        tabs = cell_tabs(cell.source)
        if cell.cell_type == 'code' and code in cell.source and (
                framework in tabs or 'all' in tabs):
            return ''.join(o.get('text', '') for o in cell.get('outputs', []))
    raise LookupError(f'no cell with {code!r} in the recorded {framework} notebook')


def summary_rows(framework, model):
    """(output shape, parameters) per row of `model().layer_summary(...)`, and the total."""
    text = recorded_output(framework, f'{model}().layer_summary')
    rows = [(m.group(1), int(m.group(2).replace(',', ''))) for m in
            re.finditer(r'output shape: (\([^)]*\))\s+parameters:\s+([\d,]+)', text)]
    total = int(re.search(r'total parameters: ([\d,]+)', text).group(1).replace(',', ''))
    return rows, total


def same_in_every_framework(model):
    """The parameter total of `model`, checked to be the same in all four tabs."""
    totals = {fw: summary_rows(fw, model)[1] for fw in FRAMEWORKS}
    if len(set(totals.values())) != 1:
        raise ValueError(f'{model} parameter totals differ: {totals}')
    return totals['pytorch']


@lru_cache
def study_records():
    return study.read_results(study.RESULTS_FILE)


def errors(space):
    return study.errors_by_space(study_records())[space]


@lru_cache
def shifts(which):
    """{(a, b): (median shift, its interval)} in points for each compared pair of the
    'first' study or the one at equal 'cost', with the draws that study.comparisons makes."""
    by_space = study.errors_by_space(study_records() if which == 'first' else cost_records())
    rng, found = np.random.default_rng(0), {}
    for a, b in study.COMPARISONS:
        shift, interval = study.median_shift(by_space[a], by_space[b], rng)
        found[(a, b)] = 100 * shift, [100 * x for x in interval]
    return found


def median_shift(a, b):
    """The first study's median shift from space a to b and its interval, in points."""
    return shifts('first')[(a, b)]


def median_flops(space):
    return np.median([r['complexity']['flops'] for r in study_records()
                      if r['space'] == space]) / 1e6


def cost_corrected(space):
    residuals, _ = study.cost_residuals(study_records())
    spaces = np.array([r['space'] for r in study_records()])
    return 100 * np.median(residuals[spaces == space])


def by_bottleneck(b):
    return 100 * np.median(study.errors_by_bottleneck_ratio(study_records())[b])


@lru_cache
def cost_records():
    """The study at equal cost (results/study-cost.jsonl)."""
    return study.read_results(study.COST_FILE)


@lru_cache
def long_records():
    """Its first networks retrained for four epochs (results/study-long.jsonl)."""
    return study.read_results(study.LONG_FILE)


def cost_errors(space):
    return study.errors_by_space(cost_records())[space]


def cost_shift(a, b):
    """The equal-cost study's median shift from space a to b and its interval, in points."""
    return shifts('cost')[(a, b)]


def cost_median(space):
    return 100 * np.median(cost_errors(space))


def mean_draws(space):
    return np.mean([r['draws'] for r in cost_records() if r['space'] == space])


@lru_cache
def whole_space_median_mflops(space, n=2000):
    """The median cost of `n` networks drawn from the whole space (seed 0)."""
    rng = np.random.default_rng(0)
    return np.median([design.complexity(design.sample_config(space, rng))['flops']
                      for _ in range(n)]) / 1e6


@lru_cache
def first_study_half_width(n):
    """The planned interval half-width (points) for `n` networks per space, from the
    first study's cost-corrected errors of its networks of 0.25 to 1 MFLOPs."""
    residuals, _ = study.cost_residuals(study_records())
    mflops = np.array([r['complexity']['flops'] for r in study_records()]) / 1e6
    return 100 * study.expected_half_width(residuals[(mflops >= 0.25) & (mflops <= 1)], n)


@lru_cache
def rank_agreement():
    return study.rank_agreement(cost_records(), long_records())


def f(x, digits=0):
    return f'{x:.{digits}f}'


def signed(x, digits=1):
    return f'{x:+.{digits}f}'


REGNETX_400MF = dict(w0=24, wa=24.48, wm=2.54, depth=22, group_width=16)
# the rule's parameters of the chapter's RegNetX32 that its cells pass to regnet_widths
REGNETX32_RULE = {key: getattr(design.REGNETX32.regnet, key)
                  for key in ('w0', 'wa', 'wm', 'depth', 'group_width')}


def width_ratios():
    """Block width over the linear rule, per block of RegNetX-400MF."""
    p = REGNETX_400MF
    u = np.array(design.linear_widths(p['w0'], p['wa'], p['depth']))
    return np.array(design.block_widths(**p)) / u


def stages_start_above_and_end_below():
    net = design.regnet_widths(**REGNETX_400MF)
    ratios, j = width_ratios(), 0
    for d in net['depths']:
        if d > 1 and not (ratios[j] > 1 > ratios[j + d - 1]):
            return False
        j += d
    return True


# ------------------------------------------------------------------ claims

CLAIMS = []

# Introduction and the AnyNet design space: kernel sizes, strides and counts that are
# definitions of the networks (the code cells and d2l.ResNeXtBlock build them so).
CLAIMS += [
    Claim('$3 \\times 3$', 'definition: the kernel of the grouped convolution and the stem'),
    Claim('$1 \\times 1$', 'definition: the kernel of the projecting and SE convolutions'),
    Claim('convolution with stride 2', 'definition: the stem and the first block of a stage'),
    Claim('Its first block uses stride 2', 'definition: AnyNet.stage'),
    Claim('convolution (with stride 2)', 'definition: the projection shortcut of a stage'),
    Claim('Stages $i = 1, \\ldots, s$', 'definition: numbering of the stages'),
    Claim('For ImageNet\'s $224 \\times 224$ images', 'paper: ImageNet input size'),
    Claim('five halvings: $224 / 2^5 = 7$', 'arithmetic',
          holds=lambda: 224 / 2 ** 5 == 7),
    Claim('$b_i \\geq 1$', 'definition: a bottleneck ratio'),
    Claim('the multiplier $1 / b_i$', 'definition: bot_mul in the code'),
    Claim('With\n$b_i = 1$, as in RegNetX32, `bot_mul` is 1 too', 'design.REGNETX32',
          holds=lambda: all(s.bottleneck_ratio == 1 for s in design.REGNETX32.stages)),
    Claim('$1 + 4 \\times 4 = 17$ numbers', 'arithmetic', holds=lambda: 1 + 4 * 4 == 17),
    Claim('The paper counts 16, because it fixes the stem at 32\nchannels',
          f'{PAPER}, Sec. 3.2: 16 degrees of freedom, stem of 32 channels'),
    Claim('momentum 0.1 in PyTorch\'s convention (0.9 in the convention',
          'definition: BatchNorm momentum in the four tabs (d2l framework modules)'),
    Claim('$\\epsilon = 10^{-5}$', 'definition: BatchNorm epsilon in the four tabs'),
    Claim('stride-2 convolution', 'definition'),
]

# Distributions and parameters of design spaces.
CLAIMS += [
    Claim('fixed by its 17 numbers', 'arithmetic: the count above', holds=lambda: 1 + 4 * 4 == 17),
    Claim('$2^{17} = 131{,}072$', 'arithmetic', value=lambda: ['2', '17', f'{2 ** 17:,}']),
    Claim('until they had 500 within a\nnarrow band of computational cost (their 400MF '
          'regime: 360 to 400 million multiply-adds\nper ImageNet image), trained each for '
          '10 epochs', f'{PAPER}, Sec. 3.1 and 3.2'),
]

# Our design-space studies: the one at equal cost (results/study-cost.jsonl and
# results/study-long.jsonl) and the first one (results/study.jsonl); study.summary,
# study.comparisons and study.rank_agreement print the same numbers in the chapter.
CLAIMS += [
    Claim('$28 \\times 28$', 'definition: the images of Fashion-MNIST'),
    Claim('$2 \\times 2$ after the stem and three\nstages', 'arithmetic',
          holds=lambda: 28 // 2 ** 4 == 1 and math.ceil(28 / 2 ** 4) == 2),
    Claim('one to four blocks and 8 to 128 channels per stage, and a stem of 16 channels',
          'd2lsupport.design', value=lambda: [f(design.WIDTHS[0]), f(design.WIDTHS[1]),
                                              f(design.STEM_WIDTH)],
          holds=lambda: design.DEPTHS == (1, 4)),
    Claim('a learning rate decaying from 0.1 to 0 along a cosine, then the error on the '
          '10,000\ntest images', 'results/study-cost.jsonl (budget) and d2l.Recipe',
          value=lambda: [f(cost_records()[0]['budget']['lr'], 1), '0',
                         f'{cost_records()[0]["budget"]["val_size"]:,}']),
    Claim('each space contributes\n64 networks whose cost lies within 10% of 0.5 million '
          'multiply-adds (MFLOPs) per image', 'results/study-cost.jsonl',
          value=lambda: [f(min(len(cost_errors(s)) for s in design.SPACES)),
                         f(100 * cost_records()[0]['cost']['tolerance']),
                         f(cost_records()[0]['cost']['mflops'], 1)],
          holds=lambda: len({len(cost_errors(s)) for s in design.SPACES}) == 1 and all(
              abs(r['complexity']['flops'] / 0.5e6 - 1) <= 0.1 for r in cost_records())),
    Claim('We chose 0.5\nMFLOPs because it lies near the median cost of every space',
          'median cost of 2,000 networks drawn from each whole space',
          value=lambda: f(cost_records()[0]['cost']['mflops'], 1),
          holds=lambda: all(0.3 <= whole_space_median_mflops(s) / 0.5 <= 1.5
                            for s in design.SPACES)),
    Claim('about one draw in\n12 to 20 is accepted', 'results/study-cost.jsonl (draws)',
          value=lambda: [f(min(mean_draws(s) for s in design.SPACES)),
                         f(max(mean_draws(s) for s in design.SPACES))]),
    Claim('trains for one epoch in about 19 seconds on one core',
          'results/study-cost.jsonl (median seconds, threads)',
          value=lambda: f(np.median([r['seconds'] for r in cost_records()])),
          holds=lambda: all(r['threads'] == 1 for r in cost_records())),
    Claim('We chose 64 networks because the first study below, whose errors spread '
          'similarly at similar cost, predicts bootstrap intervals of about $\\pm 0.5$ points '
          'for the median shifts with 64 networks per space, against $\\pm 0.7$ with 32',
          'study.expected_half_width on the first study (networks of 0.25 to 1 MFLOPs)',
          value=lambda: ['64', f(first_study_half_width(64), 1), '64',
                         f(first_study_half_width(32), 1), '32']),
    Claim('the\nintervals came out at about $\\pm 0.3$ points', 'study.comparisons on '
          'results/study-cost.jsonl (the mean half-width of the five intervals)',
          value=lambda: f(np.mean([(cost_shift(*p)[1][1] - cost_shift(*p)[1][0]) / 2
                                   for p in study.COMPARISONS]), 1)),
    Claim('The 384 networks took 71 minutes on two CPU\ncores, two at a time',
          'results/study-cost.jsonl (seconds over two workers)',
          value=lambda: [f(len(cost_records())),
                         f(sum(r['seconds'] for r in cost_records()) / 120)]),
    Claim('compared in pairs: 64 networks per space within 10% of 0.5 MFLOPs',
          'results/study-cost.jsonl',
          value=lambda: [f(len(cost_errors('A'))), '10', '0.5']),
    Claim('the shifts are $-0.14$ and $+0.12$ points, and both intervals include zero',
          'study.comparisons on results/study-cost.jsonl',
          value=lambda: [signed(cost_shift('A', 'B')[0], 2), signed(cost_shift('B', 'C')[0], 2)],
          holds=lambda: all(cost_shift(*p)[1][0] < 0 < cost_shift(*p)[1][1]
                            for p in (('A', 'B'), ('B', 'C')))),
    Claim('$-0.50$ points with an\ninterval from $-0.76$ to $-0.15$', 'study.comparisons',
          value=lambda: [signed(cost_shift('C', 'D')[0], 2)] +
          [signed(x, 2) for x in cost_shift('C', 'D')[1]]),
    Claim('($-0.09$ points, from $-0.45$ to $+0.19$)', 'study.comparisons',
          value=lambda: [signed(cost_shift('D', 'E')[0], 2)] +
          [signed(x, 2) for x in cost_shift('D', 'E')[1]]),
    Claim('has the lowest median error of\nthe six spaces, 13.0% against 13.4% for E',
          'study.summary on results/study-cost.jsonl',
          value=lambda: [f(cost_median('RegNetX'), 1), f(cost_median('E'), 1)],
          holds=lambda: min(design.SPACES, key=cost_median) == 'RegNetX'),
    Claim('its interval, $-0.70$ to $+0.02$ points, just\nreaches zero, so our 64 networks',
          'study.comparisons', value=lambda: [signed(x, 2) for x in cost_shift('E', 'RegNetX')[1]]
          + [f(len(cost_errors('RegNetX')))],
          holds=lambda: 0 < cost_shift('E', 'RegNetX')[1][1] < 0.05),
    Claim('all 384 networks need between 0.45 and 0.55 MFLOPs',
          'study.comparisons on results/study-cost.jsonl',
          value=lambda: [f(len(cost_records())),
                         f(min(r['complexity']['flops'] for r in cost_records()) / 1e6, 2),
                         f(max(r['complexity']['flops'] for r in cost_records()) / 1e6, 2)]),
    Claim('(a correlation of 0.03 with log FLOPs)', 'study.comparisons',
          value=lambda: f(study.cost_residuals(cost_records())[1], 2)),
    Claim('the networks with $b = 1$ have a median error of 13.6%, against 14.2% with $b = 4$',
          'study.comparisons (last line) on results/study-cost.jsonl',
          value=lambda: ['1', *(f(100 * np.median(study.errors_by_bottleneck_ratio(
              cost_records())[b]), 1) for b in (1, 4)), '4']),
    Claim("the\nstudy's first 6 networks of every space, 36 in all, were trained again with four "
          "times\nthe budget, four epochs", 'results/study-long.jsonl',
          value=lambda: [f(len(long_records()) / len(design.SPACES)), f(len(long_records()))],
          holds=lambda: all(r['budget']['epochs'] == 4 for r in long_records())
          and {r['index'] for r in long_records()} == set(range(6))),
    Claim('a correlation of 0.79, with a bootstrap interval\nfrom 0.60 to 0.89 over the 36 '
          'networks', 'study.rank_agreement on results/study-cost.jsonl and study-long.jsonl',
          value=lambda: [f(rank_agreement()[1], 2), f(rank_agreement()[2][0], 2),
                         f(rank_agreement()[2][1], 2), f(rank_agreement()[0])]),
    Claim('Four epochs lower the median error of these\nnetworks to 10.6%',
          'results/study-long.jsonl',
          value=lambda: f(100 * np.median([r['error'] for r in long_records()]), 1)),
    # the first study
    Claim('drew 32\nnetworks at random from each space', 'results/study.jsonl',
          value=lambda: f(min(len(e) for e in study.errors_by_space(study_records()).values()))),
    Claim('its RegNetX still fixed $b = 1$', 'results/study.jsonl (configurations)',
          holds=lambda: all(s[3] == 1 for r in study_records() if r['space'] == 'RegNetX'
                            for s in r['config']['stages'])),
    Claim('32 networks per space drawn from the whole spaces, with\ncosts from 0.05 to '
          '13.63 MFLOPs', 'results/study.jsonl',
          value=lambda: [f(len(errors('A'))),
                         f(min(r['complexity']['flops'] for r in study_records()) / 1e6, 2),
                         f(max(r['complexity']['flops'] for r in study_records()) / 1e6, 2)]),
    Claim('the medians moved by less\nthan 0.4 points, well within what 32 samples per '
          'space can resolve (both bootstrap\nintervals include zero)',
          'study.comparisons on results/study.jsonl', value=lambda: ['0.4', f(len(errors('A')))],
          holds=lambda: all(abs(median_shift(*p)[0]) < 0.4 and
                            median_shift(*p)[1][0] < 0 < median_shift(*p)[1][1]
                            for p in (('A', 'B'), ('B', 'C')))),
    Claim('with a median error 1.1 points higher, and E winning back most of that (1.0 point)',
          'study.comparisons', value=lambda: [f(median_shift('C', 'D')[0], 1),
                                              f(-median_shift('D', 'E')[0], 1)]),
    Claim('the median network of\nD needs 0.16 MFLOPs per image against 0.48 million for C',
          'study.comparisons', value=lambda: [f(median_flops('D'), 2), f(median_flops('C'), 2)]),
    Claim('over all 192 networks, the correlation between the error and the\nlogarithm of '
          'the FLOPs is $-0.74$', 'study.comparisons',
          value=lambda: [f(len(study_records())),
                         f(study.cost_residuals(study_records())[1], 2)]),
    Claim('more than two orders of magnitude\nof FLOPs (0.05 to 13.63 million)',
          'study.comparisons',
          value=lambda: [f(min(r['complexity']['flops'] for r in study_records()) / 1e6, 2),
                         f(max(r['complexity']['flops'] for r in study_records()) / 1e6, 2)],
          holds=lambda: max(r['complexity']['flops'] for r in study_records()) /
          min(r['complexity']['flops'] for r in study_records()) > 100),
    Claim('fit a straight\nline of error against log FLOPs to all 192 networks',
          'results/study.jsonl', value=lambda: f(len(study_records()))),
    Claim('The\nmedian residual is then $+0.2$ to $+0.4$ points for A, B and C, $-0.1$ for D, '
          '$-0.6$ for E\nand $-0.9$ for RegNetX', 'study.comparisons',
          value=lambda: [signed(min(cost_corrected(s) for s in 'ABC')),
                         signed(max(cost_corrected(s) for s in 'ABC')),
                         signed(cost_corrected('D')), signed(cost_corrected('E')),
                         signed(cost_corrected('RegNetX'))]),
    Claim('B to E drew $b$ from\n$\\{1, 2, 4\\}$ while its RegNetX fixed $b = 1$',
          'results/study.jsonl (configurations)',
          value=lambda: [f(b) for b in design.BOTTLENECK_RATIOS] + ['1']),
    Claim('the networks of B to E with $b = 1$\nhad a median error of 14.0%, against 14.6% '
          'for $b = 2$ and 15.4% for $b = 4$', 'study.comparisons (last line)',
          value=lambda: ['1', f(by_bottleneck(1), 1), f(by_bottleneck(2), 1), '2',
                         f(by_bottleneck(4), 1), '4']),
    Claim('(with 32 per space,\nabout a point)',
          'study.comparisons: the half-widths of the five intervals',
          value=lambda: f(len(errors('A'))),
          holds=lambda: all(0.5 <= (median_shift(*p)[1][1] - median_shift(*p)[1][0]) / 2 <= 1.0
                            for p in study.COMPARISONS)),
    # the live study
    Claim('draw a few networks of 0.5 MFLOPs', 'definition: the live-study cell (mflops=0.5)'),
    Claim('for one epoch on the first 10,000 training images', 'definition: the live-study '
          'cell (num_train=10_000)'),
]

# RegNet: the width rule (d2lsupport.design, printed by the chapter's cells).
def widths_before_group_rounding():
    p = REGNETX_400MF
    u = design.linear_widths(p['w0'], p['wa'], p['depth'])
    return design.to_stages(design.quantize_widths(u, p['w0'], p['wm']))[1]


CLAIMS += [
    Claim('$$u_j = w_0 + w_a j, \\quad 0 \\leq j < d,$$', 'definition: design.linear_widths'),
    Claim('an initial width $w_0 > 0$, a slope $w_a > 0$', 'definition: design.regnet_widths'),
    Claim('parameter $w_m > 1$', 'definition: design.regnet_widths'),
    Claim('rounded to a multiple of 8', 'd2lsupport.design (quantize_widths, q=8)',
          value=lambda: '8'),
    Claim('stage $i - 1$', 'definition: numbering of the stages'),
    Claim('a\nmultiple of $g$ (for $b = 1$)', 'definition: design.make_compatible'),
    Claim('compared with 17 for AnyNet', 'arithmetic: the count above',
          holds=lambda: 1 + 4 * 4 == 17),
    Claim('The rule gives four stages of 1, 2, 7 and 12 blocks', 'design.regnet_widths (cell output)',
          value=lambda: [f(d) for d in design.regnet_widths(**REGNETX_400MF)['depths']]),
    Claim('Before the last rounding their widths\nare 24, 64, 152 and 392 channels; rounding '
          'them to multiples of the group width 16 makes\n24 into 32, 152 into 160 and 392 '
          'into 384', 'design.regnet_widths and its steps',
          value=lambda: [f(w) for w in widths_before_group_rounding()] + ['16'] + [
              f(w) for pair in zip(widths_before_group_rounding(),
                                   design.regnet_widths(**REGNETX_400MF)['widths'])
              if pair[0] != pair[1] for w in pair]),
    Claim('each stage of more than one block starts\nabove the line and ends below it, and the '
          'blocks are between 0.65 and 1.64 times as wide\nas the line says',
          'design.block_widths against design.linear_widths',
          value=lambda: [f(width_ratios().min(), 2), f(width_ratios().max(), 2)],
          holds=stages_start_above_and_end_below),
    Claim('Three steps cannot follow 22 points of a line', 'design.regnet_widths',
          value=lambda: f(REGNETX_400MF['depth']),
          holds=lambda: len(design.regnet_widths(**REGNETX_400MF)['depths']) - 1 == 3),
    Claim('the best depth is about 20 blocks whatever the size of the network, the\nbest '
          'networks use no bottleneck at all ($b = 1$), and the best width multiplier is about\n'
          '$w_m = 2.5$', f'{PAPER}, Sec. 4.1 (RegNet trends)'),
    Claim('no bottleneck ($b = 1$), group width\n$g = 16$, widths $c_1 = 32$ and $c_2 = 80$, and '
          'depths $d_1 = 4$ and $d_2 = 6$', 'the RegNetX32 cells',
          value=lambda: ['1', '16', '32', '80', '4', '6'],
          holds=lambda: design.regnet_widths(**REGNETX32_RULE) == {
              'depths': [4, 6], 'widths': [32, 80], 'group_widths': [16, 16]}),
    Claim('a network of 32 layers', 'the RegNetX32 cells: 3 convolutions in each of 10 blocks, '
          'plus the stem and the dense layer', value=lambda: f(3 * (4 + 6) + 2)),
    Claim('with $w_m = 2.5$ as the paper recommends', 'REGNETX32_RULE',
          value=lambda: f(REGNETX32_RULE['wm'], 1)),
]

# RegNetX32's layers (the recorded layer summaries, the same in all four tabs).
CLAIMS += [
    Claim('$96 \\times 96$', 'definition: the resize of the training cell'),
    Claim('The stem halves the resolution from 96 to 48 and each stage halves it again, to 24 '
          'and\nthen 12, while the channels grow from 32 to 80', 'recorded layer summaries',
          value=lambda: ['96'] + [re.findall(r'\d+', s)[-1] for s, _ in
                                  summary_rows('pytorch', 'RegNetX32')[0][:3]] +
          [re.findall(r'\d+', summary_rows('pytorch', 'RegNetX32')[0][i][0])[1] for i in (1, 2)]),
    Claim('RegNetX32 has 179,290 parameters, the\nsame in all four frameworks, and most of them, '
          '149,200 or 83%, sit in the second stage', 'recorded layer summaries of the four tabs',
          value=lambda: [f'{same_in_every_framework("RegNetX32"):,}',
                         f'{summary_rows("pytorch", "RegNetX32")[0][2][1]:,}',
                         f(100 * summary_rows('pytorch', 'RegNetX32')[0][2][1] /
                           same_in_every_framework('RegNetX32'))]),
]

# Discussion: RegNetY32.
CLAIMS += [
    Claim('the SE units\nadd 20,076 parameters (199,366 in all, about 11% more than RegNetX32) '
          'but almost no\ncomputation', 'recorded layer summaries; design.complexity',
          value=lambda: [f'{same_in_every_framework("RegNetY32") - same_in_every_framework("RegNetX32"):,}',
                         f'{same_in_every_framework("RegNetY32"):,}',
                         f(100 * (same_in_every_framework('RegNetY32') /
                                  same_in_every_framework('RegNetX32') - 1))],
          holds=lambda: design.complexity(design.REGNETY32, image_size=96)[
              'flops'] < 1.01 * design.complexity(design.REGNETX32, image_size=96)['flops']),
]

# Exercises: the values they ask about (nothing to recompute; they are questions).
CLAIMS += [
    Claim('from 16 to 8, 2 and 1 (one channel per group', 'definition: an exercise'),
    Claim('a group width of 32', 'definition: an exercise'),
    Claim('Draw 20 networks', 'definition: an exercise'),
    Claim('$w_0 = 32$, $w_a = 16$, $w_m = 2$, $d = 10$ and group width 16',
          'definition: an exercise'),
    Claim('grows to 3 and 4', 'definition: an exercise'),
]

# README: the design-space study.
def median_error(space):
    return 100 * np.median(errors(space))


CLAIMS += [Claim(text, source, value, doc='README') for text, source, value in [
    ('64 networks\nper space, 384 in all', 'results/study-cost.jsonl',
     lambda: [f(len(cost_errors('A'))), f(len(cost_records()))]),
    ('in 71 minutes of\nwall time', 'results/study-cost.jsonl (seconds over two workers)',
     lambda: f(sum(r['seconds'] for r in cost_records()) / 120)),
    ('(median\nerrors 14.0%, 13.9%, 14.0%), D is better than C by 0.50 points (95% interval '
     '0.15 to\n0.76)', 'study.summary, study.comparisons on results/study-cost.jsonl',
     lambda: [f(cost_median(s), 1) for s in 'ABC'] + [
         f(-cost_shift('C', 'D')[0], 2), '95'] + [f(-x, 2) for x in cost_shift('C', 'D')[1][::-1]]),
    ('the lowest median error (13.0%),\n0.39 points below E', 'study.summary, study.comparisons',
     lambda: [f(cost_median('RegNetX'), 1), f(-cost_shift('E', 'RegNetX')[0], 2)]),
    ('32 networks per space drawn\nfrom the whole spaces, made at commit 1b8c0f9',
     'results/study.jsonl; git log -- results/study.jsonl', lambda: f(len(errors('A')))),
    ('spanned 0.05 to 13.63 MFLOPs', 'study.comparisons on results/study.jsonl',
     lambda: [f(min(r['complexity']['flops'] for r in study_records()) / 1e6, 2),
              f(max(r['complexity']['flops'] for r in study_records()) / 1e6, 2)]),
    ('a Spearman correlation\nof 0.79 (interval 0.60 to 0.89) over 36 networks',
     'study.rank_agreement', lambda: [f(rank_agreement()[1], 2), f(rank_agreement()[2][0], 2),
                                      f(rank_agreement()[2][1], 2), f(rank_agreement()[0])]),
    ('(correlation -0.74 with log FLOPs)', 'study.comparisons on results/study.jsonl',
     lambda: f(study.cost_residuals(study_records())[1], 2)),
]]
CLAIMS.append(Claim('on 2 CPU cores (two worker processes, one thread each', 'definition: the '
                    'machine of the committed run; threads from results/study-cost.jsonl',
                    holds=lambda: all(r['threads'] == 1 for r in cost_records()), doc='README'))

# Training: the records under results/ (make run), printed by show_results.
def last_four(framework):
    accs = [h['val_acc'] for h in record(framework)['history'][-4:]]
    return min(accs), max(accs)


def points(x):
    return f(100 * x, 1)


def noise(framework):
    low, high = last_four(framework)
    return 100 * (high - low)


def final_accuracies():
    return [record(fw)['val_acc'] for fw in FRAMEWORKS]


def epoch_times(framework):
    times = [h['time_s'] for h in record(framework)['history']]
    return np.diff([0.0] + times)


def run_summary(framework):
    r = record(framework)
    return [f(r['wall_time_s'] / 60), f(r['examples_per_sec']), f(r['train_loss'], 3),
            f(r['val_acc'], 3)]


def peak_gb(framework):
    return f(record(framework)['peak_rss_mb'] / 1000, 1)


CLAIMS += [
    Claim('$96 \\times 96$, minibatches of 128, stochastic gradient descent with learning rate '
          '0.05, and 10 epochs', 'the records (resize, batch_size, lr, epochs_planned)',
          value=lambda: ['96', '96', f(record('mxnet')['batch_size']),
                         f(record('mxnet')['lr'], 2), f(record('mxnet')['epochs_planned'])],
          holds=lambda: all(record(fw)['resize'] == [96, 96] and record(fw)['lr'] == 0.05
                            for fw in FRAMEWORKS)),
    Claim('All four records are complete runs of all 10 epochs, on machines with two CPU cores and\n'
          'no GPU, one run after another on the same type of machine', 'the records',
          value=lambda: [f(record('mxnet')['epochs_planned'])],
          holds=lambda: all(record(fw)['complete'] and record(fw)['machine']['cores'] == 2
                            for fw in FRAMEWORKS)
          and len({record(fw)['machine']['cpu'] for fw in FRAMEWORKS}) == 1),
    Claim('MXNet trained in 47 minutes (249 examples per second, counting training and validation)\n'
          'and ended at a training loss of 0.174 and a validation accuracy of 0.904',
          'results/regnetx32.mxnet.json', value=lambda: run_summary('mxnet')),
    Claim('TensorFlow took\n48 minutes (245 examples per second) and ended at 0.175 and 0.897',
          'results/regnetx32.tensorflow.json', value=lambda: run_summary('tensorflow')),
    Claim('PyTorch 44 minutes\n(267 examples per second) and ended at 0.166 and 0.910',
          'results/regnetx32.pytorch.json', value=lambda: run_summary('pytorch')),
    Claim('and JAX 97 minutes\n(120 examples per second) and ended at 0.177 and 0.909',
          'results/regnetx32.jax.json', value=lambda: run_summary('jax')),
    Claim("(TensorFlow's second to\nfourth epochs took about 340 seconds each, its last six "
          'about 250)', 'results/regnetx32.tensorflow.json (history: time_s)',
          value=lambda: ['340', '250'],
          holds=lambda: all(abs(t / 340 - 1) < 0.1 for t in epoch_times('tensorflow')[1:4])
          and all(abs(t / 250 - 1) < 0.1 for t in epoch_times('tensorflow')[4:])),
    Claim('JAX trains this network at about half the speed of the others on a CPU',
          'results/bench.json; the records (examples_per_sec)',
          holds=lambda: all(0.4 < record('jax')['examples_per_sec'] /
                            record(fw)['examples_per_sec'] < 0.6
                            for fw in ('mxnet', 'tensorflow', 'pytorch'))),
    Claim('Resident memory\npeaked at 2.7 GB in MXNet, 2.8 GB in TensorFlow, 2.4 GB in PyTorch and 4.9 GB in\nJAX',
          'the records (peak_rss_mb)',
          value=lambda: [peak_gb(fw) for fw in ('mxnet', 'tensorflow', 'pytorch', 'jax')]),
    Claim('Their final validation accuracies lie between\n0.897 and 0.910, a spread of 1.2 points',
          'the records (val_acc)',
          value=lambda: [f(min(final_accuracies()), 3), f(max(final_accuracies()), 3),
                         points(max(final_accuracies()) - min(final_accuracies()))]),
    Claim('the validation accuracy of\nthe last four epochs moved over 2.1 to 3.2 points, so the differences\n'
          'between the frameworks lie within the noise of a single run', 'the records (history)',
          value=lambda: [f(min(noise(fw) for fw in FRAMEWORKS), 1),
                         f(max(noise(fw) for fw in FRAMEWORKS), 1)],
          holds=lambda: 100 * (max(final_accuracies()) - min(final_accuracies())) <=
          min(noise(fw) for fw in FRAMEWORKS)),
    Claim('including the learning\nrate, 0.05', 'the records (lr)',
          value=lambda: f(record('mxnet')['lr'], 2),
          holds=lambda: len({record(fw)['lr'] for fw in FRAMEWORKS}) == 1),
    Claim('The book this section follows used 0.01 for TensorFlow',
          "book: the reference section's TensorFlow training cell"),
]

# README: the recorded runs.
CLAIMS += [Claim(text, source, value, doc='README') for text, source, value in [
    ('2 CPU cores, no GPU', 'the records (machine)',
     lambda: f(record('mxnet')['machine']['cores'])),
    ('Complete 10-epoch runs in every framework', 'the records',
     lambda: f(record('mxnet')['epochs_planned'])),
    ('MXNet in 47 minutes (249 examples/s, training and validation;\npeak resident memory 2.7 GB), '
     'ending at training loss 0.174 and validation accuracy 0.904',
     'results/regnetx32.mxnet.json', lambda: run_summary('mxnet')[:2] + [peak_gb('mxnet')]
     + run_summary('mxnet')[2:]),
    ('TensorFlow in 48 minutes\n(245 examples/s, 2.8 GB), 0.175 and 0.897',
     'results/regnetx32.tensorflow.json',
     lambda: run_summary('tensorflow')[:2] + [peak_gb('tensorflow')] + run_summary('tensorflow')[2:]),
    ('PyTorch in 44 minutes (267 examples/s,\n2.4 GB), 0.166 and 0.910',
     'results/regnetx32.pytorch.json',
     lambda: run_summary('pytorch')[:2] + [peak_gb('pytorch')] + run_summary('pytorch')[2:]),
    ('JAX in 97 minutes (120 examples/s, 4.9 GB),\n0.177 and 0.909', 'results/regnetx32.jax.json',
     lambda: run_summary('jax')[:2] + [peak_gb('jax')] + run_summary('jax')[2:]),
]]
