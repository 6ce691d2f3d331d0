"""Support library for the cnn-design chapter.

The framework-free core lives in `core`, `data`, `trainer`, `design`, `study`,
`checks` (and the chapter tools `notebook`, `library`, `tab`, `prose`); each of
`mxnet`, `torch`, `tensorflow` and `jax` offers the same public names for its
framework, so that ``from d2lsupport import torch as d2l`` and its siblings make
the chapter's tabs read alike. The chapter's network itself is generated from
the chapter into `chapter/` and reached through the framework modules.
"""
__version__ = '0.1.0'
