"""Design spaces of AnyNet networks: sampling, the RegNet width rule, EDFs,
and complexity (parameters, flops, activations).

Framework-free (numpy and the standard library; matplotlib only for the
plots). One vocabulary: a stage has a `depth` (blocks), a `width`
(channels), a `group_width` (channels per group of the grouped convolution)
and the paper's `bottleneck_ratio` b; a block of width w has the
`bottleneck_width` w / b. Only the chapter's `AnyNet` keeps the book's
multiplier bot_mul = 1 / b, and `anynet_arguments` converts to it; its
bottleneck width ``int(round(w * bot_mul))`` is the same integer for b in
{1, 2, 4}.

A network is one `AnyNetConfig`: a stem width, one `Stage` per stage, its
squeeze-and-excitation ratio and number of classes, and for a network made
by the RegNet rule its typed rule parameters (`RegNetParams`, whose
`config()` builds it). `AnyNetConfig.to_json` gives the dict that results
files hold; `AnyNetConfig.from_json` reads it back.

The design spaces are declared once, in `DESIGN_SPACES`: each one's name,
the identifier that seeds a study's draws, and the constraints it adds.
Sampling, membership (`in_space`), display names and the study's
comparisons read that table.

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
returned, as the paper does for AnyNetX_D and AnyNetX_E. The random numbers
each sampler draws, and their order, are what the committed studies under
results/ were drawn with: a change to them changes those studies' networks
(tests/test_study.py re-draws them). The one exception is older than this
rule: the first study's RegNetX networks were drawn before RegNetX drew its
bottleneck ratio (b = 1 then), one draw fewer per network.
"""
import dataclasses
import itertools
import json
import math
import numbers
from typing import NamedTuple, Optional

import numpy as np

from . import checks

NUM_STAGES = 3
STEM_WIDTH = 16
NUM_CLASSES = 10
DEPTHS = (1, 4)
WIDTHS = (8, 128)
WIDTH_STEP = 8
BOTTLENECK_RATIOS = (1, 2, 4)
GROUP_WIDTHS = (1, 2, 4, 8, 16, 32)
REGNET_DEPTHS = (NUM_STAGES, NUM_STAGES * DEPTHS[1])
REGNET_W0 = (8, 64)
REGNET_WA = (4.0, 64.0)
REGNET_WM = (1.5, 3.0)


# ----------------------------------- Design spaces ----------------------------------

@dataclasses.dataclass(frozen=True)
class DesignSpace:
    """One design space: its `name` ('A'..'E', 'RegNetX'), its `display_name`,
    a fixed `identifier` (a study seeds model i of this space with it, so it
    never changes, whatever the order of the table) and what its networks
    share: one bottleneck ratio, one group width, widths and depths that
    never decrease from stage to stage, or stages made by the RegNet rule."""
    name: str
    display_name: str
    identifier: int
    shared_bottleneck_ratio: bool = False
    shared_group_width: bool = False
    nondecreasing_widths: bool = False
    nondecreasing_depths: bool = False
    regnet_rule: bool = False


DESIGN_SPACES = (
    DesignSpace('A', 'AnyNetX_A', 0),
    DesignSpace('B', 'AnyNetX_B', 1, shared_bottleneck_ratio=True),
    DesignSpace('C', 'AnyNetX_C', 2, shared_bottleneck_ratio=True, shared_group_width=True),
    DesignSpace('D', 'AnyNetX_D', 3, shared_bottleneck_ratio=True, shared_group_width=True,
                nondecreasing_widths=True),
    DesignSpace('E', 'AnyNetX_E', 4, shared_bottleneck_ratio=True, shared_group_width=True,
                nondecreasing_widths=True, nondecreasing_depths=True),
    DesignSpace('RegNetX', 'RegNetX', 5, shared_bottleneck_ratio=True,
                shared_group_width=True, nondecreasing_widths=True, regnet_rule=True),
)
SPACES = tuple(space.name for space in DESIGN_SPACES)
_BY_NAME = {space.name: space for space in DESIGN_SPACES}


def design_space(space):
    """The `DesignSpace` named `space` (or `space` itself if it is one)."""
    if isinstance(space, DesignSpace):
        return space
    if not isinstance(space, str) or space not in _BY_NAME:
        raise ValueError(f'unknown design space {space!r}; choose from {", ".join(SPACES)}')
    return _BY_NAME[space]


