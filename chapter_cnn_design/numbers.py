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
from d2lsupport.trainer import BFLOAT16_CHECKED, Recipe

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
def steps(which):
    """The `study.Step`s of the 'first' study or the one at equal 'cost', as
    study.comparisons computes and prints them."""
    return study.compare_steps(study_records() if which == 'first' else cost_records())


def step(which, a, b):
    return next(s for s in steps(which) if (s.before, s.after) == (a, b))


UNRESOLVED = (('A', 'B'), ('B', 'C'), ('D', 'E'))   # the steps the chapter calls unresolved
SHARED_B = ('B', 'C', 'D', 'E', 'RegNetX')          # the spaces that share one b


def min_mflops(found):
    return min(r['complexity']['flops'] for r in found) / 1e6


def max_mflops(found):
    return max(r['complexity']['flops'] for r in found) / 1e6


def median_flops(space):
    return np.median([r['complexity']['flops'] for r in study_records()
                      if r['space'] == space]) / 1e6


def cost_corrected(space):
    """The first study's median residual of `space` against log FLOPs, in points."""
    residuals, _ = study.log_residuals(study_records())
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


def median_kparams(space):
    return np.median([r['complexity']['params'] for r in cost_records()
                      if r['space'] == space]) / 1e3


def plain_count(space):
    """How many of the equal-cost study's networks of `space` use b = 1 in every stage."""
    return sum(study.all_bottleneck_ratios(r) == {1} for r in cost_records()
               if r['space'] == space)


def bottleneck_effect():
    """(largest b, shift of the median error from b = 1 to it, interval), in points."""
    return study.bottleneck_effect(cost_records())[1]


def cost_median(space):
    return 100 * np.median(cost_errors(space))


def mean_draws(space):
    return np.mean([r['draws'] for r in cost_records() if r['space'] == space])


@lru_cache
def retrained():
    """(space, index) of the networks trained again for four epochs."""
    return frozenset((r['space'], r['index']) for r in long_records())


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
# definitions of the networks (the chapter's #@save cells build them so).
CLAIMS += [
    Claim('$3 \\times 3$', 'definition: the kernel of the grouped convolution and the stem'),
    Claim('$1 \\times 1$', 'definition: the kernel of the projecting and SE convolutions'),
    Claim('convolution with stride 2', 'definition: the stem'),
    Claim('The first block of a stage uses\n  stride 2', 'definition: AnyNet.stage'),
    Claim('Stages $i = 1, 2, \\ldots$', 'definition: numbering of the stages'),
    Claim('networks with $b = 1$, best', 'definition: study.summary (b=1 column)'),
    Claim('among $b = 1$ networks.', 'definition: study.comparisons (b = 1 only)'),
    Claim('convolution (with stride 2)', 'definition: the projection shortcut of a stage'),
    Claim("For ImageNet's $224 \\times 224$ images", 'paper: ImageNet input size'),
    Claim('uses four stages: with the stem, five halvings give $224 / 2^5 = 7$', 'arithmetic',
          value=lambda: ['224', '2', '5', '7'], holds=lambda: 224 / 2 ** 5 == 7),
    Claim('$b_i \\geq 1$', 'definition: a bottleneck ratio'),
    Claim('the multiplier $1 / b_i$', 'definition: bot_mul in the code'),
    Claim('$1 + 4 \\times 4 = 17$ in all (the paper counts 16 because it fixes the stem at 32\n'
          'channels)', f'arithmetic; {PAPER}, Sec. 3.2: 16 degrees of freedom, stem of 32 '
          'channels', value=lambda: ['1', '4', '4', f(1 + 4 * 4), '16', '32']),
    Claim('have three stages and a fixed stem, hence 12\nnumbers', 'd2lsupport.design '
          '(NUM_STAGES, STEM_WIDTH)', value=lambda: f(4 * design.NUM_STAGES),
          holds=lambda: design.NUM_STAGES == 3),
]

# Distributions and parameters of design spaces; the paper's chain.
CLAIMS += [
    Claim('The 17 numbers', 'arithmetic: the count above', holds=lambda: 1 + 4 * 4 == 17),
    Claim('$2^{17} = 131{,}072$', 'arithmetic', value=lambda: ['2', '17', f'{2 ** 17:,}']),
    Claim('until it had 500 in a narrow band of cost (360 to 400 million multiply-adds per\n'
          'ImageNet image), trained each for 10 epochs', f'{PAPER}, Sec. 3.1 and 3.2'),
]

