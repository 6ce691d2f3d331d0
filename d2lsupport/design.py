"""Design spaces of AnyNet networks: sampling, the RegNet width rule, EDFs,
and complexity (parameters, flops, activations).

Framework-free (numpy and the standard library; matplotlib only for
`plot_edfs`). A network of a design space is an `AnyNetConfig`: a stem width
and one `Stage` (depth, width, group_width, bottleneck) per stage, where
`bottleneck` is the paper's bottleneck *ratio* b: a block of width w has
bottleneck width w / b. The chapter's `AnyNet` takes the multiplier
bot_mul = 1 / b instead, as the book does (`anynet_arguments` converts),
computing the bottleneck width as ``int(round(w * bot_mul))``; for b in
{1, 2, 4} both give the same integer. RegNetX samples also carry the rule
parameters they came from (`regnet`). `AnyNetConfig.to_json` gives the dict
that results files hold; `AnyNetConfig.from_json` reads it back.

The paper samples ImageNet networks with 4 stages, d <= 16 blocks and
w <= 1024 channels per stage. We scale the spaces down so that one sampled
network trains on Fashion-MNIST on a CPU in a few minutes:

* 3 stages, not 4: the stem and every stage halve the resolution, so a 28 px
  image is 2x2 after three stages and a fourth would see 1x1 maps only.
* depth 1..4 blocks per stage (log-uniform): at most 12 blocks bounds the
  training time.
* width 8..128 channels, a multiple of 8 (log-uniform): ten classes of small
  grey images need far fewer channels, and cost grows with width squared.
* stem width fixed at 16, not 32: the input has a single channel.
* bottleneck ratio in {1, 2, 4} and group width in {1, 2, ..., 32} as in the
  paper: they are ratios and group sizes, not sizes that set the cost.
* RegNetX: total depth 3..12 (uniform), w0 8..64 (log-uniform, multiple of
  8), slope wa 4..64 (log-uniform), wm 1.5..3 (log-uniform), the paper's
  ranges scaled like the widths; one b and one g for all stages, drawn as for
  AnyNetX_E (the paper's RegNet space; its later restriction to b = 1 is not
  applied, so that AnyNetX_E -> RegNetX changes the widths and depths only).
  Samples must give exactly 3 stages within the AnyNetX ranges above, like
  every other space here (the paper's networks have 4).

`sample_at_cost` draws networks of one complexity, as the paper compares
design spaces within a narrow band of flops.

Invalid configurations (group width above the bottleneck width or not
dividing it) and ones that break a space's constraint are resampled, never
returned, as the paper does for AnyNetX_D and AnyNetX_E.
"""
import argparse
import dataclasses
import itertools
import json
import math
import sys
from typing import NamedTuple, Optional

import numpy as np

SPACES = ('A', 'B', 'C', 'D', 'E', 'RegNetX')
NUM_STAGES = 3
STEM_WIDTH = 16
DEPTHS = (1, 4)
WIDTHS = (8, 128)
WIDTH_STEP = 8
BOTTLENECK_RATIOS = (1, 2, 4)
GROUP_WIDTHS = (1, 2, 4, 8, 16, 32)
REGNET_DEPTHS = (NUM_STAGES, NUM_STAGES * DEPTHS[1])
REGNET_W0 = (8, 64)
REGNET_WA = (4.0, 64.0)
REGNET_WM = (1.5, 3.0)
# The chapter's RegNetX32 as a configuration: the network is the chapter's class
# (`d2l.RegNetX32`, checked against this by the tests); this describes it for the
# framework-free code (its complexity, the prose check).


def space_name(space):
    """The display name of a design space: 'A' -> 'AnyNetX_A'."""
    return f'AnyNetX_{space}' if space in SPACES[:5] else space


# ------------------------------ The RegNet width rule ------------------------------

def linear_widths(w0, wa, depth):
    """Continuous per-block widths u_j = w0 + wa * j for j < depth."""
    return [w0 + wa * j for j in range(depth)]


