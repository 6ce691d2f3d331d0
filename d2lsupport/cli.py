"""What the library's command lines share: an argument parser whose errors
are one line, and argument types that apply the rules of `checks`."""
import argparse

from . import checks


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit 2)."""

    def error(self, message):
        self.exit(2, f'{self.prog}: error: {message}\n')


def commands(module, description):
    """(parser, subcommands) of the command line `python -m d2lsupport.<module>`."""
    parser = Parser(prog=f'python -m d2lsupport.{module}', description=description)
    return parser, parser.add_subparsers(dest='command', required=True)


def _integer(text, minimum, expected):
    try:
        return checks.positive_int('', '', int(text), minimum=minimum)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not {expected}') from None


def positive_int(text):
    """An argument that must be an integer >= 1."""
    return _integer(text, 1, 'a positive integer')


def non_negative_int(text):
    """An argument that must be an integer >= 0, such as a seed."""
    return _integer(text, 0, 'an integer >= 0')


def number(text):
    """An int if `text` is integral, else a float (a bottleneck ratio, say)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
    return int(value) if value.is_integer() else value