# RegNet: the width rule (d2lsupport.design, printed by the chapter's cells).
def widths_before_group_rounding():
    p = REGNETX_400MF
    u = design.linear_widths(p['w0'], p['wa'], p['depth'])
    return design.to_stages(design.quantize_widths(u, p['w0'], p['wm']))[1]


CLAIMS += [
    Claim('$$u_j = w_0 + w_a j, \\quad 0 \\leq j < d,$$', 'definition: design.linear_widths'),
    Claim('an initial width $w_0 > 0$, a slope $w_a > 0$', 'definition: design.regnet_widths'),
    Claim('the width multiplier $w_m > 1$', 'definition: design.regnet_widths'),
    Claim('a multiple of 8', 'd2lsupport.design (quantize_widths, q=8)', value=lambda: '8'),
    Claim('Six numbers $(d, w_0, w_a, w_m, b, g)$ and the stem width now describe a network,\n'
          'against 17 for AnyNet', f'{PAPER}, Sec. 3.3 (six parameters); the count above',
          value=lambda: '17'),
    Claim('The rule gives four stages of 1, 2, 7 and 12 blocks', 'design.regnet_widths (cell output)',
          value=lambda: [f(d) for d in design.regnet_widths(**REGNETX_400MF)['depths']]),
    Claim('Before the last rounding their widths\nare 24, 64, 152 and 392 channels; rounding to '
          'multiples of the group width 16 (ties to the even\nmultiple) makes 24 into 32, 152 into '
          '160 and 392 into 384',
          'design.regnet_widths and its steps (Python rounds ties to even)',
          value=lambda: [f(w) for w in widths_before_group_rounding()] + ['16'] + [
              f(w) for pair in zip(widths_before_group_rounding(),
                                   design.regnet_widths(**REGNETX_400MF)['widths'])
              if pair[0] != pair[1] for w in pair]),
    Claim('Each stage of more than one block starts above the line and ends below it, and the '
          'blocks\nare between 0.65 and 1.64 times as wide as the line says: four levels cannot '
          'follow 22\npoints of a line', 'design.block_widths against design.linear_widths',
          value=lambda: [f(width_ratios().min(), 2), f(width_ratios().max(), 2),
                         f(REGNETX_400MF['depth'])],
          holds=lambda: stages_start_above_and_end_below() and
          len(design.regnet_widths(**REGNETX_400MF)['depths']) == 4),
    Claim('the best RegNetX networks share a depth of about 20 blocks, use no\nbottleneck '
          '($b = 1$), and have a width multiplier of about $w_m = 2.5$',
          f'{PAPER}, Sec. 4.1 (RegNet trends)'),
]