def width_levels(u, w0, wm):
    """The level s_j = round(log(u_j / w0) / log(wm)) of each block width
    (numpy rounding, ties to even)."""
    return np.round(np.log(np.asarray(u) / w0) / np.log(wm))


def quantize_widths(u, w0, wm, q=8):
    """Snap each u_j to w0 * wm**s_j, then to the nearest multiple of q."""
    s = width_levels(u, w0, wm)
    return [int(w) for w in np.round(w0 * wm ** s / q).astype(int) * q]


def to_stages(block_widths):
    """Group runs of equal per-block widths into (depths, widths) per stage."""
    runs = [(w, len(list(ws))) for w, ws in itertools.groupby(block_widths)]
    return [d for _, d in runs], [w for w, _ in runs]


def make_compatible(widths, group_width, bottleneck=1):
    """Adjust (widths, group widths) per stage so that the group width divides
    the bottleneck width, as pycls does: the group width is capped by the
    bottleneck width w / b, which is rounded to a multiple of it (ties to even)."""
    new_widths, group_widths = [], []
    for w in widths:
        w_b = max(1, int(w / bottleneck))
        g = min(group_width, w_b)
        w_b = max(g, int(round(w_b / g) * g))
        new_widths.append(int(w_b * bottleneck))
        group_widths.append(g)
    return new_widths, group_widths


def regnet_widths(w0, wa, wm, depth, group_width, bottleneck=1, q=8):
    """Per-stage depths, widths and group widths of the RegNet with initial
    width w0, slope wa, width multiplier wm, `depth` blocks in all, widths
    quantized to multiples of q and bottleneck ratio b (pycls's generate_regnet
    then adjust_block_compatibility, whose bot_mul is 1 / b)."""
    if depth < 1 or w0 <= 0 or w0 % q or wa < 0 or wm <= 1:
        raise ValueError('need depth >= 1, w0 > 0 a multiple of q, wa >= 0, wm > 1')
    if group_width < 1 or bottleneck < 1:
        raise ValueError('need group width >= 1 and bottleneck ratio >= 1')
    u = linear_widths(w0, wa, depth)
    depths, widths = to_stages(quantize_widths(u, w0, wm, q))
    widths, group_widths = make_compatible(widths, group_width, bottleneck)
    return {'depths': depths, 'widths': widths, 'group_widths': group_widths}


def block_widths(w0, wa, wm, depth, group_width, bottleneck=1, q=8):
    """The width of every block of that RegNet, j = 0 .. depth - 1, as the
    network builds it (after making widths compatible with the group width)."""
    net = regnet_widths(w0, wa, wm, depth, group_width, bottleneck, q)
    return [w for d, w in zip(net['depths'], net['widths']) for _ in range(d)]


def plot_width_rule(w0, wa, wm, depth, group_width, bottleneck=1, q=8, ax=None):
    """Plot the linear widths u_j and, per block j, the width the network uses."""
    if ax is None:
        import matplotlib.pyplot as plt
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    blocks = np.arange(depth)
    ax.plot(blocks, linear_widths(w0, wa, depth), '--', label='linear $u_j$')
    ax.step(blocks, block_widths(w0, wa, wm, depth, group_width, bottleneck, q),
            where='mid', label='block width $w_j$')
    ax.set_xlabel('block index $j$')
    ax.set_ylabel('width (channels)')
    ax.grid(alpha=0.3)
    ax.legend(loc='upper left')
    return ax

# ----------------------------------- Configurations ---------------------------------

def bottleneck_width(width, bottleneck):
    """Channels inside a block of `width` with bottleneck ratio b."""
    return int(round(width / bottleneck))


def grouped_bottleneck(num_channels, group_width, bot_mul):
    """Bottleneck channels int(round(num_channels * bot_mul)) of a ResNeXt block,
    checked to split into groups of `group_width` channels (ValueError if not)."""
    bot_channels = int(round(num_channels * bot_mul))
    if group_width < 1 or bot_channels < group_width or bot_channels % group_width:
        raise ValueError(
            f'ResNeXtBlock: {bot_channels} bottleneck channels ({num_channels} x '
            f'{bot_mul}) do not split into groups of {group_width}; choose a group '
            f'width that divides {bot_channels}')
    return bot_channels


