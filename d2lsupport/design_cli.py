"""The command line of `d2lsupport.design` (``python -m d2lsupport.design``):
RegNet widths, the complexity of an AnyNet and samples of a design space,
printed as JSON."""
import argparse
import json
import sys

import numpy as np

from . import cli, design


def parse_stage(text):
    """'depth,width,group_width,bottleneck_ratio' -> a stage tuple."""
    parts = text.split(',')
    try:
        if len(parts) == 4:
            return tuple(cli.number(t) for t in parts)
    except argparse.ArgumentTypeError:
        pass
    raise argparse.ArgumentTypeError(f'{text!r} is not depth,width,group_width,bottleneck_ratio')


def build_parser():
    parser, sub = cli.commands(
        'design', 'RegNet widths, AnyNet complexity and design-space samples.')
    p = sub.add_parser('regnet', help='stages of a RegNet (quantized linear widths)')
    p.add_argument('--w0', type=cli.positive_int, required=True)
    p.add_argument('--wa', type=float, required=True)
    p.add_argument('--wm', type=float, required=True)
    p.add_argument('--depth', type=cli.positive_int, required=True)
    p.add_argument('--group-width', type=cli.positive_int, required=True)
    p.add_argument('--bottleneck-ratio', type=cli.number, default=1)
    p = sub.add_parser('complexity', help='params, flops and acts of an AnyNet')
    p.add_argument('--stem', type=cli.positive_int, default=design.STEM_WIDTH)
    p.add_argument('--stage', type=parse_stage, action='append', required=True,
                   metavar='D,W,G,B')
    p.add_argument('--image-size', type=cli.positive_int, default=28)
    p.add_argument('--in-channels', type=cli.positive_int, default=1)
    p.add_argument('--classes', type=cli.positive_int, default=design.NUM_CLASSES)
    p.add_argument('--se', type=float, default=0.0, help='squeeze-and-excitation ratio')
    p = sub.add_parser('sample', help='JSON lines of sampled configurations')
    p.add_argument('--space', choices=design.SPACES, required=True)
    p.add_argument('--seed', type=cli.non_negative_int, default=0)
    p.add_argument('-n', type=cli.positive_int, default=1)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == 'regnet':
            print(json.dumps(design.regnet_widths(args.w0, args.wa, args.wm, args.depth,
                                                  args.group_width, args.bottleneck_ratio)))
        elif args.command == 'complexity':
            config = design.AnyNetConfig(args.stem, args.stage, se_ratio=args.se,
                                         num_classes=args.classes)
            print(json.dumps(design.complexity(config, args.in_channels, args.image_size)))
        else:
            rng = np.random.default_rng(args.seed)
            for _ in range(args.n):
                print(json.dumps(design.sample_config(args.space, rng).to_json()))
    except ValueError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