# Our design-space studies: the one at equal cost (results/study-cost.jsonl and
# results/study-long.jsonl) and the first one (results/study.jsonl); study.summary,
# study.comparisons and study.rank_agreement print the same numbers in the chapter.
CLAIMS += [
    Claim('$28 \\times 28$', 'definition: the images of Fashion-MNIST'),
    Claim('three stages (a $28 \\times 28$ image is $2 \\times 2$ after the stem and three '
          'stages), one\nto four blocks and 8 to 128 channels per stage, a stem of 16 channels',
          'd2lsupport.design; arithmetic',
          value=lambda: ['28', '28', '2', '2', f(design.WIDTHS[0]), f(design.WIDTHS[1]),
                         f(design.STEM_WIDTH)],
          holds=lambda: design.DEPTHS == (1, 4) and math.ceil(28 / 2 ** 4) == 2),
    Claim('weight decay $5 \\times 10^{-5}$ and a learning rate decaying\nfrom 0.1 to 0 along a '
          'cosine', 'd2l.Recipe; results/study-cost.jsonl (budget)',
          value=lambda: ['5', '10', '-5', f(cost_records()[0]['budget']['lr'], 1), '0'],
          holds=lambda: Recipe().weight_decay == 5e-5),
    Claim('The error is measured on the 10,000 test images', 'results/study-cost.jsonl (budget)',
          value=lambda: f'{cost_records()[0]["budget"]["val_size"]:,}'),
    Claim('repeat\n4,000 times, and keep the middle 95% of the differences',
          'study.bootstrap_shifts (draws), study.percentile_interval',
          value=lambda: [f'{study.bootstrap_shifts.__defaults__[0]:,}', '95']),
    Claim('at least one of five 95% intervals\nmisses its true value up to 25% of the time; '
          '*joint* intervals, at 99% each, all hold\ntogether with probability of about 95% or more',
          'arithmetic (5 x 5%, the union bound); study.compare_steps (1 - 0.05 / 5)',
          value=lambda: ['95', f(5 * 5), f(100 * (1 - 0.05 / len(steps('cost')))), '95'],
          holds=lambda: len(steps('cost')) == 5),
    # the first study
    Claim('Our first study drew 32 networks from each whole space',
          'results/study.jsonl', value=lambda: f(len(errors('A'))),
          holds=lambda: len({len(e) for e in study.errors_by_space(study_records()).values()}) == 1),
    Claim('its RegNetX fixed $b = 1$', 'results/study.jsonl (configurations)',
          value=lambda: '1',
          holds=lambda: all(s[3] == 1 for r in study_records() if r['space'] == 'RegNetX'
                            for s in r['config']['stages'])),
    Claim('32 networks per space drawn from the\nwhole spaces, with costs from 0.05 to 13.63 '
          'MFLOPs', 'results/study.jsonl',
          value=lambda: [f(len(errors('A'))), f(min_mflops(study_records()), 2),
                         f(max_mflops(study_records()), 2)]),
    Claim('left the medians within 0.4 points,\ninside their intervals',
          'study.comparisons on results/study.jsonl', value=lambda: '0.4',
          holds=lambda: all(abs(step('first', *p).shift) < 0.4 and
                            step('first', *p).interval[0] < 0 < step('first', *p).interval[1]
                            for p in (('A', 'B'), ('B', 'C')))),
    Claim('D came out *worse* than C, by 1.1 points (its joint interval just reaches zero), with\n'
          'E winning most of it back (1.0 point)',
          'study.comparisons on results/study.jsonl',
          value=lambda: [f(step('first', 'C', 'D').shift, 1),
                         f(-step('first', 'D', 'E').shift, 1)],
          holds=lambda: step('first', 'C', 'D').interval[0] > 0 and
          -0.05 < step('first', 'C', 'D').joint_interval[0] <= 0),
    Claim('needs 0.16 MFLOPs against 0.48 for C', 'study.summary on results/study.jsonl',
          value=lambda: [f(median_flops('D'), 2), f(median_flops('C'), 2)]),
    Claim('over\nall 192 networks, whose costs span 0.05 to 13.63 MFLOPs, the correlation between '
          'error and\nlog FLOPs is $-0.74$ (with log parameters $-0.80$', 'study.comparisons on '
          'results/study.jsonl',
          value=lambda: [f(len(study_records())), f(min_mflops(study_records()), 2),
                         f(max_mflops(study_records()), 2),
                         f(study.log_residuals(study_records())[1], 2),
                         f(study.log_residuals(study_records(), 'params')[1], 2)]),
    Claim('the median residuals are $+0.2$ to $+0.4$ points for A, B\nand C, $-0.1$ for D, '
          '$-0.6$ for E and $-0.9$ for RegNetX', 'study.summary (vs FLOPs) on results/study.jsonl',
          value=lambda: [signed(min(cost_corrected(s) for s in 'ABC')),
                         signed(max(cost_corrected(s) for s in 'ABC')),
                         signed(cost_corrected('D')), signed(cost_corrected('E')),
                         signed(cost_corrected('RegNetX'))]),
    Claim('RegNetX had only $b = 1$\nnetworks, and in B to E those had a median error of '
          '14.0%, against 14.6% for $b = 2$ and\n15.4% for $b = 4$',
          'study.comparisons (last line) on results/study.jsonl',
          value=lambda: ['1', f(by_bottleneck(1), 1), f(by_bottleneck(2), 1), '2',
                         f(by_bottleneck(4), 1), '4']),
    Claim("though RegNetX also beats E's $b = 1$ networks taken alone",
          'study.comparisons (b = 1 only) on results/study.jsonl', value=lambda: '1',
          holds=lambda: step('first', 'E', 'RegNetX').without_bottleneck[3][1] < 0),
    Claim('(with 32 per space, about a point)',
          'study.comparisons on results/study.jsonl: the half-widths of the five intervals',
          value=lambda: f(len(errors('A'))),
          holds=lambda: all(0.5 <= (s.interval[1] - s.interval[0]) / 2 <= 1.0
                            for s in steps('first'))),
    # the study at equal cost
    Claim('each space\ncontributes 64 networks within 10% of 0.5 MFLOPs', 'results/study-cost.jsonl',
          value=lambda: [f(len(cost_errors('A'))),
                         f(100 * cost_records()[0]['cost']['tolerance']),
                         f(cost_records()[0]['cost']['mflops'], 1)],
          holds=lambda: len({len(cost_errors(s)) for s in design.SPACES}) == 1 and all(
              abs(r['complexity']['flops'] / 0.5e6 - 1) <= 0.1 for r in cost_records())),
    Claim('(one draw in 12 to 20)', 'results/study-cost.jsonl (draws, mean per space)',
          value=lambda: [f(min(mean_draws(s) for s in design.SPACES)),
                         f(max(mean_draws(s) for s in design.SPACES))]),
    Claim('64 networks per space within 10% of 0.5\nMFLOPs', 'results/study-cost.jsonl',
          value=lambda: [f(len(cost_errors('A'))), '10', '0.5']),
    Claim('lowers the median error by 0.50\npoints (95% interval $-0.77$ to $-0.15$, joint '
          'interval $-0.81$ to $-0.04$), and the two\nEDFs differ (p = 0.005, below 0.01',
          'study.comparisons on results/study-cost.jsonl',
          value=lambda: [f(-step('cost', 'C', 'D').shift, 2), '95',
                         *(signed(x, 2) for x in step('cost', 'C', 'D').interval),
                         *(signed(x, 2) for x in step('cost', 'C', 'D').joint_interval),
                         f(step('cost', 'C', 'D').edf_p, 3), '0.01'],
          holds=lambda: step('cost', 'C', 'D').edf_p < 0.05 / 5),
    Claim('the intervals include zero and exclude shifts larger than about 0.45\npoints (0.56 '
          'by the joint intervals)', 'study.comparisons on results/study-cost.jsonl',
          value=lambda: [f(max(abs(x) for p in UNRESOLVED for x in step('cost', *p).interval), 2),
                         f(max(abs(x) for p in UNRESOLVED
                               for x in step('cost', *p).joint_interval), 2)],
          holds=lambda: all(step('cost', *p).interval[0] < 0 < step('cost', *p).interval[1]
                            for p in UNRESOLVED)),
    Claim('RegNetX has the lowest median\nerror, 13.0% against 13.4% for E, and its EDF differs '
          "from E's (p = 0.006, also below 0.01), but the\nmedian's interval reaches zero "
          '($-0.69$ to $+0.03$; jointly $-0.86$ to $+0.17$)',
          'study.summary, study.comparisons on results/study-cost.jsonl',
          value=lambda: [f(cost_median('RegNetX'), 1), f(cost_median('E'), 1),
                         f(step('cost', 'E', 'RegNetX').edf_p, 3), '0.01',
                         *(signed(x, 2) for x in step('cost', 'E', 'RegNetX').interval),
                         *(signed(x, 2) for x in step('cost', 'E', 'RegNetX').joint_interval)],
          holds=lambda: min(design.SPACES, key=cost_median) == 'RegNetX'
          and step('cost', 'E', 'RegNetX').edf_p < 0.05 / 5),
    Claim("D's median network has 35.9 thousand parameters against 23.2\nthousand for C, and "
          "E's 50.1 thousand", 'study.summary (kparams) on results/study-cost.jsonl',
          value=lambda: [f(median_kparams(s), 1) for s in 'DCE']),
    Claim('(a correlation of $-0.41$; with log FLOPs, 0.03)', 'study.comparisons',
          value=lambda: [f(study.log_residuals(cost_records(), 'params')[1], 2),
                         f(study.log_residuals(cost_records())[1], 2)]),
    Claim('Across the 384 networks', 'results/study-cost.jsonl', value=lambda: f(len(cost_records()))),
    Claim('the shift from C to D shrinks to $-0.19$ points, with an interval\n($-0.49$ to $+0.16$) '
          'that includes zero, while the shift from E to RegNetX becomes resolved\n($-0.55$, from '
          '$-0.85$ to $-0.11$)', 'study.comparisons (size-corrected) on results/study-cost.jsonl',
          value=lambda: [signed(step('cost', 'C', 'D').size_corrected[0], 2),
                         *(signed(x, 2) for x in step('cost', 'C', 'D').size_corrected[1]),
                         signed(step('cost', 'E', 'RegNetX').size_corrected[0], 2),
                         *(signed(x, 2) for x in step('cost', 'E', 'RegNetX').size_corrected[1])]),
    Claim("between 28 and 52 of 64 networks use $b = 1$",
          'study.summary (b=1) on results/study-cost.jsonl, spaces B to RegNetX',
          value=lambda: [f(min(plain_count(s) for s in SHARED_B)),
                         f(max(plain_count(s) for s in SHARED_B)), f(len(cost_errors('B'))), '1'],
          holds=lambda: all(len(cost_errors(s)) == 64 for s in SHARED_B)),
    Claim('These follow-up intervals are 95% each', 'definition: study.compare_steps'),
    Claim('(a median error 0.51 points\nlower than with $b = 4$, interval 0.26 to 1.13)',
          'study.comparisons (last line) on results/study-cost.jsonl',
          value=lambda: [f(bottleneck_effect()[1], 2), f(bottleneck_effect()[0], 0),
                         *(f(x, 2) for x in bottleneck_effect()[2])]),
    Claim('Among $b = 1$ networks alone, C to D still\ngains 0.53 points (interval $-0.83$ to '
          '$-0.04$)', 'study.comparisons (b = 1 only) on results/study-cost.jsonl',
          value=lambda: ['1', f(-step('cost', 'C', 'D').without_bottleneck[2], 2),
                         *(signed(x, 2) for x in step('cost', 'C', 'D').without_bottleneck[3])]),
    Claim('the first 6 networks of every space,\n36 in all, were trained again for four epochs',
          'results/study-long.jsonl',
          value=lambda: [f(len(long_records()) / len(design.SPACES)), f(len(long_records()))],
          holds=lambda: all(r['budget']['epochs'] == 4 for r in long_records())
          and {r['index'] for r in long_records()} == set(range(6))),
    Claim('1 when both budgets rank them alike', 'definition: Spearman\'s rank correlation'),
    Claim('(0.79, interval 0.60 to 0.89), while four\nepochs lower their median error from '
          '13.4% to 10.6%', 'study.rank_agreement on results/study-cost.jsonl and '
          'study-long.jsonl; the same networks\' errors in both',
          value=lambda: [f(rank_agreement()[1], 2), f(rank_agreement()[2][0], 2),
                         f(rank_agreement()[2][1], 2),
                         f(100 * np.median([r['error'] for r in cost_records()
                                            if (r['space'], r['index']) in retrained()]), 1),
                         f(100 * np.median([r['error'] for r in long_records()]), 1)]),
    # the live study
    Claim('three networks within 10% of 0.5 MFLOPs', 'definition: the live-study cell '
          '(num_models=3, mflops=0.5, design.sample_at_cost tolerance=0.1)'),
    Claim('each trained for one epoch on the first 10,000 training images and\nvalidated on the '
          'first 2,000 test images', 'definition: the live-study cell '
          '(max_epochs=1, num_train=10_000, num_val=2_000, num_models=3)'),
]