def stage_problem(depth, width, group_width, bottleneck):
    """Why a stage cannot be built, or None if it can."""
    if depth < 1 or width < 1 or bottleneck <= 0:
        return 'depth, width and bottleneck ratio must be positive'
    w_b = bottleneck_width(width, bottleneck)
    if not 1 <= group_width <= w_b or w_b % group_width:
        return (f'group width {group_width} must divide the bottleneck '
                f'width {w_b} (width {width} / ratio {bottleneck})')
    return None


def check_config(config):
    """Raise ValueError unless every stage of `config` can be built."""
    if config.stem_width < 1 or not config.stages:
        raise ValueError('need a positive stem width and at least one stage')
    for i, stage in enumerate(config.stages):
        problem = stage_problem(*stage)
        if problem:
            raise ValueError(f'stage {i + 1} {tuple(stage)}: {problem}')


class Stage(NamedTuple):
    """One stage of an AnyNet: `depth` blocks of `width` channels whose grouped
    convolution has groups of `group_width` channels, bottleneck ratio b."""
    depth: int
    width: int
    group_width: int
    bottleneck: float


@dataclasses.dataclass(frozen=True)
class AnyNetConfig:
    """A network of an AnyNet design space; checked to be buildable.

    `regnet` holds the RegNetX rule parameters (depth, w0, wa, wm, group
    width, bottleneck) of a network generated by the rule, else None.
    """
    stem_width: int
    stages: tuple
    regnet: Optional[dict] = None

    def __post_init__(self):
        object.__setattr__(self, 'stages', tuple(Stage(*s) for s in self.stages))
        check_config(self)

    def to_json(self):
        """The configuration as the dict that results files hold."""
        data = {'stem_width': self.stem_width, 'stages': [list(s) for s in self.stages]}
        return data if self.regnet is None else {**data, 'regnet': dict(self.regnet)}

    @classmethod
    def from_json(cls, data):
        """The configuration of a dict written by `to_json` (or a JSON string)."""
        if isinstance(data, str):
            data = json.loads(data)
        return cls(data['stem_width'], data['stages'], data.get('regnet'))


def anynet_arguments(config):
    """The chapter's `AnyNet` arguments for `config`: `stem_width`, and in
    `arch` one (depth, num_channels, group_width, bot_mul) tuple per stage,
    where bot_mul = 1 / b. (The chapter keeps the book's multiplier; the design
    space, like the paper, uses the ratio b.)"""
    if not isinstance(config, AnyNetConfig):
        raise ValueError('anynet: config must be a d2lsupport.design.AnyNetConfig '
                         f'(AnyNetConfig.from_json reads a record\'s), got {config!r}')
    return {'stem_width': config.stem_width,
            'arch': tuple((depth, width, group_width, 1 / ratio)
                          for depth, width, group_width, ratio in config.stages)}


# The chapter's RegNetX32 as a configuration: the network is the chapter's class
# (`d2l.RegNetX32`, checked against this by the tests); this describes it for the
# framework-free code (its complexity, the prose check).
REGNETX32 = AnyNetConfig(32, ((4, 32, 16, 1), (6, 80, 16, 1)))


# ------------------------------------- Sampling -------------------------------------

def log_uniform(rng, low, high, q):
    """A multiple of q in [low, high], log-uniformly distributed: as pycls,
    draw log-uniformly above low - min(q, low / 2), round up to a multiple of q."""
    low_edge = low - min(q, low / 2)
    f = math.exp(rng.uniform(math.log(low_edge), math.log(high)))
    return min(high, q * math.ceil(f / q))


def choice(rng, values):
    """One of `values`, uniformly."""
    return values[int(rng.integers(len(values)))]


def non_decreasing(values):
    return all(a <= b for a, b in zip(values, values[1:]))


