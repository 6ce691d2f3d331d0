"""The chapter's own code, one module per framework, generated from the cells
of chapter_cnn_design/cnn-design.md marked #@save (see `d2lsupport.library`).

Each framework module of d2lsupport imports its network from here, so the
network is defined once per framework: in the chapter.
"""