# RegNetX32 (the recorded layer summaries, the same in all four tabs) and its training.
CLAIMS += [
    Claim('two stages for $96 \\times 96$ images and a stem of 32 channels: no bottleneck\n'
          '($b = 1$), group width $g = 16$, widths $c_1 = 32$ and $c_2 = 80$, depths $d_1 = 4$ '
          'and\n$d_2 = 6$', 'design.REGNETX32 (the RegNetX32 cells)',
          value=lambda: ['96', '96', f(design.REGNETX32.stem_width), '1', '16', '32', '80',
                         '4', '6'],
          holds=lambda: design.regnet_widths(**REGNETX32_RULE) == {
              'depths': [4, 6], 'widths': [32, 80], 'group_widths': [16, 16]}),
    Claim('Three convolutions in each of ten blocks, the stem and the dense layer make a\n'
          'network of 32 layers', 'the RegNetX32 cells', value=lambda: f(3 * (4 + 6) + 2)),
    Claim("with $w_m = 2.5$, close to the paper's best networks", 'REGNETX32_RULE',
          value=lambda: f(REGNETX32_RULE['wm'], 1)),
    Claim('The stem halves the resolution from 96 to 48 and each stage halves it again, to 24 '
          'and\nthen 12, while the channels grow from 32 to 80', 'recorded layer summaries',
          value=lambda: ['96'] + [re.findall(r'\d+', s)[-1] for s, _ in
                                  summary_rows('pytorch', 'RegNetX32')[0][:3]] +
          [re.findall(r'\d+', summary_rows('pytorch', 'RegNetX32')[0][i][0])[1] for i in (1, 2)]),
    Claim('RegNetX32 has 179,290 parameters in every\nframework, 149,200 or 83% of them in the '
          'second stage', 'recorded layer summaries of the four tabs',
          value=lambda: [f'{same_in_every_framework("RegNetX32"):,}',
                         f'{summary_rows("pytorch", "RegNetX32")[0][2][1]:,}',
                         f(100 * summary_rows('pytorch', 'RegNetX32')[0][2][1] /
                           same_in_every_framework('RegNetX32'))]),
]