def sample_anynet_stages(space, rng):
    """Draw the stages of an AnyNetX_{A..E} network, before any rejection."""
    b, g = choice(rng, BOTTLENECK_RATIOS), choice(rng, GROUP_WIDTHS)
    stages = []
    for _ in range(NUM_STAGES):
        d = log_uniform(rng, *DEPTHS, 1)
        w = log_uniform(rng, *WIDTHS, WIDTH_STEP)
        if space == 'A':
            b = choice(rng, BOTTLENECK_RATIOS)
        if space in 'AB':
            g = choice(rng, GROUP_WIDTHS)
        stages.append((d, w, g, b))
    return stages


def in_space(stages, space):
    """Whether AnyNetX stages meet the constraints that `space` adds."""
    depths, widths = [s[0] for s in stages], [s[1] for s in stages]
    if space in 'DE' and not non_decreasing(widths):
        return False
    return space != 'E' or non_decreasing(depths)


def sample_regnet_params(rng):
    """Draw (depth, w0, wa, wm, group width, bottleneck ratio) of a RegNetX
    network; b and g are drawn as for AnyNetX_E, as the paper does."""
    return {'depth': int(rng.integers(REGNET_DEPTHS[0], REGNET_DEPTHS[1] + 1)),
            'w0': log_uniform(rng, *REGNET_W0, WIDTH_STEP),
            'wa': round(log_uniform(rng, *REGNET_WA, 0.1), 1),
            'wm': round(log_uniform(rng, *REGNET_WM, 0.001), 3),
            'group_width': choice(rng, GROUP_WIDTHS),
            'bottleneck': choice(rng, BOTTLENECK_RATIOS)}


def regnet_stages(params):
    """The AnyNet stages of RegNetX parameters, or None if outside our
    ranges: exactly NUM_STAGES stages, no quantization level skipped, the
    sampled group width kept, depths and widths within the AnyNetX ranges."""
    u = linear_widths(params['w0'], params['wa'], params['depth'])
    if width_levels(u, params['w0'], params['wm']).max() + 1 != NUM_STAGES:
        return None
    net = regnet_widths(**params)
    b = params['bottleneck']
    stages = [(d, w, g, b) for d, w, g in
              zip(net['depths'], net['widths'], net['group_widths'])]
    ok = (len(stages) == NUM_STAGES
          and all(DEPTHS[0] <= d <= DEPTHS[1] and WIDTHS[0] <= w <= WIDTHS[1]
                  and g == params['group_width'] and not stage_problem(d, w, g, b)
                  for d, w, g, _ in stages))
    return stages if ok else None


def sample_config(space, rng):
    """A random valid network of design space `space` (one of SPACES), drawn
    with the numpy Generator `rng`; invalid draws are resampled."""
    if space not in SPACES:
        raise ValueError(f'unknown design space {space!r}; choose from {SPACES}')
    while True:
        if space == 'RegNetX':
            params = sample_regnet_params(rng)
            stages = regnet_stages(params)
            if stages is not None:
                return AnyNetConfig(STEM_WIDTH, stages, params)
        else:
            stages = sample_anynet_stages(space, rng)
            if not any(stage_problem(*s) for s in stages) and in_space(stages, space):
                return AnyNetConfig(STEM_WIDTH, stages)


def sample_at_cost(space, rng, mflops, tolerance=0.1, image_size=28, max_draws=10_000):
    """A network of `space` whose flops lie within `tolerance` (a fraction) of
    `mflops` million, by rejection from the space's own distribution, as the
    paper compares spaces within one complexity regime. Returns (config, draws):
    how many networks of the space were drawn to find it."""
    for draws in range(1, max_draws + 1):
        config = sample_config(space, rng)
        flops = complexity(config, image_size=image_size)['flops']
        if abs(flops / (mflops * 1e6) - 1) <= tolerance:
            return config, draws
    raise ValueError(f'{space_name(space)}: no network within {tolerance:.0%} of '
                     f'{mflops:g} MFLOPs in {max_draws:,} draws; choose a cost that the '
                     'space samples more often, or a wider tolerance')