def space_name(space):
    """The display name of a design space: 'A' -> 'AnyNetX_A'."""
    return design_space(space).display_name


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


def make_compatible(widths, group_width, bottleneck_ratio=1):
    """Adjust (widths, group widths) per stage so that the group width divides
    the bottleneck width, as pycls does: the group width is capped by the
    bottleneck width w / b, which is rounded to a multiple of it (ties to even)."""
    new_widths, group_widths = [], []
    for width in widths:
        w_b = max(1, int(width / bottleneck_ratio))
        g = min(group_width, w_b)
        w_b = max(g, int(round(w_b / g) * g))
        new_widths.append(int(w_b * bottleneck_ratio))
        group_widths.append(g)
    return new_widths, group_widths


@dataclasses.dataclass(frozen=True)
class RegNetParams:
    """The parameters of one RegNet: initial width `w0`, slope `wa`, width
    multiplier `wm`, `depth` blocks in all, `group_width` and
    `bottleneck_ratio` for every stage, its stem width and SE ratio, and the
    quantum `q` of the widths. `config()` builds the network they describe."""
    w0: int
    wa: float
    wm: float
    depth: int
    group_width: int
    bottleneck_ratio: float = 1
    stem_width: int = STEM_WIDTH
    se_ratio: float = 0.0
    q: int = 8

    def __post_init__(self):
        owner = 'RegNetParams'
        for name in ('w0', 'depth', 'group_width', 'stem_width', 'q'):
            object.__setattr__(self, name, checks.positive_int(owner, name, getattr(self, name)))
        checks.number(owner, 'wa', self.wa, at_least=0)
        checks.number(owner, 'wm', self.wm, above=1)
        checks.number(owner, 'bottleneck_ratio', self.bottleneck_ratio, at_least=1)
        checks.fraction(owner, 'se_ratio', self.se_ratio)
        if self.w0 % self.q:
            raise ValueError(f'{owner}: w0 must be a multiple of q = {self.q}, got {self.w0}')

    def widths(self):
        """Per-stage 'depths', 'widths' and 'group_widths' (pycls's
        generate_regnet, then adjust_block_compatibility with bot_mul = 1 / b)."""
        u = linear_widths(self.w0, self.wa, self.depth)
        depths, widths = to_stages(quantize_widths(u, self.w0, self.wm, self.q))
        widths, group_widths = make_compatible(widths, self.group_width, self.bottleneck_ratio)
        return {'depths': depths, 'widths': widths, 'group_widths': group_widths}

    def stages(self):
        """The stages of the network, as (depth, width, group_width, b) tuples."""
        net = self.widths()
        return tuple((d, w, g, self.bottleneck_ratio) for d, w, g in
                     zip(net['depths'], net['widths'], net['group_widths']))

    def config(self, num_classes=NUM_CLASSES):
        """The network as an `AnyNetConfig`, with these parameters as its origin."""
        return AnyNetConfig(self.stem_width, self.stages(), se_ratio=self.se_ratio,
                            num_classes=num_classes, regnet=self)

    def rule_json(self):
        """The rule's parameters as results files hold them (under 'regnet'; the
        stem width and SE ratio are the configuration's own keys)."""
        data = {'depth': self.depth, 'w0': self.w0, 'wa': self.wa, 'wm': self.wm,
                'group_width': self.group_width, 'bottleneck': self.bottleneck_ratio}
        return data if self.q == 8 else {**data, 'q': self.q}

    @classmethod
    def from_rule_json(cls, data, stem_width, se_ratio):
        """The parameters of a dict written by `rule_json`. The first study's
        records (made while RegNetX fixed b = 1) have no 'bottleneck' key."""
        if not isinstance(data, dict):
            raise ValueError(f'RegNetParams: the rule must be a dict, got {data!r}')
        try:
            return cls(data['w0'], data['wa'], data['wm'], data['depth'], data['group_width'],
                       data.get('bottleneck', 1), stem_width, se_ratio, data.get('q', 8))
        except KeyError as e:
            raise ValueError(f'RegNetParams: the rule {data} has no {e.args[0]!r}') from None


