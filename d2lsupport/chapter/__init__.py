"""The chapter's own code, one module per framework, generated from the cells
of chapter_cnn_design/cnn-design.md marked #@save (see `d2lsupport.library`).

Use them through the framework modules (``from d2lsupport import torch as
d2l``, then ``d2l.RegNetX32``), which find the classes here: the network is
defined once per framework, in the chapter.
"""