# -------------------------------- Error distributions -------------------------------

def edf(errors, grid=None):
    """The error EDF F(e) = #{e_i <= e} / n at the sorted errors (or `grid`);
    returns (points, F values) as numpy arrays."""
    errors = np.sort(np.asarray(errors, dtype=float))
    if errors.size == 0:
        raise ValueError('edf needs at least one error')
    x = errors if grid is None else np.asarray(grid, dtype=float)
    return x, np.searchsorted(errors, x, side='right') / errors.size


def edf_summary(errors):
    """Size, best, median and mean of a list of errors."""
    e = np.asarray(errors, dtype=float)
    return {'n': int(e.size), 'min': float(e.min()),
            'median': float(np.median(e)), 'mean': float(e.mean())}


def plot_edfs(results_by_space, ax=None):
    """Draw the error EDF of each {space: errors} entry on one axis."""
    if ax is None:
        import matplotlib.pyplot as plt
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    styles = ('-', '--', '-.', ':')
    for i, (space, errors) in enumerate(results_by_space.items()):
        x, f = edf(errors)
        ax.step(np.r_[x[0], x], np.r_[0.0, f], styles[i % 4], where='post',
                label=f'{space_name(space)} (n={len(errors)})')
    ax.set_xlabel('error')
    ax.set_ylabel('cumulative prob.')
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc='lower right')
    return ax


# ------------------------------------ Complexity ------------------------------------
# Each function takes and returns cx = {'h', 'w', 'params', 'flops', 'acts'}:
# the spatial size after the op and the running totals. flops count
# multiply-adds of convolutions and dense layers; acts count their outputs.

def conv_cx(cx, c_in, c_out, k, stride=1, groups=1):
    """A k x k convolution with bias and padding (k - 1) // 2."""
    h, w = (cx['h'] - 1) // stride + 1, (cx['w'] - 1) // stride + 1
    macs_per_pixel = k * k * c_in // groups * c_out
    return {'h': h, 'w': w,
            'params': cx['params'] + macs_per_pixel + c_out,
            'flops': cx['flops'] + h * w * macs_per_pixel,
            'acts': cx['acts'] + h * w * c_out}


def bn_cx(cx, c):
    """Batch normalization: a scale and a shift per channel."""
    return {**cx, 'params': cx['params'] + 2 * c}


def dense_cx(cx, c_in, c_out):
    """A dense layer with bias on a pooled c_in-vector."""
    return {**cx, 'params': cx['params'] + c_in * c_out + c_out,
            'flops': cx['flops'] + c_in * c_out, 'acts': cx['acts'] + c_out}


def se_cx(cx, c, c_se):
    """Squeeze-and-excitation: pool, 1x1 conv c -> c_se, 1x1 conv c_se -> c."""
    pooled = {**cx, 'h': 1, 'w': 1}
    pooled = conv_cx(conv_cx(pooled, c, c_se, 1), c_se, c, 1)
    return {**pooled, 'h': cx['h'], 'w': cx['w']}


def se_width(se_ratio, w_in):
    """Squeeze channels of an SE unit in a block whose input has w_in
    channels: round(se_ratio * w_in); 0 (no SE) when se_ratio is 0."""
    if se_ratio < 0:
        raise ValueError(f'se_ratio must be >= 0, got {se_ratio}')
    w_se = int(round(se_ratio * w_in))
    if se_ratio and not w_se:
        raise ValueError(f'se_ratio {se_ratio} leaves no squeeze channel for '
                         f'a block input of {w_in} channels')
    return w_se