def regnet_widths(w0, wa, wm, depth, group_width, bottleneck_ratio=1, q=8):
    """Per-stage depths, widths and group widths of the RegNet with initial
    width w0, slope wa, width multiplier wm, `depth` blocks in all, widths
    quantized to multiples of q and bottleneck ratio b (see `RegNetParams`)."""
    return RegNetParams(w0, wa, wm, depth, group_width, bottleneck_ratio, q=q).widths()


def block_widths(w0, wa, wm, depth, group_width, bottleneck_ratio=1, q=8):
    """The width of every block of that RegNet, j = 0 .. depth - 1, as the
    network builds it (after making widths compatible with the group width)."""
    net = regnet_widths(w0, wa, wm, depth, group_width, bottleneck_ratio, q)
    return [w for d, w in zip(net['depths'], net['widths']) for _ in range(d)]


def plot_width_rule(w0, wa, wm, depth, group_width, bottleneck_ratio=1, q=8, ax=None):
    """Plot the linear widths u_j and, per block j, the width the network uses."""
    if ax is None:
        import matplotlib.pyplot as plt
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    blocks = np.arange(depth)
    ax.plot(blocks, linear_widths(w0, wa, depth), '--', label='linear $u_j$')
    ax.step(blocks, block_widths(w0, wa, wm, depth, group_width, bottleneck_ratio, q),
            where='mid', label='width of block $j$')
    ax.set_xlabel('block index $j$')
    ax.set_ylabel('width (channels)')
    ax.grid(alpha=0.3)
    ax.legend(loc='upper left')
    return ax

# ----------------------------------- Configurations ---------------------------------

def bottleneck_width(width, bottleneck_ratio):
    """Channels inside a block of `width` with bottleneck ratio b."""
    return int(round(width / bottleneck_ratio))


def stage_problem(depth, width, group_width, bottleneck_ratio):
    """Why a stage of positive numbers cannot be built, or None if it can."""
    w_b = bottleneck_width(width, bottleneck_ratio)
    if not 1 <= group_width <= w_b or w_b % group_width:
        return (f'group width {group_width} must divide the bottleneck '
                f'width {w_b} (width {width} / ratio {bottleneck_ratio})')
    return None


class Stage(NamedTuple):
    """One stage of an AnyNet: `depth` blocks of `width` channels whose grouped
    convolution has groups of `group_width` channels, bottleneck ratio b."""
    depth: int
    width: int
    group_width: int
    bottleneck_ratio: float


def as_stage(owner, number, stage):
    """`stage` checked to be four positive numbers (integers but b) as a `Stage`."""
    where = f'stage {number}'
    if isinstance(stage, (str, bytes)) or not isinstance(stage, (tuple, list)) \
            or len(stage) != 4:
        raise ValueError(f'{owner}: {where} must be (depth, width, group_width, '
                         f'bottleneck_ratio), got {stage!r}')
    depth, width, group_width, ratio = stage
    ratio = checks.positive_number(owner, f'{where} bottleneck_ratio', ratio)
    return Stage(*(checks.positive_int(owner, f'{where} {name}', value) for name, value in
                   (('depth', depth), ('width', width), ('group_width', group_width))),
                 int(ratio) if isinstance(ratio, numbers.Integral) else float(ratio))


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


