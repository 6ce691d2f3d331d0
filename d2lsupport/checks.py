"""Checks of the arguments that readers pass to the library's public classes.

A bad argument fails at once with a one-line ValueError that names the
argument and what it expects, instead of deep inside a framework. The
checks accept what the book's tabs pass, e.g. Flax-style (s, s) strides.
"""
import math
import numbers
import os


def _fail(owner, name, expected, value):
    raise ValueError(f'{owner}: {name} must be {expected}, got {value!r}')


def positive_int(owner, name, value, minimum=1):
    """`value` as an int, if it is an integer >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        _fail(owner, name, 'a positive integer' if minimum == 1 else
              f'an integer >= {minimum}', value)
    return int(value)


def optional_positive_int(owner, name, value):
    return None if value is None else positive_int(owner, name, value)


def positive_number(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        _fail(owner, name, 'a positive number', value)
    return value


def fraction(owner, name, value, upper_open=False):
    """A number in [0, 1] (or [0, 1) with `upper_open`), such as a
    squeeze-and-excitation ratio or a momentum."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1
            or (upper_open and value == 1)):
        _fail(owner, name, 'a number from 0 to below 1' if upper_open else 'a number from 0 to 1',
              value)
    return value


def number(owner, name, value, above=None, at_least=None):
    """A finite real number, above `above` or at least `at_least` when given."""
    bounds = ''.join([f' > {above:g}' if above is not None else '',
                      f' >= {at_least:g}' if at_least is not None else ''])
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or (above is not None and not value > above)
            or (at_least is not None and not value >= at_least)):
        _fail(owner, name, f'a finite number{bounds}', value)
    return value


def optional_path(owner, name, value):
    """A file or folder name (str or path), or None."""
    if value is not None and not isinstance(value, (str, os.PathLike)):
        _fail(owner, name, 'a path (str or pathlib.Path) or None', value)
    return value


def boolean(owner, name, value):
    """`value` if it is True or False (a string such as 'no' would count as true)."""
    if not isinstance(value, bool):
        _fail(owner, name, 'True or False', value)
    return value


def stride(owner, value):
    """A stride as one int; a pair of equal ints, as Flax writes it, is accepted."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or value[0] != value[1]:
            _fail(owner, 'strides', 'a positive integer or a pair of equal ones', value)
        value = value[0]
    return positive_int(owner, 'strides', value)


def image_size(owner, name, value):
    """An image size as a (height, width) pair of positive ints; one int means a square."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        _fail(owner, name, 'a (height, width) pair of positive integers', value)
    return tuple(positive_int(owner, name, v) for v in value)


def input_shape(owner, value):
    """The shape of an input batch: four positive ints (N, C, H, W) or (N, H, W, C)."""
    if not isinstance(value, (tuple, list)) or len(value) != 4 or not all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v > 0
            for v in value):
        _fail(owner, 'X_shape', 'four positive integers, e.g. (1, 1, 96, 96) or '
              '(1, 96, 96, 1)', value)
    return tuple(int(v) for v in value)


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


def resnext_arguments(num_channels, group_width, bot_mul, strides, se_ratio):
    """The chapter's ResNeXt block's arguments checked (a one-line ValueError
    naming a bad one): returns its bottleneck channels, which must split into
    groups of `group_width`, and its stride as one int."""
    owner = 'ResNeXtBlock'
    positive_int(owner, 'num_channels', num_channels)
    positive_int(owner, 'group_width', group_width)
    positive_number(owner, 'bot_mul', bot_mul)
    fraction(owner, 'se_ratio', se_ratio)
    return grouped_bottleneck(num_channels, group_width, bot_mul), stride(owner, strides)
