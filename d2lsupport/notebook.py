"""Turn the chapter's d2lbook markdown into a Jupyter notebook, and read its tabs.

Code cells are fenced as ```` ```{.python .input} ````; an extra class
``.check-output`` marks a cell whose output is deterministic, so the test
harness compares it (nbval tag ``nbval-check-output``). Everything else is
markdown. ``python -m d2lsupport.notebook SRC.md DEST.ipynb [--check]``
writes the notebook, or with ``--check`` fails if DEST is out of date.
"""
import argparse
import re
import sys
from pathlib import Path

import nbformat

CODE_FENCE = re.compile(r'^```\{\.python \.input([^}]*)\}\s*$')
TAB_LINE = re.compile(r'^%%tab\s+(.+)$')
CHECK_TAG = 'nbval-check-output'


def parse_markdown(text):
    """Split d2lbook markdown into a list of (kind, source, tags) cells."""
    cells, lines, in_code, tags = [], [], False, []

    def flush(kind):
        source = '\n'.join(lines).strip('\n')
        if source.strip():
            cells.append((kind, source, tags))

    for line in text.splitlines():
        fence = CODE_FENCE.match(line)
        if not in_code and fence:
            flush('markdown')
            lines, in_code = [], True
            tags = [CHECK_TAG] if '.check-output' in fence.group(1) else []
        elif in_code and line.strip() == '```':
            flush('code')
            lines, in_code, tags = [], False, []
        else:
            lines.append(line)
    if in_code:
        raise ValueError('unterminated code cell at the end of the markdown')
    flush('markdown')
    return cells


def to_notebook(cells):
    """An nbformat v4 notebook (no outputs) made of parsed cells."""
    nb = nbformat.v4.new_notebook()
    for kind, source, tags in cells:
        new = nbformat.v4.new_code_cell if kind == 'code' else nbformat.v4.new_markdown_cell
        cell = new(source)
        if tags:
            cell.metadata['tags'] = list(tags)
        cell.pop('id', None)
        nb.cells.append(cell)
    nb.metadata['kernelspec'] = {'name': 'cnn-design-pytorch',
                                 'display_name': 'cnn-design (PyTorch)', 'language': 'python'}
    nb.metadata['language_info'] = {'name': 'python'}
    nb.nbformat_minor = 4
    return nb


def render(md_path):
    """The notebook text for a markdown file."""
    nb = to_notebook(parse_markdown(Path(md_path).read_text()))
    return nbformat.writes(nb) + '\n'


def cell_tabs(source):
    """The frameworks a code cell belongs to (['all'] when it names none)."""
    first = source.split('\n', 1)[0]
    match = TAB_LINE.match(first)
    return [t.strip() for t in match.group(1).split(',')] if match else ['all']


def tab_code(md_path, framework, stop_at=None):
    """The code cells of one framework tab, without their %%tab line.

    With `stop_at`, stop before the first cell containing that string.
    """
    sources = []
    for kind, source, _ in parse_markdown(Path(md_path).read_text()):
        if kind != 'code' or source.startswith('%load_ext'):
            continue
        if stop_at and stop_at in source:
            break
        tabs = cell_tabs(source)
        if 'all' in tabs or framework in tabs:
            first, _, rest = source.partition('\n')
            sources.append(rest if TAB_LINE.match(first) else source)
    return sources


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('source', help='the chapter markdown')
    parser.add_argument('dest', help='the notebook to write')
    parser.add_argument('--check', action='store_true',
                        help='only check that DEST matches SOURCE')
    args = parser.parse_args(argv)
    text = render(args.source)
    dest = Path(args.dest)
    if args.check:
        if not dest.exists() or dest.read_text() != text:
            print(f'error: {dest} is out of date with {args.source}; run `make ipynb`',
                  file=sys.stderr)
            return 1
        return 0
    dest.write_text(text)
    print(f'wrote {dest}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