@dataclasses.dataclass(frozen=True)
class AnyNetConfig:
    """A network of an AnyNet design space, checked to be buildable.

    `stages` holds one (depth, width, group_width, bottleneck_ratio) per
    stage; `se_ratio` > 0 adds squeeze-and-excitation units (RegNetX ->
    RegNetY); `regnet` holds the `RegNetParams` of a network made by the
    RegNet rule (their stages, stem width and SE ratio must be these), else
    None.
    """
    stem_width: int
    stages: tuple
    _: dataclasses.KW_ONLY
    se_ratio: float = 0.0
    num_classes: int = NUM_CLASSES
    regnet: Optional[RegNetParams] = None

    def __post_init__(self):
        owner = 'AnyNetConfig'
        object.__setattr__(self, 'stem_width',
                           checks.positive_int(owner, 'stem_width', self.stem_width))
        object.__setattr__(self, 'num_classes',
                           checks.positive_int(owner, 'num_classes', self.num_classes))
        checks.fraction(owner, 'se_ratio', self.se_ratio)
        if isinstance(self.stages, (str, bytes)) or not isinstance(self.stages, (tuple, list)) \
                or not self.stages:
            raise ValueError(f'{owner}: stages must be a non-empty list of (depth, width, '
                             f'group_width, bottleneck_ratio), got {self.stages!r}')
        stages = tuple(as_stage(owner, i, s) for i, s in enumerate(self.stages, 1))
        object.__setattr__(self, 'stages', stages)
        for i, stage in enumerate(stages, 1):
            problem = stage_problem(*stage)
            if problem:
                raise ValueError(f'{owner}: stage {i} {tuple(stage)}: {problem}')
        try:
            for width_in in (self.stem_width, *(s.width for s in stages)):
                se_width(self.se_ratio, width_in)
        except ValueError as e:
            raise ValueError(f'{owner}: {e}; choose a larger se_ratio, or 0') from None
        self._check_origin()

    def _check_origin(self):
        """The RegNet parameters, if any, must describe this very network."""
        if self.regnet is None:
            return
        if not isinstance(self.regnet, RegNetParams):
            raise ValueError('AnyNetConfig: regnet must be a RegNetParams or None, got '
                             f'{self.regnet!r} (AnyNetConfig.from_json reads a record\'s)')
        p = self.regnet
        if (p.stages(), p.stem_width, p.se_ratio) != (self.stages, self.stem_width, self.se_ratio):
            raise ValueError(f'AnyNetConfig: {p} describe stages {p.stages()}, stem width '
                             f'{p.stem_width} and SE ratio {p.se_ratio}, not this network; '
                             'build it with RegNetParams.config()')

    def with_se_ratio(self, se_ratio):
        """The same network with squeeze-and-excitation units of `se_ratio`."""
        regnet = None if self.regnet is None else dataclasses.replace(self.regnet,
                                                                      se_ratio=se_ratio)
        return dataclasses.replace(self, se_ratio=se_ratio, regnet=regnet)

    def to_json(self):
        """The configuration as the dict that results files hold; `se_ratio` and
        `num_classes` appear only when they differ from 0 and 10."""
        data = {'stem_width': self.stem_width, 'stages': [list(s) for s in self.stages]}
        if self.regnet is not None:
            data['regnet'] = self.regnet.rule_json()
        if self.se_ratio:
            data['se_ratio'] = self.se_ratio
        if self.num_classes != NUM_CLASSES:
            data['num_classes'] = self.num_classes
        return data

    @classmethod
    def from_json(cls, data):
        """The configuration of a dict written by `to_json` (or a JSON string)."""
        if isinstance(data, str):
            data = json.loads(data)
        if not isinstance(data, dict) or not {'stem_width', 'stages'} <= data.keys():
            raise ValueError('AnyNetConfig: a configuration needs stem_width and stages, '
                             f'got {data!r}')
        se_ratio = data.get('se_ratio', 0.0)
        regnet = data.get('regnet')
        if regnet is not None:
            regnet = RegNetParams.from_rule_json(regnet, data['stem_width'], se_ratio)
        return cls(data['stem_width'], data['stages'], se_ratio=se_ratio,
                   num_classes=data.get('num_classes', NUM_CLASSES), regnet=regnet)


def anynet_arguments(config):
    """The chapter's `AnyNet` keyword arguments for `config` (all but `lr`):
    `arch`, one (depth, width, group_width, bot_mul) tuple per stage with the
    book's bot_mul = 1 / b, `stem_width`, `num_classes` and `se_ratio`."""
    if not isinstance(config, AnyNetConfig):
        raise ValueError('anynet: config must be a d2lsupport.design.AnyNetConfig '
                         f'(AnyNetConfig.from_json reads a record\'s), got {config!r}')
    return {'arch': tuple((depth, width, group_width, 1 / ratio)
                          for depth, width, group_width, ratio in config.stages),
            'stem_width': config.stem_width, 'num_classes': config.num_classes,
            'se_ratio': config.se_ratio}