def block_cx(cx, w_in, w, group_width, bottleneck, stride, se_ratio=0.0):
    """A ResNeXt block; it has a projection shortcut when it changes the shape."""
    w_b = bottleneck_width(w, bottleneck)
    if stride != 1 or w_in != w:
        proj = bn_cx(conv_cx(cx, w_in, w, 1, stride), w)
        cx = {**proj, 'h': cx['h'], 'w': cx['w']}
    cx = bn_cx(conv_cx(cx, w_in, w_b, 1), w_b)
    cx = bn_cx(conv_cx(cx, w_b, w_b, 3, stride, w_b // group_width), w_b)
    w_se = se_width(se_ratio, w_in)
    if w_se:
        cx = se_cx(cx, w_b, w_se)
    return bn_cx(conv_cx(cx, w_b, w, 1), w)


def stage_cx(cx, w_in, depth, w, group_width, bottleneck, se_ratio=0.0):
    """`depth` blocks; the first halves the resolution."""
    for i in range(depth):
        cx = block_cx(cx, w_in if i == 0 else w, w, group_width, bottleneck,
                      2 if i == 0 else 1, se_ratio)
    return cx


def complexity(config, in_channels=1, image_size=28, num_classes=10, se_ratio=0.0):
    """Parameters, flops (multiply-adds) and activations of an AnyNet
    configuration on in_channels x image_size x image_size inputs."""
    if min(in_channels, image_size, num_classes) < 1:
        raise ValueError('input channels, image size and classes must be positive')
    cx = {'h': image_size, 'w': image_size, 'params': 0, 'flops': 0, 'acts': 0}
    c = config.stem_width
    cx = bn_cx(conv_cx(cx, in_channels, c, 3, stride=2), c)
    for depth, w, g, b in config.stages:
        cx = stage_cx(cx, c, depth, w, g, b, se_ratio)
        c = w
    cx = dense_cx(cx, c, num_classes)
    return {k: cx[k] for k in ('params', 'flops', 'acts')}


# ------------------------------- Command-line interface -----------------------------

def parse_number(text):
    """An int if `text` is integral, else a float."""
    value = float(text)
    return int(value) if value.is_integer() else value


def parse_stage(text):
    """'depth,width,group_width,bottleneck' -> a stage tuple."""
    try:
        d, w, g, b = (parse_number(t) for t in text.split(','))
        return int(d), int(w), int(g), b
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'{text!r} is not depth,width,group_width,bottleneck') from None


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit 2)."""

    def error(self, message):
        self.exit(2, f'{self.prog}: error: {message}\n')


def build_parser():
    parser = Parser(
        prog='python -m d2lsupport.design',
        description='RegNet widths, AnyNet complexity and design-space samples.')
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('regnet', help='stages of a RegNet (quantized linear widths)')
    p.add_argument('--w0', type=int, required=True)
    p.add_argument('--wa', type=float, required=True)
    p.add_argument('--wm', type=float, required=True)
    p.add_argument('--depth', type=int, required=True)
    p.add_argument('--group-width', type=int, required=True)
    p.add_argument('--bottleneck', type=parse_number, default=1)
    p = sub.add_parser('complexity', help='params, flops and acts of an AnyNet')
    p.add_argument('--stem', type=int, default=STEM_WIDTH)
    p.add_argument('--stage', type=parse_stage, action='append', required=True,
                   metavar='D,W,G,B')
    p.add_argument('--image-size', type=int, default=28)
    p.add_argument('--in-channels', type=int, default=1)
    p.add_argument('--classes', type=int, default=10)
    p.add_argument('--se', type=float, default=0.0)
    p = sub.add_parser('sample', help='JSON lines of sampled configurations')
    p.add_argument('--space', choices=SPACES, required=True)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('-n', type=int, default=1)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == 'regnet':
            print(json.dumps(regnet_widths(args.w0, args.wa, args.wm, args.depth,
                                           args.group_width, args.bottleneck)))
        elif args.command == 'complexity':
            config = AnyNetConfig(args.stem, args.stage)
            print(json.dumps(complexity(config, args.in_channels, args.image_size,
                                        args.classes, args.se)))
        else:
            rng = np.random.default_rng(args.seed)
            for _ in range(args.n):
                print(json.dumps(sample_config(args.space, rng).to_json()))
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
