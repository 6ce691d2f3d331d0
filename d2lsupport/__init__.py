"""Support library for the cnn-design chapter.

The framework-free core lives in `core`, `data`, `trainer` (and `design`);
each of `mxnet`, `torch`, `tensorflow` and `jax` offers the same public names
for its framework, so that ``from d2lsupport import torch as d2l`` and its
siblings make the chapter's tabs read alike.
"""
__version__ = '0.1.0'