# The chapter's RegNetX32 and RegNetY32 as configurations: the networks are the
# chapter's classes (`d2l.RegNetX32`, checked against these by the tests); these
# describe them for the framework-free code (their complexity, the prose check).
REGNETX32 = RegNetParams(w0=32, wa=5, wm=2.5, depth=10, group_width=16, stem_width=32).config()
REGNETY32 = REGNETX32.with_se_ratio(0.25)


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
    """Draw the stages of a network of an AnyNetX space, before any
    rejection: b and g once, then per stage its depth and width and, where
    the space does not share them, its own b and g."""
    spec = design_space(space)
    b, g = choice(rng, BOTTLENECK_RATIOS), choice(rng, GROUP_WIDTHS)
    stages = []
    for _ in range(NUM_STAGES):
        d = log_uniform(rng, *DEPTHS, 1)
        w = log_uniform(rng, *WIDTHS, WIDTH_STEP)
        if not spec.shared_bottleneck_ratio:
            b = choice(rng, BOTTLENECK_RATIOS)
        if not spec.shared_group_width:
            g = choice(rng, GROUP_WIDTHS)
        stages.append((d, w, g, b))
    return stages


def sample_regnet_params(rng):
    """Draw the parameters of a RegNetX network: depth, w0, wa, wm, then g and
    b as for AnyNetX_E, as the paper does (in this order)."""
    depth = int(rng.integers(REGNET_DEPTHS[0], REGNET_DEPTHS[1] + 1))
    w0 = log_uniform(rng, *REGNET_W0, WIDTH_STEP)
    wa = round(log_uniform(rng, *REGNET_WA, 0.1), 1)
    wm = round(log_uniform(rng, *REGNET_WM, 0.001), 3)
    group_width = choice(rng, GROUP_WIDTHS)
    bottleneck_ratio = choice(rng, BOTTLENECK_RATIOS)
    return RegNetParams(w0, wa, wm, depth, group_width, bottleneck_ratio)


def regnet_stages(params):
    """The stages of RegNet parameters, or None if outside our ranges:
    exactly NUM_STAGES stages, no quantization level skipped, the group
    width kept, depths and widths within the AnyNetX ranges."""
    u = linear_widths(params.w0, params.wa, params.depth)
    if width_levels(u, params.w0, params.wm).max() + 1 != NUM_STAGES:
        return None
    stages = params.stages()
    ok = (len(stages) == NUM_STAGES
          and all(DEPTHS[0] <= d <= DEPTHS[1] and WIDTHS[0] <= w <= WIDTHS[1]
                  and g == params.group_width and not stage_problem(d, w, g, b)
                  for d, w, g, b in stages))
    return stages if ok else None


def in_ranges(stage):
    """Whether a stage lies within the ranges that every space samples from."""
    d, w, g, b = stage
    return (DEPTHS[0] <= d <= DEPTHS[1] and WIDTHS[0] <= w <= WIDTHS[1]
            and w % WIDTH_STEP == 0 and g in GROUP_WIDTHS and b in BOTTLENECK_RATIOS)


def stages_in_space(stages, space):
    """Whether stages lie within the ranges and meet the constraints of `space`
    (all but the RegNet rule itself): NUM_STAGES stages within the ranges,
    and one b, one g, non-decreasing widths or depths where the space says."""
    spec = design_space(space)
    if len(stages) != NUM_STAGES or not all(in_ranges(s) for s in stages):
        return False
    depths, widths, group_widths, ratios = zip(*stages)
    constraints = ((spec.shared_bottleneck_ratio, len(set(ratios)) == 1),
                   (spec.shared_group_width, len(set(group_widths)) == 1),
                   (spec.nondecreasing_widths, non_decreasing(widths)),
                   (spec.nondecreasing_depths, non_decreasing(depths)))
    return all(met or not required for required, met in constraints)


def in_space(config, space):
    """Whether the `AnyNetConfig` belongs to design space `space`: our stem,
    no SE, stages that meet the space's constraints and, for a space of the
    RegNet rule, the stages that its RegNet parameters make."""
    spec = design_space(space)
    return (config.stem_width == STEM_WIDTH and not config.se_ratio
            and stages_in_space(config.stages, spec)
            and (not spec.regnet_rule or (config.regnet is not None
                                          and regnet_stages(config.regnet) == config.stages)))


def draw_network(space, rng):
    """One draw from the distribution of `space`: a network of the space, or
    None when the draw falls outside it (and must be resampled)."""
    spec = design_space(space)
    if spec.regnet_rule:
        params = sample_regnet_params(rng)
        return None if regnet_stages(params) is None else params.config()
    stages = sample_anynet_stages(spec, rng)
    if any(stage_problem(*s) for s in stages) or not stages_in_space(stages, spec):
        return None
    return AnyNetConfig(STEM_WIDTH, stages)


