"""Checks of the arguments that readers pass to the library's public classes.

A bad argument fails at once with a one-line ValueError that names the
argument and what it expects, instead of deep inside a framework. The
checks accept what the book's tabs pass, e.g. Flax-style (s, s) strides.
"""
import numbers

from .design import grouped_bottleneck


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


def fraction(owner, name, value):
    """A number in [0, 1], such as a squeeze-and-excitation ratio."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value <= 1:
        _fail(owner, name, 'a number from 0 to 1', value)
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


def resnext_block(num_channels, group_width, bot_mul, strides, se_ratio):
    """A ResNeXt block's arguments checked: (bottleneck channels, stride as an int)."""
    owner = 'ResNeXtBlock'
    positive_int(owner, 'num_channels', num_channels)
    positive_int(owner, 'group_width', group_width)
    positive_number(owner, 'bot_mul', bot_mul)
    fraction(owner, 'se_ratio', se_ratio)
    return grouped_bottleneck(num_channels, group_width, bot_mul), stride(owner, strides)