# Discussion: RegNetY32.
CLAIMS += [
    Claim('the SE units add 20,076 parameters (199,366 in all, about\n11% more) but almost no '
          'computation', 'recorded layer summaries; design.complexity',
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
CLAIMS += [Claim(text, source, value, doc='README') for text, source, value in [
    ('64 networks\nper space, 384 in all', 'results/study-cost.jsonl',
     lambda: [f(len(cost_errors('A'))), f(len(cost_records()))]),
    ('in 71 minutes of\nwall time', 'results/study-cost.jsonl (seconds over two workers)',
     lambda: f(sum(r['seconds'] for r in cost_records()) / 120)),
    ('D is better than C by 0.50 points (95% interval 0.15 to\n0.77)',
     'study.comparisons on results/study-cost.jsonl',
     lambda: [f(-step('cost', 'C', 'D').shift, 2), '95'] +
     [f(-x, 2) for x in step('cost', 'C', 'D').interval[::-1]]),
    ('the lowest median error (13.0%), 0.39 points below E', 'study.summary, study.comparisons',
     lambda: [f(cost_median('RegNetX'), 1), f(-step('cost', 'E', 'RegNetX').shift, 2)]),
    ('32 networks per space drawn\nfrom the whole spaces, made at commit 1b8c0f9',
     'results/study.jsonl; git log -- results/study.jsonl', lambda: f(len(errors('A')))),
    ('spanned 0.05 to 13.63 MFLOPs', 'study.comparisons on results/study.jsonl',
     lambda: [f(min(r['complexity']['flops'] for r in study_records()) / 1e6, 2),
              f(max(r['complexity']['flops'] for r in study_records()) / 1e6, 2)]),
    ('a Spearman correlation\nof 0.79 (interval 0.60 to 0.89) over 36 networks',
     'study.rank_agreement', lambda: [f(rank_agreement()[1], 2), f(rank_agreement()[2][0], 2),
                                      f(rank_agreement()[2][1], 2), f(rank_agreement()[0])]),
    ('(correlation -0.74 with log FLOPs)', 'study.comparisons on results/study.jsonl',
     lambda: f(study.log_residuals(study_records())[1], 2)),
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


def spread():
    """Points between the best and the worst final validation accuracy."""
    return 100 * (max(final_accuracies()) - min(final_accuracies()))


def run_summary(framework):
    r = record(framework)
    return [f(r['wall_time_s'] / 60), f(r['examples_per_sec']), f(r['train_loss'], 3),
            f(r['val_acc'], 3)]


def bfloat16_speedup(framework):
    path = ROOT / 'results' / f'precision.{framework}.json'
    return json.loads(path.read_text())[framework]['precision']['speedup']


def peak_gb(framework):
    return f(record(framework)['peak_rss_mb'] / 1000, 1)


CLAIMS += [
    Claim('images upsampled to\n$96 \\times 96$, minibatches of 128, plain stochastic gradient '
          'descent with learning rate\n0.05, and 10 epochs',
          'the records (resize, batch_size, lr, epochs_planned)',
          value=lambda: ['96', '96', f(record('mxnet')['batch_size']),
                         f(record('mxnet')['lr'], 2), f(record('mxnet')['epochs_planned'])],
          holds=lambda: all(record(fw)['resize'] == [96, 96] and record(fw)['lr'] == 0.05
                            and record(fw)['batch_size'] == 128 for fw in FRAMEWORKS)),
    Claim('A full run took 23 to 86 minutes on a two-core CPU', 'the records (wall_time_s)',
          value=lambda: [f(min(record(fw)['wall_time_s'] for fw in FRAMEWORKS) / 60),
                         f(max(record(fw)['wall_time_s'] for fw in FRAMEWORKS) / 60)],
          holds=lambda: all(record(fw)['machine']['cores'] == 2 for fw in FRAMEWORKS)),
    Claim('All four runs completed 10 epochs on the same kind of two-core machine',
          'the records', value=lambda: [f(record('mxnet')['epochs_planned'])],
          holds=lambda: all(record(fw)['complete'] and record(fw)['machine']['cores'] == 2
                            for fw in FRAMEWORKS)
          and len({record(fw)['machine']['cpu'] for fw in FRAMEWORKS}) == 1),
    Claim('validation accuracies lie within 1.9 points (0.893 to 0.912)', 'the records (val_acc)',
          value=lambda: [f(spread(), 1), f(min(final_accuracies()), 3),
                         f(max(final_accuracies()), 3)]),
    Claim("PyTorch's and\nTensorFlow's in bfloat16", 'results/regnetx32.<framework>.json (precision)',
          holds=lambda: [record(fw).get('precision', 'float32') for fw in FRAMEWORKS] ==
          ['bfloat16' if fw in ('pytorch', 'tensorflow') else 'float32' for fw in FRAMEWORKS]),
    Claim('PyTorch and TensorFlow compute in bfloat16, 2.1 and 1.6 times as fast; the\n'
          'others in float32',
          'd2lsupport.trainer.BFLOAT16_CHECKED; results/precision.<framework>.json (speedup)',
          value=lambda: [f(bfloat16_speedup(fw), 1) for fw in ('pytorch', 'tensorflow')],
          holds=lambda: set(BFLOAT16_CHECKED) == {'pytorch', 'tensorflow'}),
    Claim("about\nas much as each run's accuracy moved over its last four epochs (1.9 to 4.6 points). "
          'With\none run per framework we can detect no difference between the frameworks',
          'the records (history)',
          value=lambda: [f(min(noise(fw) for fw in FRAMEWORKS), 1),
                         f(max(noise(fw) for fw in FRAMEWORKS), 1)],
          holds=lambda: min(noise(fw) for fw in FRAMEWORKS) - 0.5 <= spread()
          <= max(noise(fw) for fw in FRAMEWORKS)),
]

# README: the recorded runs.
CLAIMS += [Claim(text, source, value, doc='README') for text, source, value in [
    ('2 CPU cores, no GPU', 'the records (machine)',
     lambda: f(record('mxnet')['machine']['cores'])),
    ('Complete 10-epoch runs in every framework', 'the records',
     lambda: f(record('mxnet')['epochs_planned'])),
    ('MXNet in 40 minutes (292 examples/s, training and validation;\npeak resident memory 2.7 GB), '
     'ending at training loss 0.183 and validation accuracy 0.901',
     'results/regnetx32.mxnet.json', lambda: run_summary('mxnet')[:2] + [peak_gb('mxnet')]
     + run_summary('mxnet')[2:]),
    ('TensorFlow in 26 minutes\n(451 examples/s, 2.4 GB; in bfloat16), 0.177 and 0.893',
     'results/regnetx32.tensorflow.json',
     lambda: run_summary('tensorflow')[:2] + [peak_gb('tensorflow')] + run_summary('tensorflow')[2:]),
    ('PyTorch in 23 minutes (505 examples/s,\n1.8 GB; in bfloat16), 0.183 and 0.912',
     'results/regnetx32.pytorch.json',
     lambda: run_summary('pytorch')[:2] + [peak_gb('pytorch')] + run_summary('pytorch')[2:]),
    ('JAX in 86 minutes (136 examples/s, 2.7 GB),\n0.171 and 0.900', 'results/regnetx32.jax.json',
     lambda: run_summary('jax')[:2] + [peak_gb('jax')] + run_summary('jax')[2:]),
]]
