"""Make the library's copy of the chapter's network from the chapter itself.

A code cell of the chapter whose second line (after its ``%%tab`` line) is
``#@save`` belongs to the library: its code goes, in chapter order, into
``d2lsupport/chapter/<module>.py`` of each framework of its tab. So the
network exists once per framework, in the chapter, and the study, the
benchmark and the tests build it from there. ::

    python -m d2lsupport.library SRC.md [DIR] [--check]

writes the four modules into DIR (default: the ``chapter`` package next to
this file), or with ``--check`` fails if any of them differs from the chapter.
"""
import argparse
import sys
from pathlib import Path

from .core import FRAMEWORKS, MODULES
from .notebook import TAB_LINE, cell_tabs, parse_markdown

MARKER = '#@save'
PACKAGE = Path(__file__).resolve().parent / 'chapter'
HEADER = '''"""The chapter's {framework} code marked #@save, in chapter order.

Generated from chapter_cnn_design/cnn-design.md by `make library`: do not edit
this file; change the chapter's cells and regenerate it.
"""
# flake8: noqa
'''


def saved_cells(text, framework):
    """The code of the chapter cells marked #@save that run in `framework`'s tab,
    without their %%tab and #@save lines."""
    cells = []
    for kind, source, _ in parse_markdown(text):
        if kind != 'code':
            continue
        lines = source.split('\n')
        if TAB_LINE.match(lines[0]):
            lines = lines[1:]
        if not lines or lines[0].strip() != MARKER:
            continue
        tabs = cell_tabs(source)
        if 'all' in tabs or framework in tabs:
            cells.append('\n'.join(lines[1:]).strip('\n'))
    return cells


def module_source(text, framework):
    """The text of the generated module of `framework`."""
    cells = saved_cells(text, framework)
    if not cells:
        raise ValueError(f'the chapter has no cell marked {MARKER} for {framework}')
    return HEADER.format(framework=framework) + '\n' + '\n\n\n'.join(cells) + '\n'


def modules(md_path):
    """{file name: text} of the four generated modules."""
    text = Path(md_path).read_text()
    return {f'{MODULES[fw]}.py': module_source(text, fw) for fw in FRAMEWORKS}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('source', help='the chapter markdown')
    parser.add_argument('dest', nargs='?', default=str(PACKAGE),
                        help='the folder of the generated modules')
    parser.add_argument('--check', action='store_true',
                        help='only check that the modules in DEST match SOURCE')
    args = parser.parse_args(argv)
    dest = Path(args.dest)
    texts = {dest / name: text for name, text in modules(args.source).items()}
    return write_or_check(texts, args.check, f'{args.source}; run `make library`')


def write_or_check(texts, check, fix):
    """Write each {path: text}, or with `check` only list those whose file differs:
    0, or 1 with a line naming them, then `fix` (what they are stale with, and how to
    regenerate them)."""
    stale = []
    for path, text in texts.items():
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f'wrote {path}')
    if stale:
        print(f'error: {", ".join(stale)} out of date with {fix}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