def sample_config(space, rng):
    """A random network of design space `space` (one of SPACES), drawn with
    the numpy Generator `rng`; draws outside the space are resampled."""
    spec = design_space(space)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f'rng must be a numpy Generator, such as np.random.default_rng(0), '
                         f'got {rng!r}')
    while True:
        config = draw_network(spec, rng)
        if config is not None:
            return config


def sample_at_cost(space, rng, mflops, tolerance=0.1, image_size=28, max_draws=10_000):
    """A network of `space` whose flops lie within `tolerance` (a fraction) of
    `mflops` million, by rejection from the space's own distribution, as the
    paper compares spaces within one complexity regime. Returns (config, draws):
    how many networks of the space were drawn to find it."""
    name = space_name(space)
    checks.number('sample_at_cost', 'mflops', mflops, above=0)
    checks.number('sample_at_cost', 'tolerance', tolerance, above=0)
    checks.positive_int('sample_at_cost', 'max_draws', max_draws)
    for draws in range(1, max_draws + 1):
        config = sample_config(space, rng)
        flops = complexity(config, image_size=image_size)['flops']
        if abs(flops / (mflops * 1e6) - 1) <= tolerance:
            return config, draws
    raise ValueError(f'{name}: no network within {tolerance:.0%} of '
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


def draw_edf(ax, errors, style='-', **kwargs):
    """Draw the EDF of `errors` on `ax` as a staircase that starts at 0."""
    x, f = edf(errors)
    ax.step(np.r_[x[0], x], np.r_[0.0, f], style, where='post', **kwargs)


def plot_edfs(results_by_space, ax=None):
    """Draw the error EDF of each {space: errors} entry on one axis; a key
    that is not a design space's name labels its curve as it is."""
    if ax is None:
        import matplotlib.pyplot as plt
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    styles = ('-', '--', '-.', ':')
    for i, (space, errors) in enumerate(results_by_space.items()):
        label = _BY_NAME[space].display_name if space in _BY_NAME else space
        draw_edf(ax, errors, styles[i % 4], label=f'{label} (n={len(errors)})')
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


def block_cx(cx, width_in, width, group_width, bottleneck_ratio, stride, se_ratio=0.0):
    """A ResNeXt block; it has a projection shortcut when it changes the shape."""
    w_b = bottleneck_width(width, bottleneck_ratio)
    if stride != 1 or width_in != width:
        proj = bn_cx(conv_cx(cx, width_in, width, 1, stride), width)
        cx = {**proj, 'h': cx['h'], 'w': cx['w']}
    cx = bn_cx(conv_cx(cx, width_in, w_b, 1), w_b)
    cx = bn_cx(conv_cx(cx, w_b, w_b, 3, stride, w_b // group_width), w_b)
    w_se = se_width(se_ratio, width_in)
    if w_se:
        cx = se_cx(cx, w_b, w_se)
    return bn_cx(conv_cx(cx, w_b, width, 1), width)


def stage_cx(cx, width_in, depth, width, group_width, bottleneck_ratio, se_ratio=0.0):
    """`depth` blocks; the first halves the resolution."""
    for i in range(depth):
        cx = block_cx(cx, width_in if i == 0 else width, width, group_width,
                      bottleneck_ratio, 2 if i == 0 else 1, se_ratio)
    return cx


def complexity(config, in_channels=1, image_size=28):
    """Parameters, flops (multiply-adds) and activations of an `AnyNetConfig`
    (with its SE ratio and classes) on in_channels x image_size x image_size inputs."""
    in_channels = checks.positive_int('complexity', 'in_channels', in_channels)
    image_size = checks.positive_int('complexity', 'image_size', image_size)
    cx = {'h': image_size, 'w': image_size, 'params': 0, 'flops': 0, 'acts': 0}
    c = config.stem_width
    cx = bn_cx(conv_cx(cx, in_channels, c, 3, stride=2), c)
    for depth, width, group_width, ratio in config.stages:
        cx = stage_cx(cx, c, depth, width, group_width, ratio, config.se_ratio)
        c = width
    cx = dense_cx(cx, c, config.num_classes)
    return {k: cx[k] for k in ('params', 'flops', 'acts')}


if __name__ == '__main__':
    # `python -m d2lsupport.design`: the command line lives in its own module.
    import sys
    from d2lsupport.design_cli import main
    sys.exit(main())
