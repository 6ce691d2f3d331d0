"""Support library for the cnn-design chapter.

The framework-free core lives in `core` (the registry of frameworks and their
shared public names), `data`, `trainer`, `design`, `study`, `records` (what is
read from and written to results/), `checks` and `cli` (argument checks), with
the command lines `design_cli` and `study`, and the chapter tools `notebook`,
`library`, `tab`, `prose`. Each of `mxnet`, `torch`, `tensorflow` and `jax`
offers the same public names for its framework (`core.PUBLIC_NAMES`, plus its
`core.EXTRAS`), so that ``from d2lsupport import torch as d2l`` and its siblings
make the chapter's tabs read alike. The chapter's network itself is generated
from the chapter into `chapter/` and reached through the framework modules.
"""
__version__ = '0.1.0'
